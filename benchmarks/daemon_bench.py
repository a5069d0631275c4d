"""Live migration through the daemons: two ``migrator daemon`` subprocesses on real QEMU, a
client asking the source for a peer-to-peer migration over mutual TLS.

- one idle 1 GiB test guest, end to end: the wall time of ``Client.migrate`` (the client's
  call to the source daemon, the source daemon's TLS connection and key exchange with the
  destination, the five phases, the destination QEMU's start inside Prepare), against raw
  QMP migration of the same guest between two QEMUs of the test-guest harness
  (``migrate_raw``, without and with ``return-path``, which the engine turns on as libvirt
  does) and that harness's destination QEMU start;
- eight idle 1 GiB guests migrated from A to B at once (eight calls in flight on one client
  connection): the total wall time, and each migration's.

Every engine run checks that the guest then runs on B only: its heartbeat comes from B's
QEMU, later than every heartbeat from A. All migrate at the same bandwidth limit. The first
``--warm-up`` rounds are left out.

Target (on medians): end-to-end <= raw QMP + destination start + 50 ms.

Run: ``.venv/bin/python -m benchmarks.daemon_bench [--runs N] [--warm-up N]
[--concurrent-runs N]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.qemu_migration_bench import BANDWIDTH_MIB_S, raw_run
from migrator.client import Client, JobType
from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.vm import default_bios, detect_accel
from params import MigrationFlag
from tests.daemon.guests import DaemonGuest, assert_one_guest, beats, follow, follow_soon
from tests.daemon.processes import (
    ADMIN,
    DaemonProcess,
    daemon_pair,
    make_certificates,
    short_directory,
)
from tests.integration.qemu_cluster import GuestShape

TIMEOUT_S = 300
IDLE_1G = GuestShape(memory_mib=1024)
FLAGS = MigrationFlag.LIVE | MigrationFlag.PEER2PEER
CONCURRENT = 8
SLACK_MS = 50.0
#: Heartbeats a guest sends before it migrates, and from the destination after.
WARM_HEARTBEATS = 200
AFTER_HEARTBEATS = 100


@dataclass
class Cluster:
    a: DaemonProcess
    b: DaemonProcess
    admin: Path
    root: Path


@contextlib.contextmanager
def daemons() -> Iterator[Cluster]:
    with short_directory() as root:
        certs = make_certificates(root / "pki", ["host-a", "host-b"])
        with daemon_pair(certs, root) as (a, b):
            yield Cluster(a, b, certs.host(ADMIN), root)


@dataclass
class Followed:
    """A guest and the monitor of its heartbeat (one per guest: each has its own sequence),
    following it as source ``a`` on A and ``b`` on B."""

    guest: DaemonGuest
    monitor: HeartbeatMonitor


async def start_guests(
    cluster: Cluster, client: Client, stack: contextlib.AsyncExitStack, names: list[str]
) -> list[Followed]:
    followed = []
    for name in names:
        guest = DaemonGuest.build(cluster.root, name, IDLE_1G)
        monitor = await stack.enter_async_context(HeartbeatMonitor())
        await client.define(guest.xml())
        await client.start(guest.name, paused=True)
        await follow(monitor, guest, source="a")
        await client.resume(guest.name)
        followed.append(Followed(guest, monitor))
    for each in followed:
        await beats(each.monitor, "a", WARM_HEARTBEATS)
    return followed


async def migrate_timed(client: Client, cluster: Cluster, followed: Followed) -> float:
    """Migrate a guest from A to B; the wall time of the call in milliseconds, once its
    heartbeat has come from B (and only from B) for a while."""
    guest, monitor = followed.guest, followed.monitor
    on_b = guest.moved()
    follower = follow_soon(monitor, on_b, source="b")
    typed = {"bandwidth": BANDWIDTH_MIB_S, "destination_xml": on_b.xml()}
    began = time.perf_counter()
    info = await client.migrate(guest.name, cluster.b.tls_uri, flags=FLAGS, typed=typed)
    wall_ms = (time.perf_counter() - began) * 1000
    await follower
    assert info.job_type is JobType.COMPLETED, info
    assert_one_guest(await beats(monitor, "b", AFTER_HEARTBEATS), before="a", after="b")
    return wall_ms


async def clean_up(cluster: Cluster, followed: list[Followed]) -> None:
    async with await Client.connect(cluster.b.unix_uri) as on_b:
        for each in followed:
            await on_b.destroy(each.guest.name)
    async with await Client.connect(cluster.a.unix_uri) as on_a:
        for each in followed:
            await on_a.undefine(each.guest.name)


async def engine_runs(cluster: Cluster, names: list[str]) -> tuple[float, list[float]]:
    """Migrate the guests ``names`` from A to B at once: the total wall time in
    milliseconds, and each migration's."""
    async with (
        contextlib.AsyncExitStack() as stack,
        await Client.connect(cluster.a.tls_uri, tls_dir=cluster.admin) as client,
    ):
        followed = await start_guests(cluster, client, stack, names)
        began = time.perf_counter()
        each = await asyncio.gather(*(migrate_timed(client, cluster, f) for f in followed))
        total_ms = (time.perf_counter() - began) * 1000
        await clean_up(cluster, followed)
    return total_ms, list(each)


