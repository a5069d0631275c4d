from __future__ import annotations

import pytest

from migrator.phases import IllegalEvent, JobFailed, PhaseRefused, SourceJob, SourcePhase
from migrator.phases.actions import StartMigration
from migrator.phases.events import (
    Begin,
    BeginResume,
    Cancel,
    Confirm,
    ConfirmResume,
    GuestLost,
    PeerLost,
    Perform,
    PerformResume,
    StatusChanged,
    SwitchToPostcopy,
)
from migrator.status import MigrationStatus as MS
from params import MigrationFlag as F

from .helpers import names

LIVE = F.LIVE | F.PEER2PEER


def performing(flags: F = LIVE, *, running: bool = True) -> SourceJob:
    job = SourceJob(flags=flags)
    job.handle(Begin(running=running))
    job.handle(Perform())
    return job


def test_live_migration_plans_every_step_in_order() -> None:
    job = SourceJob(flags=LIVE)
    assert names(job.handle(Begin(running=True))) == ["EmitCookie"]
    assert names(job.handle(Perform(graphics=True))) == [
        "SaveOriginalParams",
        "ApplyParams",
        "RelocateGraphics",
        "StartMigration",
    ]
    assert job.handle(StatusChanged(MS.ACTIVE)) == []
    assert job.state is SourcePhase.PERFORM3
    assert names(job.handle(StatusChanged(MS.COMPLETED))) == ["EmitCookie"]
    assert job.state is SourcePhase.PERFORM3_DONE
    assert names(job.handle(Confirm(cancelled=False))) == ["KillGuest"]
    assert job.state is SourcePhase.CONFIRM3
    assert job.done


@pytest.mark.parametrize(
    ("extra", "own_connection"), [(F(0), True), (F.POSTCOPY, False), (F.PARALLEL, False)]
)
def test_the_source_connects_the_stream_unless_qemu_must(extra: F, own_connection: bool) -> None:
    """As libvirt: QEMU connects by itself for multifd and post-copy (more channels, or a
    reconnection later); otherwise the source host opens the connection for it."""
    job = SourceJob(flags=LIVE | extra)
    job.handle(Begin(running=True))
    (start,) = [action for action in job.handle(Perform()) if isinstance(action, StartMigration)]
    assert start.own_connection is own_connection


def test_non_live_migration_pauses_a_running_guest_first() -> None:
    job = SourceJob(flags=F.PEER2PEER)
    job.handle(Begin(running=True))
    assert "PauseGuest" in names(job.handle(Perform()))


def test_non_live_migration_of_a_paused_guest_does_not_pause_again() -> None:
    job = SourceJob(flags=F.PEER2PEER)
    job.handle(Begin(running=False))
    assert "PauseGuest" not in names(job.handle(Perform()))


def test_undefine_source_removes_the_definition_on_success() -> None:
    job = performing(LIVE | F.UNDEFINE_SOURCE)
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(Confirm(cancelled=False))) == ["KillGuest", "UndefineDefinition"]


def test_offline_migration_skips_perform() -> None:
    job = SourceJob(flags=F.OFFLINE | F.PERSIST_DEST | F.UNDEFINE_SOURCE)
    job.handle(Begin(running=False))
    with pytest.raises(IllegalEvent):
        job.handle(Perform())
    assert names(job.handle(Confirm(cancelled=False))) == ["UndefineDefinition"]
    assert job.state is SourcePhase.CONFIRM3


@pytest.mark.parametrize("status", [MS.FAILED, MS.CANCELLED])
def test_perform_failure_rolls_back_at_confirm(status: MS) -> None:
    job = performing()
    assert job.handle(StatusChanged(status)) == []
    assert job.state is SourcePhase.PERFORM3_FAILED
    assert names(job.handle(Confirm(cancelled=True))) == ["RestoreParams", "ResumeGuest"]
    assert job.state is SourcePhase.CONFIRM3_CANCELLED


def test_rollback_leaves_a_guest_that_was_paused_paused() -> None:
    job = performing(running=False)
    job.handle(StatusChanged(MS.FAILED))
    assert names(job.handle(Confirm(cancelled=True))) == ["RestoreParams"]


def test_finish_failure_after_completion_rolls_back() -> None:
    job = performing()
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(Confirm(cancelled=True))) == ["RestoreParams", "ResumeGuest"]


def test_cancel_during_begin_ends_the_job_with_nothing_to_undo() -> None:
    job = SourceJob(flags=LIVE)
    job.handle(Begin(running=True))
    assert job.handle(Cancel()) == []
    assert job.state is SourcePhase.ABORTED


def test_cancel_during_perform_cancels_the_qemu_migration() -> None:
    job = performing()
    job.handle(StatusChanged(MS.ACTIVE))
    assert names(job.handle(Cancel())) == ["CancelMigration"]
    job.handle(StatusChanged(MS.CANCELLING))
    job.handle(StatusChanged(MS.CANCELLED))
    assert job.state is SourcePhase.PERFORM3_FAILED


@pytest.mark.parametrize("ending", [MS.CANCELLED, MS.FAILED])
def test_a_stream_that_ends_after_an_abort_counts_as_cancelled(ending: MS) -> None:
    """QEMU cancelled while its stream is blocked may report "failed": the abort did it."""
    job = performing()
    job.handle(StatusChanged(MS.ACTIVE))
    assert not job.stream_cancelled
    job.handle(Cancel())
    job.handle(StatusChanged(ending))
    assert job.stream_cancelled


