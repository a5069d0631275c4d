"""Engine benchmark: full five-phase migrations between two in-process hosts on the simulator.

Every migration is live and peer-to-peer, of an idle 64 MiB guest, through Begin, Prepare,
Perform, Finish and Confirm with signed cookies, on the ``sim`` driver's virtual clock.

- sequential: one guest migrates back and forth between host a and host b (default 10,000
  times, after a warm-up), in rounds; prints the median rate over the rounds and the median
  and 99th percentile time of one migration.
- concurrent: distinct guests (default 1,000) start on host a and all migrate to host b at
  once in one event loop. Each run is a fresh interpreter (``--part concurrent``), so the
  sequential part does not raise its peak; prints the median over runs of the wall time, the
  rate, and the peak RSS (``ru_maxrss`` and ``VmHWM``).

``--profile [N]`` runs cProfile over N sequential migrations after the warm-up instead, and
prints the top 25 entries by cumulative time.

    .venv/bin/python -m benchmarks.engine_bench [--sequential N] [--concurrent N] [--runs N]
    .venv/bin/python -m benchmarks.engine_bench --part concurrent [--concurrent N]
    .venv/bin/python -m benchmarks.engine_bench --profile [N]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import resource
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cookies import generate_signing_key
from migrator.domain import Devices, Domain, DomainType
from migrator.drivers.base import StartMode
from migrator.drivers.sim import IDLE, SimDriver, SimWorld
from migrator.runtime.destination import DestinationSide
from migrator.runtime.host import Guest, Host
from migrator.runtime.protocol import run_migration
from migrator.runtime.source import SourceSide
from params import MigrationFlag

FLAGS = MigrationFlag.LIVE | MigrationFlag.PEER2PEER
GUEST_MEMORY_MIB = 64

SEQUENTIAL_DEFAULT = 10_000
SEQUENTIAL_ROUNDS = 10
SEQUENTIAL_WARMUP = 200
SEQUENTIAL_TARGET_PER_S = 2_000.0

CONCURRENT_DEFAULT = 1_000
CONCURRENT_RUNS_DEFAULT = 3
CONCURRENT_WARMUP = 20
PEAK_RSS_TARGET_MB = 200.0

PROFILE_ENTRIES = 25
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- two hosts


@dataclass(frozen=True)
class Node:
    """One in-process host with both of its migration roles."""

    host: Host
    source: SourceSide
    destination: DestinationSide


@dataclass(frozen=True)
class Pair:
    """Host a and host b in one simulated world, trusting each other."""

    world: SimWorld
    a: Node
    b: Node


def build_pair() -> Pair:
    world = SimWorld(record_trace=False)
    a, b = (_node(world, name) for name in ("host-a", "host-b"))
    a.host.trust(b.host)
    return Pair(world=world, a=a, b=b)


def _node(world: SimWorld, name: str) -> Node:
    host = Host(
        name=name,
        uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
        driver=SimDriver(world, name),
        signing_key=generate_signing_key(),
        incoming_address=name,
    )
    return Node(host=host, source=SourceSide(host), destination=DestinationSide(host))


async def start_guest(pair: Pair, name: str, *, on: Node) -> None:
    """Define and start an idle guest called ``name`` on ``on``."""
    domain = Domain(
        type=DomainType.KVM,
        name=name,
        uuid=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        memory_kib=GUEST_MEMORY_MIB * 1024,
        devices=Devices(),
    )
    pair.world.set_workload(name, IDLE)
    on.host.define(domain)
    instance = await on.host.driver.start(domain, mode=StartMode.RUNNING)
    on.host.guests[name] = Guest(domain, instance)


async def migrate(name: str, *, source: Node, destination: Node) -> None:
    await run_migration(
        source.source, destination.destination, name, flags=FLAGS, typed={}, destination_typed={}
    )


def require_on(name: str, *, running: Node, absent: Node) -> None:
    """Stop the benchmark when a migration did not move the guest where it should be."""
    if name not in running.host.guests or name in absent.host.guests:
        raise SystemExit(
            f"guest {name!r} should run on {running.host.name} only; it runs on "
            f"{[n.host.name for n in (running, absent) if name in n.host.guests]}"
        )


# --------------------------------------------------------------------------- sequential


@dataclass(frozen=True)
class Sequential:
    """Migrations per second of each round, and the time of every migration."""

    rounds_per_s: tuple[float, ...]
    migration_us: tuple[float, ...]


def _other(pair: Pair, node: Node) -> Node:
    return pair.b if node is pair.a else pair.a


async def _ping_pong(pair: Pair, count: int, *, at: Node) -> tuple[Node, list[float]]:
    """Migrate guest ``vm``, which runs on ``at``, ``count`` times, each time to the other
    host; returns where it runs then, and the microseconds of each migration."""
    times = []
    for _ in range(count):
        destination = _other(pair, at)
        start = time.perf_counter()
        await migrate("vm", source=at, destination=destination)
        times.append((time.perf_counter() - start) * 1e6)
        at = destination
    return at, times


async def _warmed_up() -> tuple[Pair, Node]:
    """A new pair whose guest ``vm`` has done the warm-up migrations; returns where it runs."""
    pair = build_pair()
    await start_guest(pair, "vm", on=pair.a)
    at, _ = await _ping_pong(pair, SEQUENTIAL_WARMUP, at=pair.a)
    return pair, at


async def measure_sequential(count: int) -> Sequential:
    pair, at = await _warmed_up()
    rounds = min(SEQUENTIAL_ROUNDS, count)
    rates: list[float] = []
    times: list[float] = []
    for index in range(rounds):
        size = count // rounds + (1 if index < count % rounds else 0)
        start = time.perf_counter()
        at, round_times = await _ping_pong(pair, size, at=at)
        rates.append(size / (time.perf_counter() - start))
        times += round_times
    require_on("vm", running=at, absent=_other(pair, at))
    return Sequential(rounds_per_s=tuple(rates), migration_us=tuple(times))


async def profile_sequential(count: int) -> pstats.Stats:
    pair, at = await _warmed_up()
    profiler = cProfile.Profile()
    profiler.enable()
    await _ping_pong(pair, count, at=at)
    profiler.disable()
    return pstats.Stats(profiler)


# --------------------------------------------------------------------------- concurrent


@dataclass(frozen=True)
class Concurrent:
    """One run of ``count`` concurrent migrations in a fresh interpreter (sizes in KiB)."""

    count: int
    wall_s: float
    rss_before_kib: int
    maxrss_kib: int
    vmhwm_kib: int


async def _migrate_all(count: int, *, prefix: str) -> float:
    """Start ``count`` guests on host a of a new pair, migrate them all to host b at once;
    returns the seconds the migrations took."""
    pair = build_pair()
    names = [f"{prefix}{index}" for index in range(count)]
    for name in names:
        await start_guest(pair, name, on=pair.a)
    start = time.perf_counter()
    await asyncio.gather(*(migrate(name, source=pair.a, destination=pair.b) for name in names))
    elapsed = time.perf_counter() - start
    for name in names:
        require_on(name, running=pair.b, absent=pair.a)
    return elapsed


async def measure_concurrent(count: int) -> Concurrent:
    await _migrate_all(CONCURRENT_WARMUP, prefix="warmup-")
    rss_before = _process_memory_kib()["VmRSS"]
    elapsed = await _migrate_all(count, prefix="vm")
    return Concurrent(
        count=count,
        wall_s=elapsed,
        rss_before_kib=rss_before,
        maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        vmhwm_kib=_process_memory_kib()["VmHWM"],
    )


def _process_memory_kib() -> dict[str, int]:
    """This process's VmRSS and VmHWM (peak RSS), in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def concurrent_in_fresh_interpreter(count: int) -> Concurrent:
    """Run one concurrent measurement in a child interpreter and read its result."""
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.engine_bench",
            "--part",
            "concurrent",
            "--concurrent",
            str(count),
            "--json",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"concurrent run failed:\n{child.stderr.strip()}")
    return Concurrent(**json.loads(child.stdout))


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Row:
    """One measure: its value in each run or round, and the bound it must meet, if any."""

    measure: str
    values: tuple[float, ...]
    digits: int
    at_least: float | None = None
    at_most: float | None = None


