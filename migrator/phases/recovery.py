"""What a restarted daemon does with a half-done migration job (libvirt's
``qemuProcessRecoverMigrationIn/Out``).

The decision depends only on the phase saved before the daemon went away and on what QEMU
reports now, so it is a pure function. The runtime carries out the actions and, when
``phase`` is not None, rebuilds the job in that phase so that it can still finish (a
post-copy migration completing by itself) or be resumed by the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.phases.actions import (
    Action,
    CancelMigration,
    KillGuest,
    ResumeGuest,
    UndefineDefinition,
    reset_steps,
)
from migrator.phases.destination import DestinationPhase
from migrator.phases.source import SourcePhase
from migrator.status import MigrationStatus, RunState
from params import MigrationFlag


@dataclass(frozen=True)
class Recovery:
    """The decision: carry out ``actions``; keep the job in ``phase``, or end it (None)."""

    actions: tuple[Action, ...]
    phase: SourcePhase | DestinationPhase | None


_PAUSED_BY_MIGRATION = frozenset(
    {RunState.PAUSED, RunState.POSTMIGRATE, RunState.FINISH_MIGRATE, RunState.PRELAUNCH}
)


def recover_source(
    phase: SourcePhase,
    *,
    flags: MigrationFlag,
    postcopy: bool,
    status: MigrationStatus,
    run_state: RunState | None,
    was_running: bool,
) -> Recovery:
    """Decide what to do with an outgoing job found in ``phase`` after a restart.

    ``postcopy`` is whether the migration had switched to post-copy; ``status`` and
    ``run_state`` are what QEMU reports now (``run_state`` None: QEMU is gone).
    """
    if run_state is None:
        return Recovery((), None)
    resume = (ResumeGuest(),) if was_running and run_state in _PAUSED_BY_MIGRATION else ()
    match phase:
        case SourcePhase.NONE | SourcePhase.BEGIN3 | SourcePhase.ABORTED:
            return Recovery((), None)
        case SourcePhase.PERFORM3 | SourcePhase.PERFORM3_FAILED | SourcePhase.FAILED:
            cancel = (
                () if status.finished or status is MigrationStatus.NONE else (CancelMigration(),)
            )
            return Recovery((*cancel, *reset_steps(flags), *resume), None)
        case SourcePhase.PERFORM3_DONE if not postcopy:
            # The guest may already run on the destination: leave it paused here.
            return Recovery(reset_steps(flags), None)
        case SourcePhase.CONFIRM3_CANCELLED if not postcopy:
            return Recovery((*reset_steps(flags), *resume), None)
        case SourcePhase.CONFIRM3:
            return _source_migrated(flags)
        case SourcePhase.CONFIRM_RESUME if status is MigrationStatus.COMPLETED:
            return _source_migrated(flags)
        case SourcePhase.GUEST_LOST:
            return Recovery((), None)
    return _source_postcopy(flags=flags, status=status)


def _source_migrated(flags: MigrationFlag) -> Recovery:
    undefine = (UndefineDefinition(),) if MigrationFlag.UNDEFINE_SOURCE in flags else ()
    return Recovery((KillGuest(migrated=True), *undefine), None)


def _source_postcopy(*, flags: MigrationFlag, status: MigrationStatus) -> Recovery:
    if status is MigrationStatus.COMPLETED:
        return _source_migrated(flags)
    # Still running in post-copy (it may finish by itself) or paused (the user resumes it):
    # either way the job is kept and neither side is killed.
    return Recovery((), SourcePhase.POSTCOPY_FAILED)


def recover_destination(
    phase: DestinationPhase,
    *,
    flags: MigrationFlag,
    status: MigrationStatus,
    run_state: RunState | None,
    postcopy: bool = False,
) -> Recovery:
    """Decide what to do with an incoming job found in ``phase`` after a restart.

    ``postcopy`` is whether the job saw the switch to post-copy. In Prepare the stream may
    have switched to post-copy before Finish came (or before that was stored): QEMU's
    status decides then, since the guest's only complete copy is being assembled here.
    """
    if run_state is None:
        return Recovery((), None)
    switched = postcopy or status.in_postcopy
    match phase:
        case DestinationPhase.PREPARE if switched:
            return _destination_postcopy(flags=flags, status=status, run_state=run_state)
        case DestinationPhase.NONE | DestinationPhase.PREPARE | DestinationPhase.CANCELLED:
            return Recovery((KillGuest(),), None)
        case DestinationPhase.FINISH3 | DestinationPhase.FAILED if not switched:
            if run_state is RunState.RUNNING or (
                status is MigrationStatus.COMPLETED and MigrationFlag.PAUSED in flags
            ):
                return Recovery(reset_steps(flags), None)
            return Recovery((KillGuest(),), None)
        case DestinationPhase.COMPLETED | DestinationPhase.GUEST_LOST:
            return Recovery((), None)
    return _destination_postcopy(flags=flags, status=status, run_state=run_state)


def _destination_postcopy(
    *, flags: MigrationFlag, status: MigrationStatus, run_state: RunState
) -> Recovery:
    # In post-copy the guest must run here: the source no longer can.
    resume = () if run_state is RunState.RUNNING else (ResumeGuest(),)
    if status is MigrationStatus.COMPLETED:
        return Recovery((*resume, *reset_steps(flags)), None)
    return Recovery(resume, DestinationPhase.POSTCOPY_FAILED)
