"""Live migration of the test guest on real QEMU: the engine end to end against raw QMP.

For each guest shape, every round migrates a fresh guest three times, in turn:

- engine: the five phases (``run_migration``) between two in-process hosts with their own
  qemu drivers, so the destination QEMU is started inside Prepare: the wall time of the whole
  call, of each phase, and of the destination QEMU start within Prepare;
- raw QMP: ``migrate_raw`` between two QEMUs of the test-guest harness, the destination
  already started (``-incoming defer``): the wall time of that call, and of the destination
  start before it;
- raw QMP with ``return-path`` on, as the engine (like libvirt) turns it on: the source then
  waits for the destination to load the last state before it completes.

All migrate at the same bandwidth limit, after the guest has rewritten its whole working set.
QEMU's total-time and downtime are read from ``query-migrate`` on the source once it is
``postmigrate`` (for the engine, before Confirm kills it; that read is left out of the
end-to-end time); the heartbeat gap is the time from the last heartbeat from the source to the
first from the destination. A run that breaks the heartbeat sequence or the guest's memory
stops the benchmark. The first ``--warm-up`` rounds are left out: memory that QEMU freed a
moment ago is slow to hand out again on some hosts.

Targets (on medians): end-to-end <= raw QMP + destination start + 30 ms; heartbeat gap <=
QEMU downtime + 10 ms.

Run: ``.venv/bin/python -m benchmarks.qemu_migration_bench [--runs N] [--warm-up N]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import enum
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cookies
from migrator.drivers.base import MigrationProgress
from migrator.drivers.qemu import QEMUInstance
from migrator.runtime.destination import DestinationSide, PrepareResult
from migrator.runtime.protocol import run_migration
from migrator.runtime.source import BeginResult
from migrator.testguest import probe
from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.heartbeat_log import HeartbeatReport
from migrator.testguest.memcheck import MemoryCheck
from migrator.testguest.protocol import MIB
from migrator.testguest.rawmigration import DEFAULT_MAX_BANDWIDTH, migrate_raw
from migrator.testguest.vm import (
    GuestVm,
    default_bios,
    detect_accel,
    guest_memory_mib,
    guest_spec,
    launch_running,
)
from params import MigrationFlag
from tests.integration.qemu_cluster import LIVE_P2P, GuestShape, QemuCluster

TIMEOUT_S = 120
NAME = "vm"
#: Heartbeats the guest sends before it migrates, and the destination after.
WARM_HEARTBEATS = 200
AFTER_HEARTBEATS = 100
#: The raw migration's bandwidth limit, in the engine's unit (MiB/s).
BANDWIDTH_MIB_S = DEFAULT_MAX_BANDWIDTH // MIB
END_TO_END_SLACK_MS = 30.0
GAP_SLACK_MS = 10.0
RETURN_PATH_ON = [{"capability": "return-path", "state": True}]


@dataclass(frozen=True)
class Shape:
    label: str
    guest: GuestShape


SHAPES = (
    Shape("idle, 1 GiB", GuestShape(memory_mib=1024)),
    Shape(
        "256 MiB at 100 MiB/s",
        GuestShape(memory_mib=guest_memory_mib(256), working_set_mib=256, dirty_rate_mib_s=100),
    ),
)


class Phase(enum.Enum):
    BEGIN = "begin"
    PREPARE = "prepare"
    PERFORM = "perform"
    FINISH = "finish"
    CONFIRM = "confirm"


@dataclass(frozen=True)
class Run:
    """One migration, times in milliseconds."""

    wall_ms: float
    destination_start_ms: float
    qemu_total_ms: float
    qemu_downtime_ms: float
    gap_ms: float
    #: The engine's phases (none for raw QMP).
    phase_ms: Mapping[Phase, float] = field(default_factory=dict)
    #: The downtime in the engine's Perform cookie (None for raw QMP).
    cookie_downtime_ms: float | None = None


class BrokenRun(RuntimeError):
    """A migration lost heartbeats or memory: its figures mean nothing."""


def checked(report: HeartbeatReport, memory: MemoryCheck, *, destination: str) -> float:
    """The switchover gap in milliseconds of a run that kept the guest whole."""
    gap = report.source(destination).switchover_gap
    if report.anomaly_count or report.bad_page_reports or not memory.intact or gap is None:
        raise BrokenRun(f"{report.anomalies} {report.bad_pages} {memory.bad_pages} gap {gap}")
    return gap * 1000


# -- the engine ---------------------------------------------------------------------------


class Stopwatch:
    """Milliseconds spent in each phase, and time to leave out of the end-to-end figure."""

    def __init__(self) -> None:
        self.phase_ms: dict[Phase, float] = {}
        self.excluded_s = 0.0

    @contextlib.contextmanager
    def phase(self, phase: Phase) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.phase_ms[phase] = (time.perf_counter() - began) * 1000

    @contextlib.contextmanager
    def excluded(self) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.excluded_s += time.perf_counter() - began


class TimedSource:
    """The source side, passed through and timed. It also keeps the downtime in the
    Perform cookie and reads QEMU's final figures before Confirm kills the source QEMU; both
    are left out of the phases and of the end-to-end time."""

    def __init__(self, cluster: QemuCluster, watch: Stopwatch) -> None:
        self._cluster = cluster
        self._side = cluster.source
        self._watch = watch
        self.final: MigrationProgress | None = None
        self.cookie_downtime_ms: float | None = None

    async def begin(
        self, name: str, *, flags: MigrationFlag, typed: dict[str, object]
    ) -> BeginResult:
        with self._watch.phase(Phase.BEGIN):
            return await self._side.begin(name, flags=flags, typed=typed)

    async def perform(self, name: str, *, cookie: bytes, uri: str) -> bytes:
        with self._watch.phase(Phase.PERFORM):
            performed = await self._side.perform(name, cookie=cookie, uri=uri)
        with self._watch.excluded():
            trusted = self._cluster.b.trusted_keys
            statistics = cookies.decode(performed, trusted_keys=trusted).statistics
            if statistics is not None and statistics.downtime is not None:
                self.cookie_downtime_ms = float(statistics.downtime)
        return performed

    async def confirm(self, name: str, *, cookie: bytes | None, cancelled: bool) -> None:
        if not cancelled:
            with self._watch.excluded():
                instance = self._cluster.instance(self._cluster.a, name)
                self.final = await final_progress(instance)
        with self._watch.phase(Phase.CONFIRM):
            await self._side.confirm(name, cookie=cookie, cancelled=cancelled)


class TimedDestination:
    """The destination side, passed through and timed."""

    def __init__(self, side: DestinationSide, watch: Stopwatch) -> None:
        self._side = side
        self._watch = watch

    async def prepare(
        self, *, cookie: bytes, xml: str, flags: MigrationFlag, typed: dict[str, object]
    ) -> PrepareResult:
        with self._watch.phase(Phase.PREPARE):
            return await self._side.prepare(cookie=cookie, xml=xml, flags=flags, typed=typed)

    async def finish(self, name: str, *, cookie: bytes | None, cancelled: bool) -> bytes:
        with self._watch.phase(Phase.FINISH):
            return await self._side.finish(name, cookie=cookie, cancelled=cancelled)


async def final_progress(instance: QEMUInstance) -> MigrationProgress:
    """``query-migrate`` once QEMU has finished its figures (it is ``postmigrate``)."""
    while True:
        status = await instance.execute("query-status")
        if isinstance(status, dict) and status.get("status") == "postmigrate":
            return await instance.query_migration()


async def engine_run(shape: GuestShape, directory: Path) -> Run:
    async with QemuCluster(directory) as cluster:
        await cluster.start(NAME, shape, warm=True)
        await cluster.monitor.wait_for(lambda r: r.heartbeats >= WARM_HEARTBEATS)
        watch = Stopwatch()
        source = TimedSource(cluster, watch)
        began = time.perf_counter()
        await run_migration(
            source,
            TimedDestination(cluster.destination, watch),
            NAME,
            flags=LIVE_P2P,
            typed={"bandwidth": BANDWIDTH_MIB_S},
            destination_typed={},
        )
        wall_s = time.perf_counter() - began - watch.excluded_s
        destination = cluster.serial_source(cluster.b, NAME)
        report = await cluster.monitor.wait_for(
            lambda r: r.source(destination).heartbeats >= AFTER_HEARTBEATS
        )
        memory = await cluster.memory_check(cluster.instance(cluster.b, NAME), NAME)
        final = source.final
        assert final is not None and final.total_time is not None and final.downtime is not None
        return Run(
            wall_ms=wall_s * 1000,
            destination_start_ms=cluster.driver(cluster.b).start_seconds[-1] * 1000,
            qemu_total_ms=final.total_time,
            qemu_downtime_ms=final.downtime,
            gap_ms=checked(report, memory, destination=destination),
            phase_ms=watch.phase_ms,
            cookie_downtime_ms=source.cookie_downtime_ms,
        )


# -- raw QMP ------------------------------------------------------------------------------


async def raw_run(shape: GuestShape, directory: Path, *, return_path: bool) -> Run:
    spec = guest_spec(
        directory / "raw.kernel",
        memory_mib=shape.memory_mib,
        working_set_mib=shape.working_set_mib,
        dirty_rate_mib_s=shape.dirty_rate_mib_s,
    )
    vms: list[GuestVm] = []
    try:
        async with HeartbeatMonitor() as monitor:
            source = await launch_running(
                spec, directory=directory, name="src", monitor=monitor, heartbeats=WARM_HEARTBEATS
            )
            vms.append(source)
            await probe.until_rewritten(
                source.execute, directory / "src.status", working_set_mib=shape.working_set_mib
            )
            began = time.perf_counter()
            destination = await GuestVm.launch(
                dataclasses.replace(spec, incoming=True), directory=directory, name="dst"
            )
            start_s = time.perf_counter() - began
            vms.append(destination)
            await monitor.attach(destination.serial_address, name="dst")
            began = time.perf_counter()
            if return_path:
                for vm in (source, destination):
                    await vm.execute("migrate-set-capabilities", {"capabilities": RETURN_PATH_ON})
            stats = await migrate_raw(source, destination)
            wall_s = time.perf_counter() - began
            report = await monitor.wait_for(
                lambda r: r.source("dst").heartbeats >= AFTER_HEARTBEATS
            )
            memory = await destination.check_memory()
    finally:
        for vm in vms:
            await vm.close()
    return Run(
        wall_ms=wall_s * 1000,
        destination_start_ms=start_s * 1000,
        qemu_total_ms=stats.total_time_ms,
        qemu_downtime_ms=stats.downtime_ms,
        gap_ms=checked(report, memory, destination="dst"),
    )


# -- running and reporting ----------------------------------------------------------------


class Kind(enum.Enum):
    ENGINE = "engine"
    RAW = "raw QMP"
    RAW_RETURN_PATH = "raw QMP, return-path"


async def run_once(kind: Kind, shape: GuestShape, directory: Path) -> Run:
    if kind is Kind.ENGINE:
        return await engine_run(shape, directory)
    return await raw_run(shape, directory, return_path=kind is Kind.RAW_RETURN_PATH)


async def measure(shape: GuestShape, *, runs: int, warm_up: int) -> dict[Kind, list[Run]]:
    """``runs`` runs of each kind, in rounds, after ``warm_up`` rounds left out."""
    results: dict[Kind, list[Run]] = {kind: [] for kind in Kind}
    for _ in range(warm_up + runs):
        for kind in Kind:
            with tempfile.TemporaryDirectory(prefix="qmb") as directory:
                async with asyncio.timeout(TIMEOUT_S):
                    results[kind].append(await run_once(kind, shape, Path(directory)))
    return {kind: runs_of_kind[warm_up:] for kind, runs_of_kind in results.items()}


def row(label: str, values: list[float]) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"  {label:<40} {median:>9.1f} {low:>9.1f} {high:>9.1f}"


def median_of(runs: list[Run], figure: Callable[[Run], float]) -> float:
    return statistics.median(figure(run) for run in runs)


def report(label: str, results: dict[Kind, list[Run]]) -> None:
    engine = results[Kind.ENGINE]
    print(f"\n{label}: {len(engine)} runs of each, milliseconds")
    print(f"  {'':<40} {'median':>9} {'min':>9} {'max':>9}")
    print(row("engine end-to-end", [r.wall_ms for r in engine]))
    for phase in Phase:
        print(row(f"  {phase.value}", [r.phase_ms[phase] for r in engine]))
    print(row("  destination QEMU start (in prepare)", [r.destination_start_ms for r in engine]))
    for kind in (Kind.RAW, Kind.RAW_RETURN_PATH):
        print(row(f"{kind.value} migration", [r.wall_ms for r in results[kind]]))
    print(row("raw destination QEMU start", [r.destination_start_ms for r in results[Kind.RAW]]))
    for kind in Kind:
        print(row(f"{kind.value}: QEMU total-time", [r.qemu_total_ms for r in results[kind]]))
        print(row(f"{kind.value}: QEMU downtime", [r.qemu_downtime_ms for r in results[kind]]))
        print(row(f"{kind.value}: heartbeat gap", [r.gap_ms for r in results[kind]]))
    differing = sum(r.cookie_downtime_ms != r.qemu_downtime_ms for r in engine)
    print(
        f"  Perform cookie downtime differs from QEMU's final one in {differing} of {len(engine)}"
    )
    end_to_end = median_of(engine, lambda r: r.wall_ms)
    bound = (
        median_of(results[Kind.RAW], lambda r: r.wall_ms)
        + median_of(engine, lambda r: r.destination_start_ms)
        + END_TO_END_SLACK_MS
    )
    gap = median_of(engine, lambda r: r.gap_ms)
    gap_bound = median_of(engine, lambda r: r.qemu_downtime_ms) + GAP_SLACK_MS
    print(
        f"  target end-to-end <= raw QMP + destination start + {END_TO_END_SLACK_MS:.0f}: "
        f"{end_to_end:.1f} <= {bound:.1f} {verdict(end_to_end <= bound)}"
    )
    print(
        f"  target heartbeat gap <= QEMU downtime + {GAP_SLACK_MS:.0f}: "
        f"{gap:.1f} <= {gap_bound:.1f} {verdict(gap <= gap_bound)}"
    )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


async def main(*, runs: int, warm_up: int) -> None:
    print(
        f"accelerator: {detect_accel().value}, firmware: {default_bios()}, "
        f"bandwidth limit: {BANDWIDTH_MIB_S} MiB/s, runs: {runs} (+{warm_up} warm-up)"
    )
    for shape in SHAPES:
        report(shape.label, await measure(shape.guest, runs=runs, warm_up=warm_up))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--warm-up", type=int, default=1)
    arguments = parser.parse_args()
    asyncio.run(main(runs=arguments.runs, warm_up=arguments.warm_up))
