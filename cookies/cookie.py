"""The migration cookie: who sends it, for which guest, and the features it carries."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cookies.errors import CookieError
from cookies.features import Feature
from cookies.records import (
    BlockDirtyBitmaps,
    Capability,
    Graphics,
    JobStatistics,
    LockState,
    Nbd,
    Network,
)
from cookies.schema import NONEMPTY, Record, canonical_uuid

#: The Cookie field that holds each carried feature's data.
FEATURE_FIELDS: dict[Feature, str] = {
    Feature.GRAPHICS: "graphics",
    Feature.LOCKSTATE: "lockstate",
    Feature.PERSISTENT: "persistent",
    Feature.NETWORK: "network",
    Feature.NBD: "nbd",
    Feature.STATISTICS: "statistics",
    Feature.MEMORY_HOTPLUG: "memory_hotplug",
    Feature.CPU_HOTPLUG: "cpu_hotplug",
    Feature.CPU: "cpu",
    Feature.CAPABILITIES: "capabilities",
    Feature.BLOCK_DIRTY_BITMAPS: "block_dirty_bitmaps",
}


@dataclass(frozen=True, kw_only=True)
class Cookie(Record):
    """A migration cookie, as one phase hands it to the next.

    ``name``, ``uuid`` identify the guest and ``hostname``, ``hostuuid`` the sending host;
    UUIDs are kept in canonical form (lower-case, hyphenated). Each other field holds one
    feature's data, ``None`` (or ``False``) when the feature is absent:

    - ``persistent``: the guest's persistent definition, a ``<domain>`` document, kept as
      text (the cookie does not interpret it);
    - ``cpu``: the guest CPU as originally requested, a ``<cpu>`` element, kept as text;
    - ``memory_hotplug``, ``cpu_hotplug``: the guest uses memory / out-of-order vCPU hotplug.

    Raises:
        CookieError: a field has the wrong type, an empty name, or a malformed UUID.
    """

    name: str = field(metadata=NONEMPTY)
    uuid: str
    hostname: str = field(metadata=NONEMPTY)
    hostuuid: str
    graphics: Graphics | None = None
    lockstate: LockState | None = None
    persistent: str | None = field(default=None, metadata=NONEMPTY)
    network: Network | None = None
    nbd: Nbd | None = None
    statistics: JobStatistics | None = None
    memory_hotplug: bool = False
    cpu_hotplug: bool = False
    cpu: str | None = field(default=None, metadata=NONEMPTY)
    capabilities: tuple[Capability, ...] | None = None
    block_dirty_bitmaps: BlockDirtyBitmaps | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "uuid", canonical_uuid(self.uuid, field="Cookie.uuid"))
        object.__setattr__(self, "hostuuid", canonical_uuid(self.hostuuid, field="Cookie.hostuuid"))
        super().__post_init__()

    def carries(self, feature: Feature) -> bool:
        """Whether this cookie carries ``feature``."""
        name = FEATURE_FIELDS.get(feature)
        return name is not None and getattr(self, name) is not _ABSENT[name]

    @property
    def features(self) -> frozenset[Feature]:
        """The features this cookie carries."""
        return frozenset(feature for feature in FEATURE_FIELDS if self.carries(feature))

    @property
    def mandatory_features(self) -> tuple[Feature, ...]:
        """The carried features a receiver must understand, in bit order."""
        return tuple(feature for feature in Feature if feature.mandatory and self.carries(feature))

    def restricted(self, allowed: Iterable[Feature]) -> Cookie:
        """Return this cookie without the features outside ``allowed``.

        This is how a phase ignores optional data it does not consume; :func:`cookies.check`
        has already refused mandatory features outside the phase's set.
        """
        keep = frozenset(allowed)
        return dataclasses.replace(
            self,
            **{
                name: _ABSENT[name]
                for feature, name in FEATURE_FIELDS.items()
                if feature not in keep
            },
        )


# The value of each feature field when the feature is absent: its default (None or False).
_ABSENT: dict[str, Any] = {
    field.name: field.default
    for field in dataclasses.fields(Cookie)
    if field.name in FEATURE_FIELDS.values()
}


def require_announced(cookie: Cookie, announced: Iterable[Feature]) -> None:
    """Check that ``cookie`` carries data for every feature its sender announced.

    Raises:
        CookieError: an announced feature has no data.
    """
    missing = [feature for feature in announced if not cookie.carries(feature)]
    if missing:
        name = missing[0].wire_name
        raise CookieError(
            f"cookie announces mandatory feature {name} but carries no data for it",
            feature=name,
        )
