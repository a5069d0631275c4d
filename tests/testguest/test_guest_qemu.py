"""The test guest under real QEMU: heartbeats, dirty rate, memory checks, live migration."""

from __future__ import annotations

import asyncio
import re
import struct
import time
from pathlib import Path

import pytest

from migrator.drivers.qemu.options import Accel
from migrator.testguest.errors import RawMigrationError
from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.heartbeat_log import AnomalyKind
from migrator.testguest.memcheck import verify_memory_dump
from migrator.testguest.protocol import PAGE_SIZE, WORKING_SET_ADDR
from migrator.testguest.rawmigration import migrate_raw
from migrator.testguest.vm import GuestVm, SerialTransport
from tests.testguest.conftest import Launch

pytestmark = pytest.mark.qemu

TIMEOUT = 60  # only stops a broken test from hanging; nothing here is timed


async def start_watched(
    launch: Launch, monitor: HeartbeatMonitor, name: str, **kernel: int
) -> GuestVm:
    """Start a guest paused, attach the monitor, then let it run: no heartbeat is missed."""
    vm = await launch(name, paused=True, **kernel)
    await monitor.attach(vm.serial_address, name=name)
    await vm.execute("cont")
    return vm


async def test_guest_boots_and_beats(launch: Launch, monitor: HeartbeatMonitor) -> None:
    async with asyncio.timeout(TIMEOUT):
        vm = await start_watched(launch, monitor, "vm", working_set_mib=16, dirty_rate_mib_s=10)
        report = await monitor.wait_for(lambda r: r.heartbeats >= 300 and r.verified_sweeps >= 1)
        status = await vm.read_status()
    assert report.anomaly_count == 0, report.anomalies
    assert report.bad_page_reports == 0
    assert report.source("vm").first_seq == 0
    assert report.last_seq == report.heartbeats - 1
    assert status.heartbeats >= report.heartbeats
    assert status.tsc_per_ms > 0
    assert status.working_set_pages == 16 * 256
    assert status.pages_written > 0


async def test_dirty_rate_is_visible(launch: Launch, monitor: HeartbeatMonitor) -> None:
    rate = 20
    async with asyncio.timeout(TIMEOUT):
        vm = await start_watched(launch, monitor, "vm", working_set_mib=32, dirty_rate_mib_s=rate)
        await monitor.wait_for(lambda r: r.heartbeats >= 100)
        before, started = await vm.read_status(), time.monotonic()
        await vm.execute("calc-dirty-rate", dirty_rate_arguments(vm))
        measured = await measured_dirty_rate(vm)
        after, ended = await vm.read_status(), time.monotonic()
    written = (after.pages_written - before.pages_written) * PAGE_SIZE / 2**20
    own_rate = written / (ended - started)
    # generous: the host may be busy; the point is that the rate shows, and roughly as asked
    assert rate / 3 <= own_rate <= rate * 3
    assert rate / 3 <= measured <= rate * 3


def dirty_rate_arguments(vm: GuestVm) -> dict[str, object]:
    """One second of measuring: with KVM's dirty log, every page dirtied is counted; QEMU 7.2
    crashes on that mode under TCG, so there it samples as many pages as it allows."""
    if vm.spec.accel is Accel.KVM:
        return {"calc-time": 1, "mode": "dirty-bitmap"}
    return {"calc-time": 1, "mode": "page-sampling", "sample-pages": 10000}


async def measured_dirty_rate(vm: GuestVm) -> int:
    for _ in range(100):
        await asyncio.sleep(0.1)
        result = await vm.execute("query-dirty-rate")
        assert isinstance(result, dict)
        if result["status"] == "measured":
            return int(result["dirty-rate"])
    raise AssertionError("QEMU did not finish measuring the dirty rate")


async def test_memory_check_passes_and_catches_a_corrupted_dump(
    launch: Launch, monitor: HeartbeatMonitor, tmp_path: Path
) -> None:
    async with asyncio.timeout(TIMEOUT):
        vm = await start_watched(launch, monitor, "vm", working_set_mib=16, dirty_rate_mib_s=40)
        await monitor.wait_for(lambda r: r.verified_sweeps >= 1)
        check = await vm.check_memory()
        dump_path = tmp_path / "dump"
        await vm.dump_memory(dump_path)
    assert check.intact
    assert check.status.pages_written > 0
    dump = bytearray(dump_path.read_bytes())
    assert verify_memory_dump(dump).intact
    page = 1234
    dump[WORKING_SET_ADDR + page * PAGE_SIZE + 100] ^= 0x01
    damaged = verify_memory_dump(dump)
    assert not damaged.intact
    assert damaged.bad_pages == (page,)


async def test_guest_reports_a_page_corrupted_behind_its_back(
    launch: Launch, monitor: HeartbeatMonitor
) -> None:
    page = 4000  # far ahead of where a 1 MiB/s writer gets in the seconds this test runs
    async with asyncio.timeout(TIMEOUT):
        vm = await start_watched(
            launch, monitor, "vm", working_set_mib=16, dirty_rate_mib_s=1, verify_pages_per_ms=64
        )
        await monitor.wait_for(lambda r: r.verified_sweeps >= 1)
        await write_guest_memory(
            vm, WORKING_SET_ADDR + page * PAGE_SIZE + 8, struct.pack("<Q", 0xBAD)
        )
        report = await monitor.wait_for(lambda r: r.bad_page_reports >= 1)
        status = await vm.read_status()
        check = await vm.check_memory()
    assert report.bad_pages[0] == page
    assert status.bad_pages >= 1
    assert status.cursor < page
    assert check.bad_pages == (page,)


