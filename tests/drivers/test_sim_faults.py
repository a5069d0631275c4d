"""Injected faults on the simulator: each kind, at calls and at migration statuses."""

from __future__ import annotations

import asyncio

import pytest

from migrator.drivers.base import (
    CommandFailed,
    EventKind,
    InstanceGone,
    MigrationStatus,
    RunState,
    StartMode,
)
from migrator.drivers.sim import (
    Fault,
    FaultKind,
    FaultPoint,
    FaultRecord,
    Operation,
    SimError,
    Workload,
)
from tests.drivers.simkit import DESTINATION, SOURCE, GiB, MiB, Pair, domain

BUSY = Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=256 * MiB)


def fault(
    kind: FaultKind,
    point: FaultPoint,
    *,
    host: str = SOURCE,
    duration_ms: float = 0.0,
    repeat: bool = False,
) -> Fault:
    return Fault(
        kind=kind, host=host, point=point, instance="vm", duration_ms=duration_ms, repeat=repeat
    )


def fired(pair: Pair) -> list[Fault]:
    return [record.fault for record in pair.world.trace if isinstance(record, FaultRecord)]


# -- at calls ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        (Operation.SET_PARAMETERS, lambda s, d, uri: s.set_parameters({"downtime-limit": 9})),
        (Operation.MIGRATE, lambda s, d, uri: s.migrate(uri)),
        (Operation.RESUME, lambda s, d, uri: s.resume()),
        (Operation.QUERY_MIGRATION, lambda s, d, uri: s.query_migration()),
        (Operation.RECOVER_POSTCOPY, lambda s, d, uri: d.recover_postcopy(uri)),
    ],
)
async def test_a_command_failure_fails_that_call_once(operation, call) -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare()
    host = DESTINATION if operation is Operation.RECOVER_POSTCOPY else SOURCE
    injected = fault(FaultKind.COMMAND_FAILURE, FaultPoint.on_call(operation), host=host)
    pair.world.inject(injected)
    with pytest.raises(CommandFailed, match="injected failure") as caught:
        await call(source, destination, uri)
    assert caught.value.instance == "vm"
    assert fired(pair) == [injected]
    assert pair.world.pending_faults == ()
    assert source.alive and destination.alive
    assert (await source.query_migration()).status is MigrationStatus.NONE


async def test_a_repeating_failure_fails_every_call() -> None:
    pair = Pair()
    source, _destination, _uri = await pair.prepare()
    point = FaultPoint.on_call(Operation.PAUSE)
    pair.world.inject(fault(FaultKind.COMMAND_FAILURE, point, repeat=True))
    for _ in range(3):
        with pytest.raises(CommandFailed):
            await source.pause()
    assert len(fired(pair)) == 3
    assert await source.run_state() is RunState.RUNNING


async def test_a_failed_start_starts_nothing() -> None:
    pair = Pair()
    point = FaultPoint.on_call(Operation.START)
    pair.world.inject(fault(FaultKind.COMMAND_FAILURE, point))
    pair.world.inject(fault(FaultKind.CRASH, point))
    with pytest.raises(CommandFailed):
        await pair.source_driver.start(domain(), mode=StartMode.RUNNING)
    with pytest.raises(InstanceGone):
        await pair.source_driver.start(domain(), mode=StartMode.RUNNING)
    assert await pair.source_driver.attach(domain()) is None
    instance = await pair.source_driver.start(domain(), mode=StartMode.RUNNING)
    assert await instance.run_state() is RunState.RUNNING


async def test_a_crash_at_a_call_kills_the_process() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare()
    pair.world.inject(fault(FaultKind.CRASH, FaultPoint.on_call(Operation.MIGRATE)))
    async with source.listen() as events:
        with pytest.raises(InstanceGone):
            await source.migrate(uri)
        kinds = [event.kind async for event in events]
    assert kinds == [EventKind.EXITED]
    assert not source.alive
    assert await pair.source_driver.attach(domain()) is None


async def test_a_hung_call_blocks_the_monitor_until_the_process_dies() -> None:
    pair = Pair()
    source, _destination, _uri = await pair.prepare()
    point = FaultPoint.on_call(Operation.SET_PARAMETERS)
    pair.world.inject(fault(FaultKind.HANG, point))
    hung = asyncio.create_task(source.set_parameters({"downtime-limit": 9}))
    later = asyncio.create_task(source.run_state())
    await pair.world.sleep(3_600_000)
    assert not hung.done() and not later.done()
    await source.kill()
    for task in (hung, later):
        with pytest.raises(InstanceGone):
            await task
    assert source.alive is False


