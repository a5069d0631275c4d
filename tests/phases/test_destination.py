from __future__ import annotations

import pytest

from migrator.phases import DestinationJob, DestinationPhase, IllegalEvent
from migrator.phases.events import (
    Cancel,
    Finish,
    FinishResume,
    GuestLost,
    PeerLost,
    Prepare,
    PrepareResume,
    StatusChanged,
)
from migrator.status import MigrationStatus as MS
from params import MigrationFlag as F

from .helpers import names

LIVE = F.LIVE | F.PEER2PEER


def prepared(flags: F = LIVE) -> DestinationJob:
    job = DestinationJob(flags=flags)
    job.handle(Prepare())
    return job


def test_prepare_starts_an_incoming_guest_and_applies_parameters() -> None:
    job = DestinationJob(flags=LIVE)
    assert names(job.handle(Prepare())) == [
        "StartIncoming",
        "SaveOriginalParams",
        "ApplyParams",
        "EmitCookie",
    ]
    assert job.state is DestinationPhase.PREPARE


def test_finish_after_completion_resumes_and_restores() -> None:
    job = prepared(LIVE | F.PERSIST_DEST)
    job.handle(StatusChanged(MS.ACTIVE))
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(Finish(cancelled=False))) == [
        "PersistDefinition",
        "ResumeGuest",
        "RestoreParams",
        "EmitCookie",
    ]
    assert job.state is DestinationPhase.COMPLETED


def test_finish_before_completion_waits_for_it() -> None:
    job = prepared()
    assert job.handle(Finish(cancelled=False)) == []
    assert job.state is DestinationPhase.FINISH3
    assert names(job.handle(StatusChanged(MS.COMPLETED))) == [
        "ResumeGuest",
        "RestoreParams",
        "EmitCookie",
    ]


def test_paused_flag_leaves_the_guest_paused() -> None:
    job = prepared(LIVE | F.PAUSED)
    job.handle(StatusChanged(MS.COMPLETED))
    assert "ResumeGuest" not in names(job.handle(Finish(cancelled=False)))


def test_cancelled_finish_kills_the_incoming_guest() -> None:
    job = prepared()
    assert names(job.handle(Finish(cancelled=True))) == ["KillGuest"]
    assert job.state is DestinationPhase.CANCELLED


def test_finish_of_a_failed_stream_kills_the_incoming_guest() -> None:
    job = prepared()
    job.handle(StatusChanged(MS.FAILED))
    assert names(job.handle(Finish(cancelled=False))) == ["KillGuest"]
    assert job.state is DestinationPhase.CANCELLED


def test_offline_prepare_starts_nothing_and_finish_persists() -> None:
    job = prepared(F.OFFLINE | F.PERSIST_DEST)
    assert names(job.handle(Finish(cancelled=False))) == ["PersistDefinition"]
    assert job.state is DestinationPhase.COMPLETED


@pytest.mark.parametrize("event", [PeerLost(), Cancel()])
def test_losing_the_source_during_prepare_auto_destroys(event: PeerLost | Cancel) -> None:
    job = prepared()
    assert names(job.handle(event)) == ["KillGuest"]
    assert job.state is DestinationPhase.CANCELLED


def test_postcopy_finish_runs_the_guest_before_the_last_pages() -> None:
    job = prepared(LIVE | F.POSTCOPY | F.PERSIST_DEST)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    assert names(job.handle(Finish(cancelled=False))) == ["PersistDefinition", "ResumeGuest"]
    assert job.state is DestinationPhase.FINISH3_POSTCOPY
    assert names(job.handle(StatusChanged(MS.COMPLETED))) == ["RestoreParams", "EmitCookie"]


def test_postcopy_failure_on_the_destination_kills_nothing() -> None:
    job = prepared(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(Finish(cancelled=False))
    assert job.handle(PeerLost()) == []
    assert job.state is DestinationPhase.POSTCOPY_FAILED
    assert not job.done


def test_peer_lost_in_postcopy_before_finish_keeps_the_guest() -> None:
    job = prepared(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    assert job.handle(PeerLost()) == []
    assert job.state is DestinationPhase.POSTCOPY_FAILED


def test_postcopy_resume_on_the_destination() -> None:
    job = prepared(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(Finish(cancelled=False))
    job.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    assert names(job.handle(PrepareResume())) == ["RecoverPostcopy"]
    assert job.handle(FinishResume()) == []
    assert job.state is DestinationPhase.FINISH_RESUME
    assert names(job.handle(StatusChanged(MS.COMPLETED))) == ["RestoreParams", "EmitCookie"]
    assert job.state is DestinationPhase.COMPLETED


def test_guest_lost_on_the_destination_ends_the_job() -> None:
    job = prepared()
    job.handle(GuestLost())
    assert job.state is DestinationPhase.GUEST_LOST


def test_prepare_twice_is_illegal() -> None:
    job = prepared()
    with pytest.raises(IllegalEvent, match="prepare"):
        job.handle(Prepare())


def test_cancelled_finish_after_the_incoming_guest_exited_is_accepted() -> None:
    job = prepared()
    job.handle(GuestLost(detail="incoming migration failed"))
    assert job.handle(Finish(cancelled=True)) == []
    assert job.state is DestinationPhase.GUEST_LOST


@pytest.mark.parametrize("cancelled", [False, True])
def test_finish_after_the_postcopy_stream_paused_keeps_the_guest(cancelled: bool) -> None:
    job = prepared(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    assert names(job.handle(Finish(cancelled=cancelled))) == ["ResumeGuest"]
    assert job.state is DestinationPhase.POSTCOPY_FAILED
    assert not job.done


def test_cancelled_finish_during_postcopy_keeps_the_guest() -> None:
    job = prepared(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    assert names(job.handle(Finish(cancelled=True))) == ["ResumeGuest"]
    assert job.state is DestinationPhase.POSTCOPY_FAILED


def test_postcopy_is_remembered_after_the_stream_failed() -> None:
    job = prepared(LIVE | F.POSTCOPY)
    job.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    job.handle(StatusChanged(MS.FAILED))
    assert job.postcopy_started
    assert "KillGuest" not in names(job.handle(Finish(cancelled=False)))
    assert job.state is DestinationPhase.POSTCOPY_FAILED
