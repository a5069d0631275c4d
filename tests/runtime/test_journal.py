from __future__ import annotations

import pytest

from migrator.phases.actions import (
    ApplyParams,
    KillGuest,
    PauseGuest,
    RestoreParams,
    ResumeGuest,
    StartIncoming,
    StartMigration,
)
from migrator.runtime.journal import RollbackJournal
from migrator.runtime.source import MigrationFailed
from params import MigrationFlag as F

from .cluster import Cluster, make_domain


def test_compensations_drain_newest_first() -> None:
    journal = RollbackJournal()
    for action in (StartIncoming(), ApplyParams(), PauseGuest(), StartMigration()):
        journal.record(action)
    assert journal.drain() == [ResumeGuest(), RestoreParams(), KillGuest()]
    assert len(journal) == 0


def test_a_planned_rollback_settles_its_entry() -> None:
    journal = RollbackJournal()
    journal.record(ApplyParams())
    journal.record(PauseGuest())
    journal.record(ResumeGuest())
    assert journal.names() == ["RestoreParams"]


async def test_an_internal_error_drains_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Cluster()
    await cluster.start(make_domain())
    source = cluster.source(cluster.a)
    begin = await source.begin("vm", flags=F.PEER2PEER, typed={})
    prepared = await cluster.destination(cluster.b).prepare(
        cookie=begin.cookie, xml=begin.xml, flags=F.PEER2PEER, typed={}
    )
    job = source.job("vm")

    def broken(*_: object) -> None:
        raise RuntimeError("bug in a planner")

    # Non-live: the source pauses the guest, then the planner of the next step breaks.
    monkeypatch.setattr(job, "plan_performed", broken)
    with pytest.raises(MigrationFailed, match="phase failed"):
        await source.perform("vm", cookie=prepared.cookie, uri=prepared.uri)
    assert job.done
    # The journal resumed the guest the source had paused and restored its parameters.
    assert await cluster.running_on("vm") == ["host-a"]
    assert source._jobs["vm"].runner.journal.names() == []
