"""libvirt's failure table (libvirt-facts section 5b), one named test per outcome, on the
simulator: who resumes, who kills, what stays paused.

After every test the guest runs on at most one host; after a finished job, on exactly one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cookies import CookieError
from migrator.drivers.sim import Fault, FaultKind, FaultPoint, Link, Operation, Workload
from migrator.phases import DestinationPhase, PhaseRefused, SourcePhase
from migrator.runtime.destination import DestinationSide
from migrator.runtime.host import HostError
from migrator.runtime.protocol import resume_postcopy
from migrator.runtime.restart import reattach
from migrator.runtime.source import MigrationFailed
from migrator.status import MigrationStatus as MS
from migrator.status import RunState
from params import MigrationFlag as F

from .cluster import LIVE_P2P, Cluster, MiB, make_domain, sides_of

#: A guest that dirties memory faster than the default link can carry: never converges.
BUSY = Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=4096 * MiB)
#: A guest whose migration takes a few simulated seconds, so faults can land mid-way.
STEADY = Workload(working_set_bytes=64 * MiB, dirty_rate_bytes_s=20 * MiB)


async def started(workload: Workload = STEADY, *, memory_mib: int = 1024) -> Cluster:
    cluster = Cluster()
    await cluster.start(make_domain(memory_mib=memory_mib), workload=workload)
    return cluster


async def until(cluster: Cluster, predicate: Callable[[], bool]) -> None:
    for _ in range(100_000):
        if predicate():
            return
        await cluster.world.sleep(5)
    raise AssertionError("condition never held")


def crash(host: str, status: MS) -> Fault:
    return Fault(FaultKind.CRASH, host, FaultPoint.on_status(status))


async def assert_only_source_runs(cluster: Cluster) -> None:
    assert await cluster.running_on("vm") == ["host-a"]
    assert await cluster.alive_on("vm") == ["host-a"]
    assert "vm" in cluster.a.guests and "vm" not in cluster.b.guests


# -- Begin ---------------------------------------------------------------------------------


async def test_begin_of_a_guest_that_is_not_running_changes_nothing() -> None:
    cluster = Cluster()
    cluster.a.define(make_domain())
    with pytest.raises(HostError, match="not running"):
        await cluster.migrate("vm")
    assert await cluster.alive_on("vm") == []
    assert cluster.a.status.load("vm") is None


async def test_second_migration_of_a_busy_guest_is_refused() -> None:
    cluster = await started()
    source = cluster.source(cluster.a)
    await source.begin("vm", flags=LIVE_P2P, typed={})
    with pytest.raises(HostError, match="busy"):
        await source.begin("vm", flags=LIVE_P2P, typed={})


async def test_abort_during_begin_ends_the_job_with_nothing_to_undo() -> None:
    cluster = await started()
    source = cluster.source(cluster.a)
    await source.begin("vm", flags=LIVE_P2P, typed={})
    await source.cancel("vm")
    assert source.completed["vm"].phase == SourcePhase.ABORTED.value
    await assert_only_source_runs(cluster)


# -- Prepare -------------------------------------------------------------------------------


async def test_prepare_failure_kills_the_incoming_guest_and_the_source_keeps_running() -> None:
    cluster = await started()
    cluster.world.inject(
        Fault(FaultKind.COMMAND_FAILURE, "host-b", FaultPoint.on_call(Operation.START_INCOMING))
    )
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm")
    await assert_only_source_runs(cluster)
    assert cluster.b.status.load("vm") is None


async def test_migration_to_the_same_host_uuid_is_refused() -> None:
    cluster = await started()
    cluster.b.uuid = cluster.a.uuid
    cluster.a.trusted_keys[cluster.a.uuid] = cluster.a.signing_key.public_key()
    with pytest.raises(CookieError, match="Attempt to migrate guest to the same host"):
        await cluster.migrate("vm")
    await assert_only_source_runs(cluster)


async def test_tampered_begin_cookie_is_refused() -> None:
    cluster = await started()
    begin = await cluster.source(cluster.a).begin("vm", flags=LIVE_P2P, typed={})
    tampered = bytearray(begin.cookie)
    tampered[len(tampered) // 2] ^= 0x01
    with pytest.raises(CookieError):
        await cluster.destination(cluster.b).prepare(
            cookie=bytes(tampered), xml=begin.xml, flags=LIVE_P2P, typed={}
        )
    assert await cluster.alive_on("vm") == ["host-a"]


async def test_losing_the_source_during_prepare_auto_destroys_the_incoming_guest() -> None:
    cluster = await started()
    begin = await cluster.source(cluster.a).begin("vm", flags=LIVE_P2P, typed={})
    destination = cluster.destination(cluster.b)
    await destination.prepare(cookie=begin.cookie, xml=begin.xml, flags=LIVE_P2P, typed={})
    assert await cluster.alive_on("vm") == ["host-a", "host-b"]
    await destination.abandon("vm")
    assert await cluster.alive_on("vm") == ["host-a"]


# -- Perform -------------------------------------------------------------------------------


async def test_link_failure_during_perform_cancels_and_the_source_resumes() -> None:
    cluster = await started()
    cluster.world.inject(
        Fault(FaultKind.LINK_DOWN, "host-a", FaultPoint.on_status(MS.ACTIVE), duration_ms=60_000)
    )
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm")
    await assert_only_source_runs(cluster)


async def test_source_qemu_crash_during_perform_loses_the_guest_and_cleans_the_destination() -> (
    None
):
    cluster = await started()
    cluster.world.inject(crash("host-a", MS.ACTIVE))
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm")
    assert await cluster.alive_on("vm") == []


async def test_destination_crash_during_perform_leaves_the_source_running() -> None:
    cluster = await started()
    cluster.world.inject(crash("host-b", MS.ACTIVE))
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm")
    await assert_only_source_runs(cluster)


async def test_abort_during_perform_cancels_and_the_source_resumes() -> None:
    cluster = await started(BUSY)
    migration = asyncio.create_task(cluster.migrate("vm"))
    source = cluster.source(cluster.a)
    await until(cluster, lambda: "vm" in source._jobs and source.job("vm").last_status is MS.ACTIVE)
    await source.cancel("vm")
    with pytest.raises(MigrationFailed, match="cancelled"):
        await migration
    await assert_only_source_runs(cluster)


async def test_non_live_failure_resumes_the_guest_the_source_paused() -> None:
    cluster = await started()
    cluster.world.inject(crash("host-b", MS.ACTIVE))
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm", flags=F.PEER2PEER)
    await assert_only_source_runs(cluster)


async def test_non_live_migration_pauses_the_guest_and_lands_it_running() -> None:
    cluster = await started()
    await cluster.migrate("vm", flags=F.PEER2PEER)
    assert await cluster.running_on("vm") == ["host-b"]


async def test_paused_flag_leaves_the_guest_paused_on_the_destination() -> None:
    cluster = await started()
    await cluster.migrate("vm", flags=LIVE_P2P | F.PAUSED)
    assert await cluster.running_on("vm") == []
    assert await cluster.alive_on("vm") == ["host-b"]
    assert "vm" in cluster.b.guests


# -- Finish --------------------------------------------------------------------------------


async def test_destination_crash_after_the_stream_completed_rolls_back_to_the_source() -> None:
    cluster = await started()
    cluster.world.inject(
        Fault(FaultKind.COMMAND_FAILURE, "host-b", FaultPoint.on_call(Operation.RESUME))
    )
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm")
    await assert_only_source_runs(cluster)


async def test_destination_persist_failure_kills_it_and_the_source_resumes() -> None:
    cluster = await started()

    def refuse(_: object) -> None:
        raise OSError("disk full")

    cluster.b.on_definitions_changed = refuse
    with pytest.raises(MigrationFailed, match="PersistDefinition failed: disk full"):
        await cluster.migrate("vm", flags=LIVE_P2P | F.PERSIST_DEST)
    await assert_only_source_runs(cluster)


# -- Confirm -------------------------------------------------------------------------------


async def test_success_kills_the_source_and_undefines_it_when_asked() -> None:
    cluster = await started()
    await cluster.migrate("vm", flags=LIVE_P2P | F.UNDEFINE_SOURCE | F.PERSIST_DEST)
    assert await cluster.alive_on("vm") == ["host-b"]
    assert "vm" not in cluster.a.definitions and "vm" in cluster.b.definitions


async def test_connection_lost_after_perform_leaves_the_source_paused() -> None:
    cluster = await started()
    source = cluster.source(cluster.a)
    destination = cluster.destination(cluster.b)
    begin = await source.begin("vm", flags=LIVE_P2P, typed={})
    prepared = await destination.prepare(
        cookie=begin.cookie, xml=begin.xml, flags=LIVE_P2P, typed={}
    )
    await source.perform("vm", cookie=prepared.cookie, uri=prepared.uri)
    await source.peer_lost("vm")
    assert source.completed["vm"].phase == SourcePhase.CONFIRM3_CANCELLED.value
    # "Management must decide": paused here, the incoming guest not yet resumed there.
    assert await cluster.running_on("vm") == []


# -- Post-copy -------------------------------------------------------------------------------


async def postcopy_switched(cluster: Cluster) -> asyncio.Task[None]:
    migration = asyncio.create_task(cluster.migrate("vm", flags=LIVE_P2P | F.POSTCOPY))
    source = cluster.source(cluster.a)
    await until(cluster, lambda: "vm" in source._jobs and source.job("vm").last_status is MS.ACTIVE)
    await source.switch_to_postcopy("vm")
    return migration


#: The link goes down for 5 s right after the switch to post-copy.
LINK_DOWN_AFTER_SWITCH = Fault(
    FaultKind.LINK_DOWN, "host-a", FaultPoint.on_status(MS.POSTCOPY_ACTIVE), duration_ms=5_000
)


async def postcopy_failed() -> Cluster:
    """A post-copy migration whose link went down for 5 s right after the switch."""
    cluster = await started(BUSY)
    cluster.world.inject(LINK_DOWN_AFTER_SWITCH)
    with pytest.raises(MigrationFailed):
        await (await postcopy_switched(cluster))
    return cluster


async def test_postcopy_switch_completes_on_the_destination() -> None:
    cluster = await started(BUSY)
    await (await postcopy_switched(cluster))
    assert await cluster.running_on("vm") == ["host-b"]
    assert await cluster.alive_on("vm") == ["host-b"]


async def test_abort_after_the_postcopy_switch_is_refused() -> None:
    cluster = await started(BUSY)
    migration = asyncio.create_task(cluster.migrate("vm", flags=LIVE_P2P | F.POSTCOPY))
    source = cluster.source(cluster.a)
    await until(cluster, lambda: "vm" in source._jobs and source.job("vm").last_status is MS.ACTIVE)
    await source.switch_to_postcopy("vm")
    with pytest.raises(PhaseRefused, match="post-copy"):
        await source.cancel("vm")
    await migration
    assert await cluster.running_on("vm") == ["host-b"]


async def test_postcopy_failure_kills_neither_side_and_keeps_the_job() -> None:
    cluster = await postcopy_failed()
    assert cluster.source(cluster.a).job("vm").state is SourcePhase.POSTCOPY_FAILED
    assert cluster.destination(cluster.b).job("vm").state is DestinationPhase.POSTCOPY_FAILED
    assert await cluster.alive_on("vm") == ["host-a", "host-b"]
    source_guest = cluster.world.guest("host-a", "vm")
    assert source_guest is not None and source_guest.run_state is not RunState.RUNNING


async def test_postcopy_resume_after_the_link_heals_completes_the_migration() -> None:
    cluster = await postcopy_failed()
    await cluster.world.sleep(10_000)
    await resume_postcopy(cluster.source(cluster.a), cluster.destination(cluster.b), "vm")
    assert await cluster.running_on("vm") == ["host-b"]
    assert await cluster.alive_on("vm") == ["host-b"]


async def test_postcopy_resume_is_refused_while_qemu_still_migrates() -> None:
    cluster = await started(BUSY)
    migration = await postcopy_switched(cluster)
    source = cluster.source(cluster.a)
    await until(cluster, lambda: source.job("vm").state is SourcePhase.PERFORM3_DONE)
    with pytest.raises(Exception):  # noqa: B017 -- illegal event or refusal, both say no
        await source.begin_resume("vm")
    await migration
    assert await cluster.running_on("vm") == ["host-b"]


async def test_slow_link_converges_only_with_auto_converge() -> None:
    cluster = Cluster()
    cluster.world.set_link("host-a", "host-b", link=Link(bandwidth_bytes_s=200 * MiB))
    await cluster.start(
        make_domain(memory_mib=1024),
        workload=Workload(working_set_bytes=256 * MiB, dirty_rate_bytes_s=400 * MiB),
    )
    await cluster.migrate("vm", flags=LIVE_P2P | F.AUTO_CONVERGE)
    assert await cluster.running_on("vm") == ["host-b"]


# -- Jobs that end or break while no phase request drives them ------------------------------


async def postcopy_performed(cluster: Cluster) -> None:
    """Begin, Prepare and a Perform that switched to post-copy, driven by hand."""
    source = cluster.source(cluster.a)
    destination = cluster.destination(cluster.b)
    flags = LIVE_P2P | F.POSTCOPY
    begin = await source.begin("vm", flags=flags, typed={})
    prepared = await destination.prepare(cookie=begin.cookie, xml=begin.xml, flags=flags, typed={})
    perform = asyncio.create_task(source.perform("vm", cookie=prepared.cookie, uri=prepared.uri))
    await until(cluster, lambda: source.job("vm").last_status is MS.ACTIVE)
    await source.switch_to_postcopy("vm")
    await perform


def assert_no_job_left(cluster: Cluster) -> None:
    for host in (cluster.a, cluster.b):
        source, destination = cluster.source(host), cluster.destination(host)
        assert not source._jobs and not destination._jobs, host.name
        assert host.status.names() == [], host.name


async def test_postcopy_completing_unattended_closes_both_jobs() -> None:
    cluster = await started(BUSY)
    await postcopy_performed(cluster)
    # Both daemons lose their connection: each side waits in post-copy-failed ...
    await cluster.source(cluster.a).peer_lost("vm")
    await cluster.destination(cluster.b).abandon("vm")
    # ... and the stream, which still moves, completes with nobody driving it.
    await until(cluster, lambda: not cluster.source(cluster.a)._jobs)
    await until(cluster, lambda: not cluster.destination(cluster.b)._jobs)
    assert_no_job_left(cluster)
    assert await cluster.alive_on("vm") == ["host-b"]
    await cluster.migrate("vm", source=cluster.b)
    assert await cluster.alive_on("vm") == ["host-a"]


async def test_losing_the_source_after_the_incoming_guest_exited_closes_the_job() -> None:
    cluster = await started()
    cluster.world.inject(crash("host-b", MS.ACTIVE))
    source = cluster.source(cluster.a)
    destination = cluster.destination(cluster.b)
    begin = await source.begin("vm", flags=LIVE_P2P, typed={})
    prepared = await destination.prepare(
        cookie=begin.cookie, xml=begin.xml, flags=LIVE_P2P, typed={}
    )
    with pytest.raises(MigrationFailed):
        await source.perform("vm", cookie=prepared.cookie, uri=prepared.uri)
    await source.confirm("vm", cookie=None, cancelled=True)
    # The destination daemon never hears Finish: its connection to the source drops.
    await destination.abandon("vm")
    assert_no_job_left(cluster)
    await cluster.migrate("vm")
    assert await cluster.running_on("vm") == ["host-b"]


async def test_finish_after_the_postcopy_stream_paused_kills_neither_side() -> None:
    cluster = await started(BUSY)
    cluster.world.inject(LINK_DOWN_AFTER_SWITCH)
    await postcopy_performed(cluster)
    destination = cluster.destination(cluster.b)
    await until(cluster, lambda: destination.job("vm").last_status is MS.POSTCOPY_PAUSED)
    # Finish comes only now, as it does when the daemons' calls wait out the partition.
    with pytest.raises(MigrationFailed):
        await destination.finish("vm", cookie=None, cancelled=False)
    assert destination.job("vm").state is DestinationPhase.POSTCOPY_FAILED
    await cluster.source(cluster.a).confirm("vm", cookie=None, cancelled=True)
    assert cluster.source(cluster.a).job("vm").state is SourcePhase.POSTCOPY_FAILED
    assert await cluster.alive_on("vm") == ["host-a", "host-b"]
    assert await cluster.running_on("vm") == ["host-b"]
    await cluster.world.sleep(10_000)
    await resume_postcopy(cluster.source(cluster.a), destination, "vm")
    assert await cluster.alive_on("vm") == ["host-b"]
    assert_no_job_left(cluster)


async def test_destination_restarted_in_prepare_keeps_a_guest_in_postcopy() -> None:
    cluster = await started(BUSY, memory_mib=4096)
    cluster.world.set_link("host-a", "host-b", link=Link(bandwidth_bytes_s=1000 * MiB))
    await postcopy_performed(cluster)
    record = cluster.b.status.load("vm")
    assert record is not None and record.phase == DestinationPhase.PREPARE.value
    await cluster.destination(cluster.b).detach()
    cluster.b.guests.clear()
    sides = sides_of(cluster.b)
    cluster.sides["host-b"] = sides
    (resolved,) = await reattach(cluster.b, source=sides[0], destination=sides[1])
    # Kept in post-copy-failed, or ended at once if the stream completed meanwhile.
    planned = [action.name for action in resolved.recovery.actions]
    assert planned[:1] == ["ResumeGuest"]
    assert "KillGuest" not in planned
    # Finish never came: the source rolls back to post-copy-failed; the stream completes.
    await cluster.source(cluster.a).confirm("vm", cookie=None, cancelled=True)
    await until(cluster, lambda: not cluster.source(cluster.a)._jobs)
    await until(cluster, lambda: not cluster.destination(cluster.b)._jobs)
    assert await cluster.running_on("vm") == ["host-b"]
    assert await cluster.alive_on("vm") == ["host-b"]
    assert_no_job_left(cluster)


class UnreachableDestination:
    """A destination whose daemon cannot be reached for the resume."""

    def __init__(self, inner: DestinationSide) -> None:
        self.inner = inner

    async def prepare_resume(self, name: str) -> str:
        raise HostError("no answer from host-b", domain=name)

    async def finish_resume(self, name: str) -> None:
        await self.inner.finish_resume(name)

    async def abandon(self, name: str) -> None:
        await self.inner.abandon(name)


async def test_a_resume_that_fails_before_perform_can_be_tried_again() -> None:
    cluster = await postcopy_failed()
    await cluster.world.sleep(10_000)
    source = cluster.source(cluster.a)
    destination = cluster.destination(cluster.b)
    with pytest.raises(HostError, match="no answer"):
        await resume_postcopy(source, UnreachableDestination(destination), "vm")
    assert source.job("vm").state is SourcePhase.POSTCOPY_FAILED
    await resume_postcopy(source, destination, "vm")
    assert await cluster.alive_on("vm") == ["host-b"]


async def test_a_resumed_migration_closes_both_jobs() -> None:
    cluster = await postcopy_failed()
    await cluster.world.sleep(10_000)
    await resume_postcopy(cluster.source(cluster.a), cluster.destination(cluster.b), "vm")
    assert_no_job_left(cluster)
    assert cluster.source(cluster.a).completed["vm"].phase == SourcePhase.CONFIRM_RESUME.value
