"""What a simulated instance answers: QEMU's refusals, statistics per status, displays,
shutdown, reconnecting after a driver restart, and the trace of its commands."""

from __future__ import annotations

import pytest

from migrator.domain.devices import Graphics, GraphicsType
from migrator.drivers.base import (
    CommandFailed,
    DriverError,
    EventKind,
    GraphicsEndpoint,
    MigrationStatus,
    RunState,
    StartMode,
)
from migrator.drivers.sim import CommandRecord, EventRecord, Operation, SimDriver, Workload
from tests.drivers.simkit import DESTINATION, SOURCE, GiB, MiB, Pair, domain


async def test_migrate_refusals_are_qemus() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare()
    with pytest.raises(CommandFailed, match="Guest is waiting for an incoming migration"):
        await destination.migrate(uri)
    with pytest.raises(CommandFailed, match="Cannot resume if there is no paused migration"):
        await source.migrate(uri, resume=True)
    with pytest.raises(CommandFailed, match="'-incoming' was not specified"):
        await source.start_incoming(f"tcp:{SOURCE}:0")
    with pytest.raises(CommandFailed, match="Postcopy must be started after migration"):
        await source.set_capabilities([{"capability": "postcopy-ram", "state": True}])
        await source.start_postcopy()
    await source.migrate(uri)
    with pytest.raises(CommandFailed, match="There's a migration process in progress"):
        await source.migrate(uri)
    await pair.world.sleep(10_000)
    assert (await source.query_migration()).status is MigrationStatus.COMPLETED
    with pytest.raises(CommandFailed, match="paused due to previous migration"):
        await source.migrate(uri)
    await source.start_postcopy()  # after the end: ignored, as QEMU does
    await source.cancel_migration()  # nothing running: nothing happens
    assert (await source.query_migration()).status is MigrationStatus.COMPLETED


async def test_a_bad_uri_fails_the_migration_it_started() -> None:
    pair = Pair()
    source, _destination, _uri = await pair.prepare()
    with pytest.raises(CommandFailed, match="expects a valid migration protocol") as caught:
        await source.migrate("unix:/run/migrate.sock")
    assert caught.value.instance == "vm"
    assert pair.statuses(SOURCE) == [MigrationStatus.SETUP, MigrationStatus.FAILED]
    progress = await source.query_migration()
    assert progress.error_desc == "Parameter 'uri' expects a valid migration protocol"


async def test_statistics_follow_qemus_fields_per_status() -> None:
    pair = Pair()
    busy = Workload(working_set_bytes=128 * MiB, dirty_rate_bytes_s=64 * MiB)
    source, destination, uri = await pair.prepare(memory_bytes=GiB, workload=busy)
    assert (await source.query_migration()).status is MigrationStatus.NONE
    await source.migrate(uri)
    setup = await source.query_migration()
    assert setup.status is MigrationStatus.SETUP
    assert setup.total_time is None and setup.transferred == 0
    await pair.world.sleep(8500)  # pass 1 took 8 s; pass 2 sends the 128 MiB working set
    active = await source.query_migration()
    assert active.status is MigrationStatus.ACTIVE
    assert active.total_time == 8500
    assert active.setup_time == 0
    assert active.downtime is None
    assert active.dirty_sync_count == 2
    assert active.transferred == GiB + 64 * MiB
    assert active.remaining == 64 * MiB
    assert active.expected_downtime == 500
    assert active.dirty_pages_rate == 128 * MiB // 4096 // 8  # pages dirtied in pass 1 / 8 s
    assert active.mbps == 128 * MiB * 8 / 1e6
    assert active.normal_bytes == active.normal * 4096 == active.transferred
    assert active.total == GiB
    # The destination reports its status only.
    incoming = await destination.query_migration()
    assert incoming.status is MigrationStatus.ACTIVE and incoming.transferred == 0


async def test_pass_one_counts_zero_pages_as_duplicates() -> None:
    pair = Pair()
    sparse = Workload(nonzero_bytes=16 * MiB)
    source, _destination, uri = await pair.prepare(workload=sparse)
    progress = await pair.migrate(source, uri)
    assert progress.transferred == 16 * MiB
    assert progress.duplicate == 48 * MiB // 4096
    assert progress.total_time == 125  # 16 MiB at 128 MiB/s


async def test_a_destination_of_another_size_refuses_the_stream() -> None:
    pair = Pair()
    source = await pair.source_driver.start(domain(memory_bytes=64 * MiB), mode=StartMode.RUNNING)
    destination = await pair.destination_driver.start(
        domain(memory_bytes=128 * MiB), mode=StartMode.INCOMING
    )
    uri = await destination.start_incoming(f"tcp:{DESTINATION}:0")
    async with destination.listen() as events:
        progress = await pair.migrate(source, uri)
        rest = [event async for event in events]
    assert progress.status is MigrationStatus.FAILED
    assert rest[-1].kind is EventKind.EXITED
    assert rest[-1].detail == "Length mismatch: pc.ram: 0x4000000 in != 0x8000000: Invalid argument"