def row(label: str, values: list[float]) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"  {label:<46} {median:>9.1f} {low:>9.1f} {high:>9.1f}"


async def main(*, runs: int, warm_up: int, concurrent_runs: int) -> None:
    print(
        f"accelerator: {detect_accel().value}, firmware: {default_bios()}, "
        f"bandwidth limit: {BANDWIDTH_MIB_S} MiB/s, runs: {runs} (+{warm_up} warm-up), "
        f"concurrent runs: {concurrent_runs} of {CONCURRENT} guests"
    )
    engine: list[float] = []
    raw: list[float] = []
    raw_return_path: list[float] = []
    raw_start: list[float] = []
    totals: list[float] = []
    each: list[float] = []
    with daemons() as cluster:
        for number in range(warm_up + runs):
            async with asyncio.timeout(TIMEOUT_S):
                _, [wall_ms] = await engine_runs(cluster, [f"one{number}"])
                with tempfile.TemporaryDirectory(prefix="dmb") as directory:
                    plain = await raw_run(IDLE_1G, Path(directory), return_path=False)
                with tempfile.TemporaryDirectory(prefix="dmb") as directory:
                    returning = await raw_run(IDLE_1G, Path(directory), return_path=True)
            if number >= warm_up:
                engine.append(wall_ms)
                raw.append(plain.wall_ms)
                raw_return_path.append(returning.wall_ms)
                raw_start.append(plain.destination_start_ms)
        for number in range(warm_up + concurrent_runs):
            async with asyncio.timeout(TIMEOUT_S):
                names = [f"many{number}x{index}" for index in range(CONCURRENT)]
                total_ms, times = await engine_runs(cluster, names)
            if number >= warm_up:
                totals.append(total_ms)
                each.extend(times)

    print(f"\nidle 1 GiB guest, milliseconds: {'median':>9} {'min':>9} {'max':>9}")
    print(row("daemons, client.migrate end to end", engine))
    print(row("raw QMP migration", raw))
    print(row("raw QMP migration, return-path", raw_return_path))
    print(row("raw destination QEMU start", raw_start))
    bound = statistics.median(raw) + statistics.median(raw_start) + SLACK_MS
    end_to_end = statistics.median(engine)
    verdict = "met" if end_to_end <= bound else "MISSED"
    print(
        f"  target end-to-end <= raw QMP + destination start + {SLACK_MS:.0f}: "
        f"{end_to_end:.1f} <= {bound:.1f} {verdict}"
    )
    print(f"\n{CONCURRENT} idle 1 GiB guests at once, A to B, milliseconds:")
    print(row(f"total ({concurrent_runs} runs)", totals))
    print(row("each migration", each))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warm-up", type=int, default=1)
    parser.add_argument("--concurrent-runs", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(
        main(
            runs=arguments.runs,
            warm_up=arguments.warm_up,
            concurrent_runs=arguments.concurrent_runs,
        )
    )
