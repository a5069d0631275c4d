"""Every row of libvirt's restart-recovery table (libvirt-facts section 5d)."""

from __future__ import annotations

import pytest

from migrator.phases import DestinationPhase as DP
from migrator.phases import SourcePhase as SP
from migrator.phases import recover_destination, recover_source
from migrator.status import MigrationStatus as MS
from migrator.status import RunState as RS
from params import MigrationFlag as F


def src(phase: SP, *, postcopy: bool = False, status: MS = MS.NONE, run: RS = RS.PAUSED):
    decision = recover_source(
        phase,
        flags=F.LIVE | F.UNDEFINE_SOURCE,
        postcopy=postcopy,
        status=status,
        run_state=run,
        was_running=True,
    )
    return [a.name for a in decision.actions], decision.phase


def dst(phase: DP, *, status: MS = MS.NONE, run: RS = RS.PAUSED, flags: F = F.LIVE):
    decision = recover_destination(phase, flags=flags, status=status, run_state=run)
    return [a.name for a in decision.actions], decision.phase


def test_out_begin3_forgets_the_job() -> None:
    assert src(SP.BEGIN3, run=RS.RUNNING) == ([], None)


@pytest.mark.parametrize("status", [MS.ACTIVE, MS.POSTCOPY_ACTIVE])
def test_out_perform3_cancels_and_resumes(status: MS) -> None:
    assert src(SP.PERFORM3, status=status) == (
        ["CancelMigration", "RestoreParams", "ResumeGuest"],
        None,
    )


def test_out_perform3_with_finished_stream_only_resumes() -> None:
    assert src(SP.PERFORM3, status=MS.FAILED) == (["RestoreParams", "ResumeGuest"], None)


def test_out_perform3_done_keeps_the_guest_paused() -> None:
    assert src(SP.PERFORM3_DONE, status=MS.COMPLETED) == (["RestoreParams"], None)


def test_out_confirm3_cancelled_resumes() -> None:
    assert src(SP.CONFIRM3_CANCELLED, status=MS.FAILED) == (["RestoreParams", "ResumeGuest"], None)


def test_out_confirm3_kills_the_migrated_source() -> None:
    assert src(SP.CONFIRM3, status=MS.COMPLETED) == (["KillGuest", "UndefineDefinition"], None)


def test_out_confirm_resume_completed_kills() -> None:
    assert src(SP.CONFIRM_RESUME, postcopy=True, status=MS.COMPLETED)[0][0] == "KillGuest"


@pytest.mark.parametrize(
    "phase", [SP.POSTCOPY_FAILED, SP.BEGIN_RESUME, SP.PERFORM_RESUME, SP.CONFIRM_RESUME]
)
@pytest.mark.parametrize("status", [MS.POSTCOPY_ACTIVE, MS.POSTCOPY_PAUSED])
def test_out_postcopy_phases_keep_the_job(phase: SP, status: MS) -> None:
    assert src(phase, postcopy=True, status=status) == ([], SP.POSTCOPY_FAILED)


@pytest.mark.parametrize("phase", [SP.PERFORM3_DONE, SP.CONFIRM3_CANCELLED])
def test_out_postcopy_after_perform_keeps_the_job(phase: SP) -> None:
    assert src(phase, postcopy=True, status=MS.POSTCOPY_PAUSED) == ([], SP.POSTCOPY_FAILED)


def test_out_postcopy_already_completed_kills() -> None:
    actions, phase = src(SP.POSTCOPY_FAILED, postcopy=True, status=MS.COMPLETED)
    assert actions[0] == "KillGuest"
    assert phase is None


def test_out_with_qemu_gone_has_nothing_to_do() -> None:
    decision = recover_source(
        SP.PERFORM3,
        flags=F.LIVE,
        postcopy=False,
        status=MS.NONE,
        run_state=None,
        was_running=True,
    )
    assert decision.actions == ()
    assert decision.phase is None


def test_in_prepare_kills_the_unfinished_incoming_guest() -> None:
    assert dst(DP.PREPARE, status=MS.ACTIVE) == (["KillGuest"], None)


def test_in_finish3_running_keeps_it() -> None:
    assert dst(DP.FINISH3, status=MS.COMPLETED, run=RS.RUNNING) == (["RestoreParams"], None)


def test_in_finish3_not_running_kills() -> None:
    assert dst(DP.FINISH3, status=MS.ACTIVE, run=RS.PAUSED) == (["KillGuest"], None)


def test_in_finish3_completed_and_asked_to_stay_paused_keeps_it() -> None:
    decision = dst(DP.FINISH3, status=MS.COMPLETED, run=RS.PAUSED, flags=F.LIVE | F.PAUSED)
    assert decision == (["RestoreParams"], None)


@pytest.mark.parametrize(
    "phase",
    [DP.FINISH3, DP.FINISH3_POSTCOPY, DP.POSTCOPY_FAILED, DP.PREPARE_RESUME, DP.FINISH_RESUME],
)
def test_in_postcopy_keeps_the_guest_running(phase: DP) -> None:
    assert dst(phase, status=MS.POSTCOPY_PAUSED, run=RS.RUNNING) == ([], DP.POSTCOPY_FAILED)


def test_in_postcopy_resumes_a_guest_left_paused() -> None:
    assert dst(DP.FINISH3_POSTCOPY, status=MS.POSTCOPY_ACTIVE) == (
        ["ResumeGuest"],
        DP.POSTCOPY_FAILED,
    )


def test_in_postcopy_completed_ends_the_job() -> None:
    assert dst(DP.POSTCOPY_FAILED, status=MS.COMPLETED, run=RS.RUNNING) == (["RestoreParams"], None)


@pytest.mark.parametrize("status", [MS.POSTCOPY_ACTIVE, MS.POSTCOPY_PAUSED])
def test_in_prepare_with_qemu_in_postcopy_keeps_the_guest(status: MS) -> None:
    assert dst(DP.PREPARE, status=status) == (["ResumeGuest"], DP.POSTCOPY_FAILED)


def test_in_prepare_after_postcopy_completed_keeps_the_guest() -> None:
    decision = recover_destination(
        DP.PREPARE, flags=F.LIVE, status=MS.COMPLETED, run_state=RS.PAUSED, postcopy=True
    )
    assert [a.name for a in decision.actions] == ["ResumeGuest", "RestoreParams"]
    assert decision.phase is None
