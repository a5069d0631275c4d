"""Which cookie features each migration phase may emit and consumes (libvirt's rules).

A phase refuses a mandatory feature it does not consume and ignores optional ones
(``Cookie.restricted``). What a phase emits depends on the migration (offline, storage
migration, lock manager, ...); ``emits`` is everything it may emit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cookies.features import Feature


class CookiePhase(enum.Enum):
    """A migration phase that reads or writes a cookie."""

    BEGIN = "begin"
    PREPARE = "prepare"
    PERFORM = "perform"
    FINISH = "finish"
    CONFIRM = "confirm"
    BEGIN_RESUME = "begin-resume"
    PREPARE_RESUME = "prepare-resume"
    PERFORM_RESUME = "perform-resume"


@dataclass(frozen=True)
class PhaseFeatures:
    """The features a phase reads from its incoming cookie and may put in its outgoing one."""

    consumes: frozenset[Feature]
    emits: frozenset[Feature]


#: libvirt's qemu_migration.c, per phase. Finish and confirm of a post-copy resume use the
#: ordinary finish and confirm rows.
PHASE_FEATURES: dict[CookiePhase, PhaseFeatures] = {
    CookiePhase.BEGIN: PhaseFeatures(
        consumes=frozenset(),
        emits=frozenset(
            {
                Feature.LOCKSTATE,
                Feature.CAPABILITIES,
                Feature.CPU,
                Feature.NBD,
                Feature.BLOCK_DIRTY_BITMAPS,
                Feature.MEMORY_HOTPLUG,
                Feature.CPU_HOTPLUG,
            }
        ),
    ),
    CookiePhase.PREPARE: PhaseFeatures(
        consumes=frozenset(
            {
                Feature.LOCKSTATE,
                Feature.NBD,
                Feature.MEMORY_HOTPLUG,
                Feature.CPU_HOTPLUG,
                Feature.CPU,
                Feature.CAPABILITIES,
                Feature.BLOCK_DIRTY_BITMAPS,
            }
        ),
        emits=frozenset(
            {Feature.GRAPHICS, Feature.CAPABILITIES, Feature.NBD, Feature.BLOCK_DIRTY_BITMAPS}
        ),
    ),
    CookiePhase.PERFORM: PhaseFeatures(
        consumes=frozenset(
            {Feature.GRAPHICS, Feature.CAPABILITIES, Feature.BLOCK_DIRTY_BITMAPS, Feature.NBD}
        ),
        emits=frozenset(
            {
                Feature.NETWORK,
                Feature.STATISTICS,
                Feature.PERSISTENT,
                Feature.NBD,
                Feature.BLOCK_DIRTY_BITMAPS,
            }
        ),
    ),
    CookiePhase.FINISH: PhaseFeatures(
        consumes=frozenset({Feature.NETWORK, Feature.STATISTICS, Feature.NBD, Feature.PERSISTENT}),
        emits=frozenset({Feature.STATISTICS}),
    ),
    CookiePhase.CONFIRM: PhaseFeatures(
        consumes=frozenset({Feature.STATISTICS}),
        emits=frozenset(),
    ),
    CookiePhase.BEGIN_RESUME: PhaseFeatures(
        consumes=frozenset(),
        emits=frozenset({Feature.CAPABILITIES}),
    ),
    CookiePhase.PREPARE_RESUME: PhaseFeatures(
        consumes=frozenset({Feature.CAPABILITIES}),
        emits=frozenset({Feature.CAPABILITIES}),
    ),
    CookiePhase.PERFORM_RESUME: PhaseFeatures(
        consumes=frozenset({Feature.CAPABILITIES}),
        emits=frozenset({Feature.STATISTICS}),
    ),
}