def _megabytes(kib: int) -> float:
    return kib * 1024 / 1e6


def sequential_rows(result: Sequential) -> list[Row]:
    times = sorted(result.migration_us)
    return [
        Row("migrations/s", result.rounds_per_s, 0, at_least=SEQUENTIAL_TARGET_PER_S),
        Row(
            "one migration, median (us)",
            (statistics.median(times),),
            1,
            at_most=1e6 / SEQUENTIAL_TARGET_PER_S,
        ),
        Row("one migration, p99 (us)", (times[min(len(times) - 1, int(len(times) * 0.99))],), 1),
    ]


def concurrent_rows(runs: list[Concurrent]) -> list[Row]:
    return [
        Row("wall time (s)", tuple(r.wall_s for r in runs), 2),
        Row("migrations/s", tuple(r.count / r.wall_s for r in runs), 0),
        Row(
            "RSS before starting guests (MB)",
            tuple(_megabytes(r.rss_before_kib) for r in runs),
            1,
        ),
        Row(
            "peak RSS, ru_maxrss (MB)",
            tuple(_megabytes(r.maxrss_kib) for r in runs),
            1,
            at_most=PEAK_RSS_TARGET_MB,
        ),
        Row(
            "peak RSS, VmHWM (MB)",
            tuple(_megabytes(r.vmhwm_kib) for r in runs),
            1,
            at_most=PEAK_RSS_TARGET_MB,
        ),
    ]


