"""Transport benchmark: round trips per second, latency, and server memory per idle connection.

Runs a server in a child process (so client and server each have a core) and measures, on
one unix connection and on one mutual-TLS connection, small request/response round trips
sequentially and with 64 calls in flight: round trips per second and p50/p99 latency. Then
opens 1,000 idle TLS connections to the server and reads the server process's peak RSS
(VmHWM), and the same for 1,000 idle unix connections for comparison. Round-trip figures are
medians of several runs.

    .venv/bin/python -m benchmarks.transport_bench [--calls N] [--runs N] [--idle N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transport import (
    Connection,
    Limits,
    Server,
    TLSClientConfig,
    TLSServerConfig,
    certdir,
    connect_tls,
    connect_unix,
)

#: Enough room for the idle connections (and their handshakes) on both sides.
LIMITS = Limits(max_connections=4096)

IN_FLIGHT = 64
MODES = (("sequential", 1), (f"{IN_FLIGHT} in flight", IN_FLIGHT))
PAYLOAD = {"op": "status", "domain": "vm1", "n": 0}


@dataclass(frozen=True)
class RoundTrips:
    """One run of one scenario."""

    per_second: float
    p50_ms: float
    p99_ms: float


# --------------------------------------------------------------------------- server side


async def _echo(params: Any, connection: Connection) -> Any:
    return params


async def _memory(params: Any, connection: Connection) -> dict[str, int]:
    return _process_memory()


def _process_memory() -> dict[str, int]:
    """This process's VmRSS and VmHWM (peak RSS), in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


async def serve(socket_path: Path, host_dir: Path) -> None:
    """Serve until standard input closes; print the TLS port once listening."""
    async with Server({"echo": _echo, "memory": _memory}, limits=LIMITS) as server:
        await server.listen_unix(socket_path)
        tls = TLSServerConfig.from_dir(host_dir, allowed_clients={"bench-client"})
        _, port = await server.listen_tls("127.0.0.1", 0, tls=tls)
        print(port, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# --------------------------------------------------------------------------- client side


async def measure(connection: Connection, *, calls: int, in_flight: int) -> RoundTrips:
    """``calls`` echo round trips with ``in_flight`` callers at once."""
    latencies: list[float] = []

    async def caller(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            await connection.call("echo", PAYLOAD)
            latencies.append(time.perf_counter() - started)

    share = calls // in_flight
    started = time.perf_counter()
    await asyncio.gather(*(caller(share) for _ in range(in_flight)))
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return RoundTrips(len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000)


@dataclass(frozen=True)
class IdleMemory:
    """Server memory (KiB) before and with the idle connections open."""

    rss_before: int
    rss_after: int
    peak_after: int


async def idle_connection_memory(
    open_connection: Callable[[], Awaitable[Connection]], *, count: int
) -> IdleMemory:
    """Server memory before and after ``count`` idle connections are open."""
    probe = await open_connection()
    before = await probe.call("memory")
    opening = asyncio.Semaphore(32)

    async def open_one() -> Connection:
        async with opening:
            return await open_connection()

    idle = await asyncio.gather(*(open_one() for _ in range(count)))
    await asyncio.sleep(1.0)  # let the server settle
    after = await probe.call("memory")
    await asyncio.gather(*(connection.close() for connection in [probe, *idle]))
    return IdleMemory(before["VmRSS"], after["VmRSS"], after["VmHWM"])


@dataclass(frozen=True)
class Endpoints:
    """How to reach a running benchmark server."""

    unix: Callable[[], Awaitable[Connection]]
    tls: Callable[[], Awaitable[Connection]]


@contextlib.asynccontextmanager
async def server_process(work: Path) -> AsyncIterator[Endpoints]:
    """A benchmark server in a child process, for as long as the context lasts."""
    server_dir, client_dir = work / "bench-server", work / "bench-client"
    socket_path = work / "bench.sock"
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.transport_bench",
        "--serve",
        str(socket_path),
        str(server_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        port = int(await server.stdout.readline())
        client_tls = TLSClientConfig.from_dir(client_dir)
        yield Endpoints(
            unix=functools.partial(connect_unix, socket_path, limits=LIMITS),
            tls=functools.partial(
                connect_tls,
                "127.0.0.1",
                port,
                tls=client_tls,
                expected_server_name="bench-server",
                limits=LIMITS,
            ),
        )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        await server.wait()


async def run(*, calls: int, runs: int, idle: int) -> None:
    _, hard_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard_limit, hard_limit))
    with tempfile.TemporaryDirectory(prefix="transport-bench-") as directory:
        work = Path(directory)
        certdir.create_ca(work)
        certdir.issue(work, name="bench-server", ips=["127.0.0.1"])
        certdir.issue(work, name="bench-client")
        rows = []
        async with server_process(work) as endpoints:
            for name, open_connection in (("unix", endpoints.unix), ("TLS", endpoints.tls)):
                async with await open_connection() as connection:
                    for label, in_flight in (
                        ("sequential", 1),
                        (f"{IN_FLIGHT} in flight", IN_FLIGHT),
                    ):
                        await measure(connection, calls=calls // 10, in_flight=in_flight)  # warm-up
                        results = [
                            await measure(connection, calls=calls, in_flight=in_flight)
                            for _ in range(runs)
                        ]
                        rows.append((name, label, results))
        memory = []
        for name in ("unix", "TLS"):
            async with server_process(work) as endpoints:
                opener = endpoints.unix if name == "unix" else endpoints.tls
                memory.append((name, await idle_connection_memory(opener, count=idle)))
    _print_tables(rows, memory, calls=calls, runs=runs, idle=idle)


def _print_tables(
    rows: list[tuple[str, str, list[RoundTrips]]],
    memory: list[tuple[str, IdleMemory]],
    *,
    calls: int,
    runs: int,
    idle: int,
) -> None:
    print(f"round trips: {calls} small calls per run, median of {runs} runs")
    print(f"{'transport':<10}{'mode':<14}{'round trips/s':>14}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label, results in rows:
        per_second = statistics.median(r.per_second for r in results)
        p50 = statistics.median(r.p50_ms for r in results)
        p99 = statistics.median(r.p99_ms for r in results)
        print(f"{name:<10}{label:<14}{per_second:>14,.0f}{p50:>10.3f}{p99:>10.3f}")
    print()
    print(f"server memory with {idle} idle connections (fresh server per row)")
    print(f"{'transport':<10}{'RSS before':>12}{'RSS after':>12}{'peak RSS':>12}{'per conn':>12}")
    for name, sample in memory:
        per_connection = (sample.rss_after - sample.rss_before) / idle
        print(
            f"{name:<10}{sample.rss_before / 1024:>8.1f} MiB{sample.rss_after / 1024:>8.1f} MiB"
            f"{sample.peak_after / 1024:>8.1f} MiB{per_connection:>8.1f} KiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000, help="round trips per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario")
    parser.add_argument("--idle", type=int, default=1000, help="idle TLS connections")
    parser.add_argument("--serve", nargs=2, metavar=("SOCKET", "HOST_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(Path(args.serve[0]), Path(args.serve[1])))
    else:
        asyncio.run(run(calls=args.calls, runs=args.runs, idle=args.idle))


if __name__ == "__main__":
    main()
