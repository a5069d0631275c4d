"""The test guest under real QEMU: heartbeat rate, dirty-rate accuracy, raw-QMP migration pauses.

For each guest shape, every run boots a source QEMU, lets the guest run for a second, starts a
destination with ``-incoming defer``, migrates with raw QMP and watches the heartbeat on both
serial sockets, then checks the destination's memory.

Run: ``.venv/bin/python -m benchmarks.testguest_bench [--runs N]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.protocol import PAGE_SIZE
from migrator.testguest.rawmigration import migrate_raw
from migrator.testguest.vm import (
    GuestVm,
    default_bios,
    detect_accel,
    guest_memory_mib,
    guest_spec,
    launch_running,
)

TIMEOUT = 120
WARM_UP_HEARTBEATS = 200
MEASURE_SECONDS = 1.0


@dataclass(frozen=True)
class Shape:
    label: str
    working_set_mib: int
    dirty_rate_mib_s: int
    memory_mib: int


SHAPES = (
    Shape("idle, 1 GiB", 0, 0, 1024),
    Shape("64 MiB at 20 MiB/s", 64, 20, guest_memory_mib(64)),
    Shape("256 MiB at 100 MiB/s", 256, 100, guest_memory_mib(256)),
)


@dataclass(frozen=True)
class Run:
    heartbeats_per_s: float
    dirty_mib_s: float
    qemu_total_ms: float
    qemu_downtime_ms: float
    switchover_gap_ms: float
    largest_gap_ms: float


async def run_once(shape: Shape, directory: Path) -> Run:
    spec = guest_spec(
        directory / "kernel.bin",
        memory_mib=shape.memory_mib,
        working_set_mib=shape.working_set_mib,
        dirty_rate_mib_s=shape.dirty_rate_mib_s,
    )
    vms: list[GuestVm] = []
    try:
        async with HeartbeatMonitor() as monitor:
            source = await launch_running(
                spec,
                directory=directory,
                name="src",
                monitor=monitor,
                heartbeats=WARM_UP_HEARTBEATS,
            )
            vms.append(source)
            before, started = await source.read_status(), time.monotonic()
            await asyncio.sleep(MEASURE_SECONDS)
            after, ended = await source.read_status(), time.monotonic()
            destination = await GuestVm.launch(
                dataclasses.replace(spec, incoming=True), directory=directory, name="dst"
            )
            vms.append(destination)
            await monitor.attach(destination.serial_address, name="dst")
            stats = await migrate_raw(source, destination)
            report = await monitor.wait_for(lambda r: r.source("dst").heartbeats >= 100)
            check = await destination.check_memory()
        if report.anomaly_count or not check.intact:
            raise RuntimeError(f"broken run: {report.anomalies} {check.bad_pages}")
        gap = report.source("dst").switchover_gap or 0.0
        elapsed = ended - started
        return Run(
            heartbeats_per_s=(after.heartbeats - before.heartbeats) / elapsed,
            dirty_mib_s=(after.pages_written - before.pages_written) * PAGE_SIZE / 2**20 / elapsed,
            qemu_total_ms=stats.total_time_ms,
            qemu_downtime_ms=stats.downtime_ms,
            switchover_gap_ms=gap * 1000,
            largest_gap_ms=report.largest_gap * 1000,
        )
    finally:
        for vm in vms:
            await vm.close()


def row(label: str, values: list[float]) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"  {label:<22} {median:>10.1f} {low:>10.1f} {high:>10.1f}"


async def main(runs: int) -> None:
    print(f"accelerator: {detect_accel().value}, firmware: {default_bios()}, runs: {runs}")
    for shape in SHAPES:
        results = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as directory:
                async with asyncio.timeout(TIMEOUT):
                    results.append(await run_once(shape, Path(directory)))
        target = f"{shape.dirty_rate_mib_s}" if shape.working_set_mib else "-"
        print(f"\n{shape.label} (asked: {target} MiB/s)")
        print(f"  {'':<22} {'median':>10} {'min':>10} {'max':>10}")
        print(row("heartbeats/s", [r.heartbeats_per_s for r in results]))
        print(row("guest dirty MiB/s", [r.dirty_mib_s for r in results]))
        print(row("QEMU total-time ms", [r.qemu_total_ms for r in results]))
        print(row("QEMU downtime ms", [r.qemu_downtime_ms for r in results]))
        print(row("switchover gap ms", [r.switchover_gap_ms for r in results]))
        print(row("largest gap ms", [r.largest_gap_ms for r in results]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    asyncio.run(main(parser.parse_args().runs))
