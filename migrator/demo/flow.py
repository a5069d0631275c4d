"""The demo, start to end: two hosts, a guest on the first, a live peer-to-peer migration
to the second and back, a summary; then everything it started is stopped, whatever
happened (a failure, Ctrl-C).

The hosts are ``migrator daemon`` subprocesses with real QEMU, or, where QEMU is missing,
two in-process daemons on one simulated world (:mod:`migrator.demo.hosts`). The demo
talks to them as any client does: over mutual TLS with its own certificate.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from migrator.cli.migrate_cmd import migrate
from migrator.cli.migrate_options import MigrationRequest
from migrator.cli.migrate_policy import MigrationPolicy
from migrator.client import ClientError
from migrator.client.types import DomainState
from migrator.demo.certificates import create_certificates
from migrator.demo.errors import DemoError
from migrator.demo.guest import (
    GuestShape,
    definition_xml,
    free_serial_port,
    guest_definition,
    with_serial_port,
    write_kernel,
)
from migrator.demo.heartbeats import GuestHeartbeat
from migrator.demo.hosts import HOST_NAMES, DemoHost, start_qemu_hosts, start_simulated_hosts
from migrator.demo.summary import MigrationSummary
from migrator.domain import parse_domain
from migrator.testguest.heartbeat import HeartbeatMonitor
from params import MigrationFlag

GUEST_NAME = "demo-vm"
LIVE_P2P = MigrationFlag.LIVE | MigrationFlag.PEER2PEER
#: Guard only: how long the guest may take to show a heartbeat after a start or migration.
HEARTBEAT_GUARD_S = 30
#: Heartbeats (one a millisecond) to see before the guest counts as running.
SETTLED_HEARTBEATS = 200


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs: the guest, the bandwidth it migrates at, and the hosts' driver."""

    shape: GuestShape = field(default_factory=GuestShape)
    #: Migration bandwidth limit in MiB/s (typed parameter ``bandwidth``); None: QEMU's.
    bandwidth_mib_s: int | None = 32
    simulated: bool = False


async def run_demo(options: DemoOptions, *, console: Console) -> list[MigrationSummary]:
    """Run the demo; return one summary per migration.

    Raises:
        DemoError: a step failed (named in the error).
        ClientError: a daemon refused a call or failed a migration.
    """
    async with contextlib.AsyncExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="migrator-demo-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        certificates = create_certificates(workdir / "pki", hosts=HOST_NAMES)
        if options.simulated:
            hosts = await start_simulated_hosts(
                stack, workdir, certificates=certificates, guest=GUEST_NAME, shape=options.shape
            )
        else:
            hosts = await start_qemu_hosts(stack, workdir, certificates=certificates)
        for host in hosts:
            console.print(f"{host.name}: daemon listening at {host.uri}")
        heartbeat = None
        if not options.simulated:
            heartbeat = GuestHeartbeat(HeartbeatMonitor())
            stack.push_async_callback(heartbeat.monitor.close)
        stack.push_async_callback(_destroy_guest, hosts)
        await _start_guest(hosts[0], options, workdir=workdir, heartbeat=heartbeat, console=console)
        summaries = []
        for number, (source, destination) in enumerate(
            [(hosts[0], hosts[1]), (hosts[1], hosts[0])], start=1
        ):
            summaries.append(
                await _migrate(
                    source,
                    destination,
                    options,
                    heartbeat=heartbeat,
                    number=number,
                    console=console,
                )
            )
        return summaries


async def _start_guest(
    host: DemoHost,
    options: DemoOptions,
    *,
    workdir: Path,
    heartbeat: GuestHeartbeat | None,
    console: Console,
) -> None:
    kernel = None
    if heartbeat is not None:
        kernel = write_kernel(workdir / f"{GUEST_NAME}.kernel", options.shape)
    port = free_serial_port()
    domain = guest_definition(
        GUEST_NAME, kernel=kernel, memory_mib=options.shape.memory_mib, serial_port=port
    )
    await host.client.define(definition_xml(domain))
    await host.client.start(GUEST_NAME)
    shape = options.shape
    console.print(
        f"guest {GUEST_NAME} started on {host.name}: {shape.memory_mib} MiB of RAM, "
        f"rewriting {shape.working_set_mib} MiB at {shape.dirty_rate_mib_s} MiB/s"
        + ("" if heartbeat is not None else " (simulated)")
    )
    if heartbeat is None:
        return
    try:
        async with asyncio.timeout(HEARTBEAT_GUARD_S):
            await heartbeat.follow(port, name=host.name)
            await heartbeat.beating(host.name, heartbeats=warm_up_heartbeats(shape))
    except TimeoutError:
        raise DemoError(
            "no heartbeat from the guest", step=f"start the guest on {host.name}"
        ) from None
    console.print("the guest has rewritten its working set once: it is warm")


def warm_up_heartbeats(shape: GuestShape) -> int:
    """How many heartbeats (one per millisecond of the guest's time) the guest writes while
    it rewrites its working set once, so that both migrations find it as busy."""
    if shape.dirty_rate_mib_s == 0:
        return SETTLED_HEARTBEATS
    return max(SETTLED_HEARTBEATS, -(-shape.working_set_mib * 1000 // shape.dirty_rate_mib_s))


async def _migrate(
    source: DemoHost,
    destination: DemoHost,
    options: DemoOptions,
    *,
    heartbeat: GuestHeartbeat | None,
    number: int,
    console: Console,
) -> MigrationSummary:
    console.print(
        f"\n[bold]migration {number}[/]: {GUEST_NAME} {source.name} -> {destination.name}, "
        "live, peer to peer over mutual TLS"
    )
    port = free_serial_port()
    live = parse_domain(await source.client.dumpxml(GUEST_NAME, migratable=True))
    typed: dict[str, object] = {"destination_xml": definition_xml(with_serial_port(live, port))}
    if options.bandwidth_mib_s is not None:
        typed["bandwidth"] = options.bandwidth_mib_s
    request = MigrationRequest(flags=LIVE_P2P, typed=typed, direct=False, policy=MigrationPolicy())
    serial_name = f"{destination.name}.{number}"
    follow = None
    if heartbeat is not None:
        follow = asyncio.create_task(heartbeat.follow(port, name=serial_name))
    began = time.perf_counter()
    try:
        job = await migrate(source.client, GUEST_NAME, destination.uri, request, verbose=True)
    except BaseException:
        if follow is not None:
            follow.cancel()
        raise
    wall_ms = (time.perf_counter() - began) * 1000
    gap_ms = None
    if heartbeat is not None and follow is not None:
        try:
            async with asyncio.timeout(HEARTBEAT_GUARD_S):
                await follow
                await heartbeat.beating(serial_name)
        except TimeoutError:
            raise DemoError(
                "no heartbeat from the guest after the migration",
                step=f"migrate to {destination.name}",
            ) from None
        gap_ms = heartbeat.switchover_gap_ms(serial_name)
    return MigrationSummary.of(
        job,
        source=source.name,
        destination=destination.name,
        wall_ms=wall_ms,
        heartbeat_gap_ms=gap_ms,
    )


async def _destroy_guest(hosts: Sequence[DemoHost]) -> None:
    """Destroy the guest wherever it runs; what cannot be reached is left to the caller's
    report (the daemons stop next)."""
    for host in hosts:
        with contextlib.suppress(ClientError):
            info = await host.client.dominfo(GUEST_NAME)
            if info.state is not DomainState.SHUTOFF:
                await host.client.destroy(GUEST_NAME)