async def test_a_link_down_at_a_call_partitions_the_host() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare()
    point = FaultPoint.on_call(Operation.MIGRATE)
    pair.world.inject(fault(FaultKind.LINK_DOWN, point, duration_ms=5000))
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.FAILED
    assert progress.error_desc == "Failed to connect to 'host-b:49152': No route to host"
    assert destination.alive  # it never got a connection
    await pair.world.sleep(5000)
    assert pair.world.network.reachable(SOURCE, DESTINATION)


# -- at migration statuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "point", "connected"),
    [
        (SOURCE, FaultPoint.on_status(MigrationStatus.SETUP), False),
        (SOURCE, FaultPoint.on_status(MigrationStatus.ACTIVE), True),
        (SOURCE, FaultPoint.on_pass(3), True),
        (DESTINATION, FaultPoint.on_pass(2), True),
    ],
)
async def test_a_failure_at_a_status_fails_the_migration(
    host: str, point: FaultPoint, connected: bool
) -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(memory_bytes=GiB, workload=BUSY)
    pair.world.inject(fault(FaultKind.COMMAND_FAILURE, point, host=host))
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.FAILED
    assert progress.error_desc is not None and "injected failure" in progress.error_desc
    assert await source.run_state() is RunState.RUNNING
    # A destination that got the stream exits with it, as QEMU's incoming side does.
    assert destination.alive is not connected


@pytest.mark.parametrize(
    "point", [FaultPoint.on_status(MigrationStatus.ACTIVE), FaultPoint.on_pass(2)]
)
async def test_a_source_crash_fails_the_destination_which_exits(point: FaultPoint) -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(memory_bytes=GiB, workload=BUSY)
    pair.world.inject(fault(FaultKind.CRASH, point))
    async with destination.listen() as into:
        await source.migrate(uri)
        events = [event async for event in into]
    assert not source.alive
    assert [e.status for e in events if e.kind is EventKind.MIGRATION][-1] is (
        MigrationStatus.FAILED
    )
    assert events[-1].kind is EventKind.EXITED
    assert not destination.alive


@pytest.mark.parametrize(
    "point", [FaultPoint.on_status(MigrationStatus.ACTIVE), FaultPoint.on_pass(2)]
)
async def test_a_destination_crash_fails_the_migration_and_the_source_runs(
    point: FaultPoint,
) -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(memory_bytes=GiB, workload=BUSY)
    pair.world.inject(fault(FaultKind.CRASH, point, host=DESTINATION))
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.FAILED
    assert progress.error_desc == "Unable to write to socket: Connection reset by peer"
    assert not destination.alive
    assert await source.run_state() is RunState.RUNNING


async def test_losing_the_destination_before_switchover_restarts_the_source() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(source_capabilities=["pause-before-switchover"])
    await source.migrate(uri)
    await pair.world.sleep(10_000)
    assert (await source.query_migration()).status is MigrationStatus.PRE_SWITCHOVER
    assert await source.run_state() is RunState.FINISH_MIGRATE
    await destination.kill()
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.FAILED
    assert await source.run_state() is RunState.RUNNING
    assert pair.kinds(SOURCE)[-2:] == [EventKind.MIGRATION, EventKind.RESUMED]


async def test_a_destination_crash_at_setup_leaves_nobody_listening() -> None:
    pair = Pair()
    point = FaultPoint.on_status(MigrationStatus.SETUP)
    pair.world.inject(fault(FaultKind.CRASH, point, host=DESTINATION))
    source, destination, uri = await pair.prepare()
    assert not destination.alive
    progress = await pair.migrate(source, uri)
    assert progress.error_desc == "Failed to connect to 'host-b:49152': Connection refused"


@pytest.mark.parametrize(
    ("kind", "status"),
    [(FaultKind.COMMAND_FAILURE, MigrationStatus.FAILED), (FaultKind.HANG, MigrationStatus.ACTIVE)],
)
async def test_a_destination_fault_at_setup_acts_once_the_source_connects(
    kind: FaultKind, status: MigrationStatus
) -> None:
    pair = Pair()
    pair.world.inject(fault(kind, FaultPoint.on_status(MigrationStatus.SETUP), host=DESTINATION))
    source, destination, uri = await pair.prepare()
    assert destination.alive
    await source.migrate(uri)
    await pair.world.sleep(60_000)
    assert (await source.query_migration()).status is status