async def write_guest_memory(vm: GuestVm, address: int, data: bytes) -> None:
    """Change guest RAM from outside, through QEMU's own mapping of it."""
    answer = await vm.execute("human-monitor-command", {"command-line": f"gpa2hva {address:#x}"})
    assert isinstance(answer, str)
    match = re.search(r"is (0x[0-9a-f]+)", answer)
    assert match, answer
    poke(vm.pid, int(match.group(1), 16), data)


def poke(pid: int, host_address: int, data: bytes) -> None:
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as memory:
        memory.seek(host_address)
        memory.write(data)


async def test_live_migration_keeps_the_heartbeat_and_memory(
    launch: Launch, monitor: HeartbeatMonitor
) -> None:
    async with asyncio.timeout(TIMEOUT):
        source = await start_watched(
            launch, monitor, "src", working_set_mib=32, dirty_rate_mib_s=20
        )
        before = await monitor.wait_for(lambda r: r.heartbeats >= 300 and r.verified_sweeps >= 1)
        destination = await launch("dst", working_set_mib=32, dirty_rate_mib_s=20, incoming=True)
        await monitor.attach(destination.serial_address, name="dst")
        stats = await migrate_raw(source, destination)
        after = await monitor.wait_for(
            lambda r: (
                r.source("dst").heartbeats >= 300 and r.verified_sweeps > before.verified_sweeps + 1
            )
        )
        source_state = await source.execute("query-status")
        await source.close()
        check = await destination.check_memory()
    assert isinstance(source_state, dict) and source_state["status"] == "postmigrate"
    src, dst = after.source("src"), after.source("dst")
    assert src.first_seq == 0
    assert src.last_seq is not None
    assert dst.first_seq == src.last_seq + 1
    assert after.anomaly_count == 0, after.anomalies
    assert after.bad_page_reports == 0
    assert check.intact
    assert check.status.heartbeats >= after.heartbeats
    assert stats.transferred_bytes > 0
    assert dst.switchover_gap is not None
    assert after.largest_gap >= dst.switchover_gap


async def test_killing_the_destination_fails_the_migration_and_the_source_runs_on(
    launch: Launch, monitor: HeartbeatMonitor
) -> None:
    async with asyncio.timeout(TIMEOUT):
        source = await start_watched(launch, monitor, "src", working_set_mib=16, dirty_rate_mib_s=5)
        await monitor.wait_for(lambda r: r.heartbeats >= 100)
        destination = await launch("dst", working_set_mib=16, incoming=True)
        with source.qmp.listener("MIGRATION") as events:
            # 1 MiB/s: the migration is still running when the destination dies
            migration = asyncio.create_task(migrate_raw(source, destination, max_bandwidth=2**20))
            async for event in events:
                data = event["data"]
                if isinstance(data, dict) and data["status"] == "active":
                    break
            await destination.close()
            with pytest.raises(RawMigrationError) as failed:
                await migration
        assert failed.value.state == "failed"
        seen = monitor.report().heartbeats
        report = await monitor.wait_for(lambda r: r.heartbeats >= seen + 200)
    assert report.anomaly_count == 0, report.anomalies
    assert report.source("src").heartbeats == report.heartbeats


async def test_a_monitor_that_falls_behind_loses_nothing(
    launch: Launch, monitor: HeartbeatMonitor
) -> None:
    async with asyncio.timeout(TIMEOUT):
        await start_watched(launch, monitor, "vm", working_set_mib=16, dirty_rate_mib_s=10)
        await monitor.wait_for(lambda r: r.heartbeats >= 100)
        stall_event_loop(0.5)
        seen = monitor.report().heartbeats
        report = await monitor.wait_for(lambda r: r.heartbeats >= seen + 300)
    assert report.anomaly_count == 0, report.anomalies
    assert report.largest_gap >= 0.5


async def test_over_a_full_unix_socket_the_guest_drops_whole_lines(
    launch: Launch, monitor: HeartbeatMonitor
) -> None:
    async with asyncio.timeout(TIMEOUT):
        vm = await launch(
            "vm", working_set_mib=16, dirty_rate_mib_s=10, paused=True, serial=SerialTransport.UNIX
        )
        await monitor.attach(vm.serial_address, name="vm")
        await vm.execute("cont")
        await monitor.wait_for(lambda r: r.heartbeats >= 100)
        stall_event_loop(0.5)  # QEMU's socket fills up: the guest must drop lines, not bytes
        seen = monitor.report().heartbeats
        report = await monitor.wait_for(lambda r: r.heartbeats >= seen + 300)
        status = await vm.read_status()
    assert report.anomaly_count >= 1
    assert {anomaly.kind for anomaly in report.anomalies} == {AnomalyKind.GAP}
    assert status.heartbeats > report.heartbeats


def stall_event_loop(seconds: float) -> None:
    """Block the event loop, as a busy host or a long computation would."""
    time.sleep(seconds)
