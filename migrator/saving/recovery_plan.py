"""What a starting daemon does with a save or restore job that its predecessor left half done:
a decision from the job's record and from what QEMU and the image look like now. Pure: the
caller observes and carries the actions out (:mod:`migrator.saving.recovery`).

libvirt cancels a save left running (``migrate_cancel``) and resumes the guest that the save
paused, and kills an incoming QEMU that never ran. Here, in addition, QEMU's bandwidth limit
comes back, the partial image the save created is removed (never a file it did not create,
never a complete image), and a restored guest that already runs is kept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from migrator.saving.records import SaveJobKind, SaveRecord
from migrator.status import MigrationStatus, RunState


class ImageState(enum.Enum):
    """What the image of a save looks like now."""

    MISSING = "missing"
    #: The partial magic, or less than a header: the save had not finished it.
    INCOMPLETE = "incomplete"
    #: The complete magic: a usable image.
    COMPLETE = "complete"


class RecoveryAction(enum.Enum):
    """One step of a recovery; the value says what it does."""

    CANCEL_MIGRATION = "cancel QEMU's migration"
    RESTORE_BANDWIDTH = "restore the bandwidth limit"
    RESUME = "resume the guest"
    REMOVE_PARTIAL_IMAGE = "remove the partial image"
    KILL = "kill the incoming QEMU"
    KEEP = "keep the guest"
    REMOVE_MANAGED_IMAGE = "remove the managed save image"


@dataclass(frozen=True)
class QemuNow:
    """What the QEMU of a save's guest reports now."""

    status: MigrationStatus
    run_state: RunState


@dataclass(frozen=True)
class RecoveryPlan:
    """The steps to take, in order, and why."""

    actions: tuple[RecoveryAction, ...]
    reason: str


def plan_save(record: SaveRecord, *, qemu: QemuNow | None, image: ImageState) -> RecoveryPlan:
    """The recovery of a save (plain or managed); ``qemu`` is ``None`` when QEMU is gone."""
    bandwidth = (RecoveryAction.RESTORE_BANDWIDTH,) if record.original_bandwidth is not None else ()
    if image is ImageState.COMPLETE:
        if qemu is None:
            return RecoveryPlan((), "QEMU is gone and the image is complete: it stays")
        return RecoveryPlan(
            bandwidth,
            "the image is complete: it stays, and the guest stays as it is (paused), since "
            "it must not run on from the state the image holds",
        )
    removal = (
        (RecoveryAction.REMOVE_PARTIAL_IMAGE,)
        if record.created and image is ImageState.INCOMPLETE
        else ()
    )
    if qemu is None:
        return RecoveryPlan(removal, "QEMU is gone")
    cancel = () if _idle(qemu.status) else (RecoveryAction.CANCEL_MIGRATION,)
    resume = (
        (RecoveryAction.RESUME,) if record.was_running and not qemu.run_state.cpus_running else ()
    )
    return RecoveryPlan(
        (*cancel, *bandwidth, *resume, *removal),
        f"the save did not complete; QEMU's migration: {qemu.status.value}",
    )


def plan_restore(record: SaveRecord, *, alive: bool, run_state: RunState | None) -> RecoveryPlan:
    """The recovery of a restore; ``run_state`` is what QEMU reports (``None``: not asked, as
    for a QEMU that never loaded the stream, whose monitor may not even answer)."""
    if not alive:
        return RecoveryPlan((), "QEMU is gone; the image stays")
    if run_state is None or not run_state.cpus_running:
        stage = "ran the guest" if record.loaded else "loaded the stream"
        return RecoveryPlan(
            (RecoveryAction.KILL,),
            f"the incoming QEMU never {stage}; the image stays for another try",
        )
    if record.kind is SaveJobKind.MANAGED_RESTORE:
        return RecoveryPlan(
            (RecoveryAction.KEEP, RecoveryAction.REMOVE_MANAGED_IMAGE),
            "the guest runs from its managed save image already",
        )
    return RecoveryPlan((RecoveryAction.KEEP,), "the guest runs from the image already")


def _idle(status: MigrationStatus) -> bool:
    """Whether QEMU has no migration that a cancel would still stop."""
    return status is MigrationStatus.NONE or status.finished