async def test_a_source_crash_after_completion_leaves_the_guest_on_the_destination() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare()
    point = FaultPoint.on_status(MigrationStatus.COMPLETED)
    pair.world.inject(fault(FaultKind.CRASH, point))
    await source.migrate(uri)
    await pair.world.sleep(10_000)
    assert not source.alive
    assert (await destination.query_migration()).status is MigrationStatus.COMPLETED
    await destination.resume()
    assert await destination.run_state() is RunState.RUNNING


@pytest.mark.parametrize(
    ("host", "point"),
    [
        (SOURCE, FaultPoint.on_status(MigrationStatus.SETUP)),
        (SOURCE, FaultPoint.on_pass(2)),
        (DESTINATION, FaultPoint.on_status(MigrationStatus.ACTIVE)),
    ],
)
async def test_a_hang_at_a_status_stalls_until_cancelled(host: str, point: FaultPoint) -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare(memory_bytes=GiB)
    pair.world.inject(fault(FaultKind.HANG, point, host=host))
    await source.migrate(uri)
    await pair.world.sleep(60_000)
    before = await source.query_migration()
    await pair.world.sleep(3_600_000)
    after = await source.query_migration()
    assert after.status is before.status
    assert after.status in {MigrationStatus.SETUP, MigrationStatus.ACTIVE}
    assert after.transferred == before.transferred
    await source.cancel_migration()
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.CANCELLED
    assert await source.run_state() is RunState.RUNNING


async def test_a_hang_at_a_status_ends_when_the_source_is_killed() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(memory_bytes=GiB)
    pair.world.inject(fault(FaultKind.HANG, FaultPoint.on_pass(1)))
    await source.migrate(uri)
    await pair.world.sleep(60_000)
    await source.kill()
    await pair.world.sleep(0)
    assert not destination.alive  # its stream ended mid-way


@pytest.mark.parametrize(
    ("host", "point"),
    [
        (SOURCE, FaultPoint.on_status(MigrationStatus.ACTIVE)),
        (DESTINATION, FaultPoint.on_pass(2)),
    ],
)
async def test_a_partition_in_pre_copy_fails_both_sides(host: str, point: FaultPoint) -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(memory_bytes=GiB, workload=BUSY)
    pair.world.inject(fault(FaultKind.LINK_DOWN, point, host=host, duration_ms=1000))
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.FAILED
    assert progress.error_desc == "Unable to write to socket: No route to host"
    assert await source.run_state() is RunState.RUNNING
    assert not destination.alive


async def test_a_partition_in_post_copy_pauses_both_sides_until_recovered() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(
        memory_bytes=GiB, workload=BUSY, capabilities=["postcopy-ram"]
    )
    point = FaultPoint.on_status(MigrationStatus.POSTCOPY_ACTIVE)
    pair.world.inject(fault(FaultKind.LINK_DOWN, point, host=DESTINATION, duration_ms=2000))
    await source.migrate(uri)
    await pair.world.sleep(10_000)
    await source.start_postcopy()
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED
    assert (await destination.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED
    await destination.recover_postcopy(f"tcp:{DESTINATION}:0")
    recover_uri = f"tcp:{DESTINATION}:49152"
    await source.migrate(recover_uri, resume=True)  # the link is still down: stays paused
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED
    await pair.world.sleep(2000)
    await source.migrate(recover_uri, resume=True)
    await pair.world.sleep(60_000)
    assert (await source.query_migration()).status is MigrationStatus.COMPLETED
    assert pair.statuses(SOURCE)[-4:] == [
        MigrationStatus.POSTCOPY_PAUSED,
        MigrationStatus.POSTCOPY_RECOVER,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.COMPLETED,
    ]
    assert pair.statuses(DESTINATION)[-4:] == [
        MigrationStatus.POSTCOPY_PAUSED,
        MigrationStatus.POSTCOPY_RECOVER,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.COMPLETED,
    ]


# -- fault definitions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        FaultPoint,
        lambda: FaultPoint(operation=Operation.MIGRATE, status=MigrationStatus.ACTIVE),
        lambda: FaultPoint.on_call(Operation.KILL),
        lambda: FaultPoint(status=MigrationStatus.SETUP, pass_number=2),
        lambda: FaultPoint.on_pass(0),
        lambda: fault(FaultKind.LINK_DOWN, FaultPoint.on_pass(1)),
        lambda: fault(FaultKind.CRASH, FaultPoint.on_pass(1), duration_ms=5),
        lambda: fault(FaultKind.HANG, FaultPoint.on_status(MigrationStatus.COMPLETED)),
        lambda: fault(FaultKind.COMMAND_FAILURE, FaultPoint.on_status(MigrationStatus.CANCELLING)),
    ],
)
def test_impossible_faults_are_refused(build) -> None:
    with pytest.raises(SimError):
        build()