def test_a_stream_that_fails_without_an_abort_is_not_cancelled() -> None:
    job = performing()
    job.handle(StatusChanged(MS.ACTIVE))
    job.handle(PeerLost())
    job.handle(StatusChanged(MS.FAILED))
    assert not job.stream_cancelled


def test_peer_lost_during_perform_cancels_and_fails() -> None:
    job = performing()
    job.handle(StatusChanged(MS.ACTIVE))
    assert names(job.handle(PeerLost())) == ["CancelMigration"]
    assert job.state is SourcePhase.PERFORM3_FAILED


def test_peer_lost_after_perform_leaves_the_guest_paused() -> None:
    job = performing()
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(PeerLost())) == ["RestoreParams"]
    assert job.state is SourcePhase.CONFIRM3_CANCELLED


def test_postcopy_switch_and_success_at_postcopy_active() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.ACTIVE))
    assert names(job.handle(SwitchToPostcopy())) == ["StartPostcopy"]
    assert names(job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))) == ["EmitCookie"]
    assert job.state is SourcePhase.PERFORM3_DONE
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(Confirm(cancelled=False))) == ["KillGuest"]


def test_postcopy_switch_refused_without_the_flag() -> None:
    job = performing()
    with pytest.raises(PhaseRefused, match="postcopy"):
        job.handle(SwitchToPostcopy())
    assert job.state is SourcePhase.PERFORM3


def test_cancel_refused_once_postcopy_was_requested() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(SwitchToPostcopy())
    with pytest.raises(PhaseRefused, match="post-copy"):
        job.handle(Cancel())


def test_failure_after_postcopy_switch_keeps_the_job_and_kills_nothing() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(SwitchToPostcopy())
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    assert job.handle(StatusChanged(MS.POSTCOPY_PAUSED)) == []
    assert job.state is SourcePhase.POSTCOPY_FAILED
    assert not job.done
    assert job.handle(Confirm(cancelled=True)) == []
    assert job.state is SourcePhase.POSTCOPY_FAILED


def test_postcopy_resume_runs_from_postcopy_paused() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(PeerLost())
    assert job.state is SourcePhase.POSTCOPY_FAILED
    with pytest.raises(PhaseRefused, match="still running"):
        job.handle(BeginResume(status=MS.POSTCOPY_ACTIVE))
    assert names(job.handle(BeginResume(status=MS.POSTCOPY_PAUSED))) == ["EmitCookie"]
    assert names(job.handle(PerformResume())) == ["ApplyParams", "StartMigration"]
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    assert names(job.handle(ConfirmResume())) == ["KillGuest"]
    assert job.state is SourcePhase.CONFIRM_RESUME


def test_resume_failure_returns_to_postcopy_failed() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    job.handle(BeginResume(status=MS.POSTCOPY_PAUSED))
    job.handle(PerformResume())
    job.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    assert job.state is SourcePhase.POSTCOPY_FAILED


def test_unattended_postcopy_completion_kills_the_source() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(PeerLost())
    assert names(job.handle(StatusChanged(MS.COMPLETED))) == ["KillGuest"]


def test_guest_lost_ends_the_job() -> None:
    job = performing()
    job.handle(GuestLost(detail="qemu exited"))
    assert job.state is SourcePhase.GUEST_LOST
    assert job.done


def test_illegal_event_names_side_state_and_event_and_changes_nothing() -> None:
    job = SourceJob(flags=LIVE)
    with pytest.raises(IllegalEvent) as info:
        job.handle(Confirm(cancelled=False))
    assert (info.value.side, info.value.state, info.value.event) == ("source", "none", "confirm")
    assert "confirm" in str(info.value)
    assert job.state is SourcePhase.NONE


def test_internal_error_is_sticky(monkeypatch: pytest.MonkeyPatch) -> None:
    job = SourceJob(flags=LIVE)

    def explode(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(job, "plan_begin", explode)
    with pytest.raises(RuntimeError):
        job.handle(Begin(running=True))
    assert job.state is SourcePhase.FAILED
    with pytest.raises(JobFailed):
        job.handle(Cancel())


def test_pre_switchover_lets_the_migration_continue() -> None:
    job = performing()
    assert names(job.handle(StatusChanged(MS.PRE_SWITCHOVER))) == ["ContinueMigration"]
    assert job.state is SourcePhase.PERFORM3


def test_confirm_after_the_guest_was_lost_is_accepted() -> None:
    job = performing()
    job.handle(GuestLost())
    assert job.handle(Confirm(cancelled=True)) == []


def test_a_resume_that_fails_before_perform_goes_back_to_postcopy_failed() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    job.handle(BeginResume(status=MS.POSTCOPY_PAUSED))
    assert job.handle(Confirm(cancelled=True)) == []
    assert job.state is SourcePhase.POSTCOPY_FAILED
    assert names(job.handle(BeginResume(status=MS.POSTCOPY_PAUSED))) == ["EmitCookie"]


def test_confirm_resume_ends_the_job() -> None:
    job = performing(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    job.handle(BeginResume(status=MS.POSTCOPY_PAUSED))
    job.handle(PerformResume())
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(ConfirmResume())
    assert job.done


def test_only_postcopy_failed_waits_unattended() -> None:
    job = performing(LIVE | F.POSTCOPY)
    assert not job.unattended
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(PeerLost())
    assert job.unattended
