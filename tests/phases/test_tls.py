"""Migrations with TLS: each side creates its credentials before the parameters are applied
and deletes them wherever the parameters are restored (libvirt's EnableTLS, DisableTLS and
ParamsReset), in the machines and in the restart-recovery table alike."""

from __future__ import annotations

import pytest

from migrator.phases import DestinationJob, SourceJob, recover_destination, recover_source
from migrator.phases import DestinationPhase as DP
from migrator.phases import SourcePhase as SP
from migrator.phases.actions import (
    Action,
    ApplyParams,
    CreateTLSCredentials,
    DeleteTLSCredentials,
    RestoreParams,
)
from migrator.phases.events import (
    Begin,
    BeginResume,
    Confirm,
    Finish,
    FinishResume,
    PeerLost,
    Perform,
    PerformResume,
    Prepare,
    PrepareResume,
    StatusChanged,
)
from migrator.status import MigrationStatus as MS
from migrator.status import RunState as RS
from params import MigrationFlag as F

from .helpers import names

LIVE = F.LIVE | F.PEER2PEER
TLS = LIVE | F.TLS


def performing(flags: F) -> SourceJob:
    job = SourceJob(flags=flags)
    job.handle(Begin(running=True))
    job.handle(Perform())
    return job


def prepared(flags: F) -> DestinationJob:
    job = DestinationJob(flags=flags)
    job.handle(Prepare())
    return job


def apply_of(actions: list[Action]) -> ApplyParams:
    (apply,) = [action for action in actions if isinstance(action, ApplyParams)]
    return apply


def test_the_source_creates_its_credentials_before_applying_the_parameters() -> None:
    job = SourceJob(flags=TLS)
    job.handle(Begin(running=True))
    actions = job.handle(Perform())
    assert names(actions) == [
        "SaveOriginalParams",
        "CreateTLSCredentials",
        "ApplyParams",
        "StartMigration",
    ]
    assert apply_of(actions).tls


def test_the_destination_creates_its_credentials_before_applying_the_parameters() -> None:
    actions = DestinationJob(flags=TLS).handle(Prepare())
    assert names(actions) == [
        "StartIncoming",
        "SaveOriginalParams",
        "CreateTLSCredentials",
        "ApplyParams",
        "EmitCookie",
    ]
    assert apply_of(actions).tls


@pytest.mark.parametrize("flags", [LIVE, LIVE | F.POSTCOPY, F.PEER2PEER])
def test_without_the_flag_nothing_is_created_and_tls_is_turned_off(flags: F) -> None:
    source = SourceJob(flags=flags)
    source.handle(Begin(running=True))
    for actions in (source.handle(Perform()), DestinationJob(flags=flags).handle(Prepare())):
        assert CreateTLSCredentials() not in actions
        assert not apply_of(actions).tls


@pytest.mark.parametrize("status", [MS.FAILED, MS.CANCELLED])
def test_a_source_rollback_deletes_the_credentials_after_restoring(status: MS) -> None:
    job = performing(TLS)
    job.handle(StatusChanged(status))
    assert names(job.handle(Confirm(cancelled=True))) == [
        "RestoreParams",
        "DeleteTLSCredentials",
        "ResumeGuest",
    ]


def test_a_source_left_paused_deletes_the_credentials_too() -> None:
    job = performing(TLS)
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(PeerLost())) == ["RestoreParams", "DeleteTLSCredentials"]


def test_a_migrated_source_is_killed_with_its_credentials() -> None:
    job = performing(TLS)
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(Confirm(cancelled=False))) == ["KillGuest"]


def test_the_destination_deletes_the_credentials_once_the_guest_arrived() -> None:
    job = prepared(TLS)
    job.handle(StatusChanged(MS.COMPLETED))
    assert names(job.handle(Finish(cancelled=False))) == [
        "ResumeGuest",
        "RestoreParams",
        "DeleteTLSCredentials",
        "EmitCookie",
    ]


def test_post_copy_keeps_the_credentials_until_it_completes_and_resume_reuses_them() -> None:
    source = performing(TLS | F.POSTCOPY)
    destination = prepared(TLS | F.POSTCOPY)
    source.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    destination.handle(Finish(cancelled=False))
    destination.handle(StatusChanged(MS.POSTCOPY_ACTIVE))
    source.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    destination.handle(StatusChanged(MS.POSTCOPY_PAUSED))
    assert source.state is SP.POSTCOPY_FAILED
    assert destination.state is DP.POSTCOPY_FAILED
    source.handle(BeginResume(status=MS.POSTCOPY_PAUSED))
    destination.handle(PrepareResume())
    resumed = source.handle(PerformResume()) + destination.handle(FinishResume())
    assert CreateTLSCredentials() not in resumed
    assert DeleteTLSCredentials() not in resumed
    assert names(destination.handle(StatusChanged(MS.COMPLETED))) == [
        "RestoreParams",
        "DeleteTLSCredentials",
        "EmitCookie",
    ]


def _source_recovery(phase: SP, *, flags: F, status: MS) -> list[str]:
    decision = recover_source(
        phase, flags=flags, postcopy=False, status=status, run_state=RS.PAUSED, was_running=True
    )
    return names(list(decision.actions))


@pytest.mark.parametrize(
    ("phase", "status"),
    [
        (SP.PERFORM3, MS.ACTIVE),
        (SP.PERFORM3_FAILED, MS.FAILED),
        (SP.PERFORM3_DONE, MS.COMPLETED),
        (SP.CONFIRM3_CANCELLED, MS.FAILED),
    ],
)
def test_source_recovery_deletes_the_credentials_where_it_restores(phase: SP, status: MS) -> None:
    plain = _source_recovery(phase, flags=LIVE, status=status)
    encrypted = _source_recovery(phase, flags=TLS, status=status)
    assert RestoreParams().name in plain
    assert DeleteTLSCredentials().name not in plain
    position = plain.index("RestoreParams") + 1
    assert encrypted == [*plain[:position], "DeleteTLSCredentials", *plain[position:]]


@pytest.mark.parametrize(
    ("phase", "status", "run"),
    [
        (DP.FINISH3, MS.COMPLETED, RS.RUNNING),
        (DP.POSTCOPY_FAILED, MS.COMPLETED, RS.RUNNING),
        (DP.PREPARE, MS.COMPLETED, RS.PAUSED),
    ],
)
def test_destination_recovery_deletes_the_credentials_where_it_restores(
    phase: DP, status: MS, run: RS
) -> None:
    def actions(flags: F) -> list[str]:
        decision = recover_destination(
            phase, flags=flags, status=status, run_state=run, postcopy=phase is not DP.FINISH3
        )
        return names(list(decision.actions))

    assert actions(TLS) == [*actions(LIVE), "DeleteTLSCredentials"]
    assert actions(TLS)[-2] == "RestoreParams"