def print_table(rows: list[Row], *, title: str) -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("median", justify="right")
    table.add_column("min .. max", justify="right")
    table.add_column("target", justify="right")
    table.add_column("ok", justify="center")
    for row in rows:
        median = statistics.median(row.values)
        spread = (
            f"{min(row.values):,.{row.digits}f} .. {max(row.values):,.{row.digits}f}"
            if len(row.values) > 1
            else "-"
        )
        if row.at_least is not None:
            target, ok = f">= {row.at_least:,.0f}", median >= row.at_least
        elif row.at_most is not None:
            target, ok = f"<= {row.at_most:,.0f}", median <= row.at_most
        else:
            target, ok = "-", None
        table.add_row(
            row.measure,
            f"{median:,.{row.digits}f}",
            spread,
            target,
            "-" if ok is None else ("yes" if ok else "NO"),
        )
    Console().print(table)


# --------------------------------------------------------------------------- command line


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.engine_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--part",
        choices=("all", "sequential", "concurrent"),
        default="all",
        help="all (default): sequential here, concurrent in fresh interpreters; "
        "concurrent: one concurrent run in this interpreter",
    )
    parser.add_argument("--sequential", type=_positive, default=SEQUENTIAL_DEFAULT, metavar="N")
    parser.add_argument("--concurrent", type=_positive, default=CONCURRENT_DEFAULT, metavar="N")
    parser.add_argument(
        "--runs",
        type=_positive,
        default=CONCURRENT_RUNS_DEFAULT,
        metavar="N",
        help="concurrent runs, each in a fresh interpreter (with --part all)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the run as JSON (with --part concurrent)"
    )
    parser.add_argument(
        "--profile",
        type=_positive,
        nargs="?",
        const=1,
        metavar="N",
        help="profile N sequential migrations (default 1) instead of measuring",
    )
    arguments = parser.parse_args()
    if arguments.json and arguments.part != "concurrent":
        parser.error("--json applies to --part concurrent only")
    return arguments


def main() -> None:
    arguments = parse_arguments()
    if arguments.profile is not None:
        stats = asyncio.run(profile_sequential(arguments.profile))
        print(f"cProfile of {arguments.profile} sequential migration(s), after a warm-up")
        stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(PROFILE_ENTRIES)
        return
    if arguments.part == "concurrent":
        run = asyncio.run(measure_concurrent(arguments.concurrent))
        if arguments.json:
            print(json.dumps(asdict(run)))
        else:
            print_table(concurrent_rows([run]), title=_concurrent_title(run.count, runs=1))
        return
    sequential = asyncio.run(measure_sequential(arguments.sequential))
    print_table(
        sequential_rows(sequential),
        title=(
            f"sequential: {len(sequential.migration_us):,} live p2p migrations of one idle "
            f"{GUEST_MEMORY_MIB} MiB guest, a<->b, in {len(sequential.rounds_per_s)} rounds "
            f"after {SEQUENTIAL_WARMUP} warm-up migrations"
        ),
    )
    if arguments.part == "all":
        count, times = arguments.concurrent, arguments.runs
        runs = [concurrent_in_fresh_interpreter(count) for _ in range(times)]
        print_table(concurrent_rows(runs), title=_concurrent_title(count, runs=times))


def _concurrent_title(count: int, *, runs: int) -> str:
    return (
        f"concurrent: {count:,} idle {GUEST_MEMORY_MIB} MiB guests a->b at once in one event "
        f"loop, after a warm-up; median of {runs} fresh interpreter(s)"
    )


if __name__ == "__main__":
    main()