async def test_without_the_events_capability_there_are_no_migration_events() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare()
    await source.set_capabilities([{"capability": "events", "state": False}])
    await source.migrate(uri)
    await pair.world.sleep(10_000)
    assert (await source.query_migration()).status is MigrationStatus.COMPLETED
    assert pair.statuses(SOURCE) == []
    assert pair.kinds(SOURCE) == [EventKind.STOPPED]


async def test_displays_get_ports_and_only_spice_relocates() -> None:
    pair = Pair()
    graphics = [
        Graphics(type=GraphicsType.VNC),
        Graphics(type=GraphicsType.SPICE, port=5930, autoport=False, listen="0.0.0.0"),
    ]
    instance = await pair.source_driver.start(domain(graphics=graphics), mode=StartMode.RUNNING)
    assert await instance.graphics() == [
        GraphicsEndpoint(type="vnc", listen="127.0.0.1", port=5900),
        GraphicsEndpoint(type="spice", listen="0.0.0.0", port=5930),
    ]
    target = GraphicsEndpoint(type="spice", listen="host-b", port=5901, tls_port=5902)
    await instance.relocate_graphics_clients(target)
    with pytest.raises(CommandFailed, match="Parameter 'protocol' expects 'spice'"):
        await instance.relocate_graphics_clients(
            GraphicsEndpoint(type="vnc", listen="host-b", port=5900)
        )
    plain = await pair.source_driver.start(domain("plain"), mode=StartMode.RUNNING)
    assert await plain.graphics() == []
    with pytest.raises(CommandFailed, match="SPICE is not in use"):
        await plain.relocate_graphics_clients(target)
    clash = [
        Graphics(type=GraphicsType.VNC),
        Graphics(type=GraphicsType.VNC, port=5930, autoport=False),
    ]
    with pytest.raises(CommandFailed, match="Address already in use"):
        await pair.source_driver.start(domain("clash", graphics=clash), mode=StartMode.RUNNING)
    assert await pair.source_driver.attach(domain("clash")) is None
    vnc = [Graphics(type=GraphicsType.VNC)]
    other = await pair.source_driver.start(domain("other", graphics=vnc), mode=StartMode.RUNNING)
    assert [display.port for display in await other.graphics()] == [5901]  # none leaked
    await instance.kill()
    again = await pair.source_driver.start(domain("clash", graphics=clash), mode=StartMode.RUNNING)
    assert [display.port for display in await again.graphics()] == [5900, 5930]


async def test_shutdown_powers_the_guest_off_and_it_needs_a_reset() -> None:
    pair = Pair()
    instance = await pair.source_driver.start(domain(), mode=StartMode.RUNNING)
    await instance.shutdown()
    assert await instance.run_state() is RunState.SHUTDOWN
    assert pair.kinds(SOURCE) == [EventKind.SHUTDOWN, EventKind.STOPPED]
    with pytest.raises(CommandFailed, match="Resetting the Virtual Machine is required"):
        await instance.resume()
    assert instance.alive


async def test_a_restarted_driver_reattaches_to_running_guests() -> None:
    pair = Pair()
    instance = await pair.source_driver.start(domain(), mode=StartMode.RUNNING)
    await pair.source_driver.close()
    with pytest.raises(DriverError, match="closed"):
        await pair.source_driver.attach(domain())
    assert await instance.run_state() is RunState.RUNNING  # instances outlive the driver
    again = SimDriver(pair.world, SOURCE)
    attached = await again.attach(domain())
    assert attached is not None
    await attached.pause()
    assert await instance.run_state() is RunState.PAUSED
    assert await again.attach(domain("stranger")) is None
    await instance.kill()
    assert await again.attach(domain()) is None


async def test_the_trace_records_qmp_commands_and_events_in_order() -> None:
    pair = Pair()
    instance = await pair.source_driver.start(domain(), mode=StartMode.RUNNING)
    changes: dict[str, object] = {"downtime-limit": 500}
    await instance.set_parameters(changes)
    changes["downtime-limit"] = 1  # the trace keeps what was sent
    await instance.pause()
    await instance.kill()
    await instance.kill()
    assert [
        r.operation if isinstance(r, CommandRecord) else r.event.kind
        for r in pair.world.trace
        if isinstance(r, EventRecord)
        or (isinstance(r, CommandRecord) and r.operation is not Operation.SET_CAPABILITIES)
    ] == [
        Operation.START,
        Operation.SET_PARAMETERS,
        Operation.PAUSE,
        EventKind.STOPPED,
        Operation.KILL,
        EventKind.EXITED,
    ]
    sent = [r for r in pair.world.trace if isinstance(r, CommandRecord) and r.arguments]
    assert [(r.operation.value, r.arguments) for r in sent] == [
        ("launch", {"mode": "running", "memory_kib": 65536}),
        ("migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]}),
        ("migrate-set-parameters", {"downtime-limit": 500}),
    ]
    assert all(r.host == SOURCE and r.instance == "vm" for r in pair.world.trace)
    assert isinstance(pair.world.trace[-1], EventRecord)
