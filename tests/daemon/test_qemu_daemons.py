"""Two daemons as subprocesses on real QEMU, reached by clients over mutual TLS and unix
sockets, migrating the running test guest: peer-to-peer there and back, managed-direct,
offline, the persist/undefine combinations, a destination daemon killed mid-Perform, a source
daemon killed and restarted mid-Perform, and hostile frames during a migration.

After each test the guest runs on exactly one host (or none, once destroyed), which its
heartbeat confirms: every heartbeat from the destination comes after every one from the
source. Nothing is timed: the guard only stops a broken test from hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from migrator.client import Client, ClientError, DomainState, JobEvent, JobInfo, JobType
from migrator.testguest.heartbeat import HeartbeatMonitor
from params import MigrationFlag as F
from tests.integration.qemu_cluster import GuestShape
from transport import TLSClientConfig

from .guests import DaemonGuest, assert_one_guest, beats, follow, follow_soon
from .processes import (
    ADMIN,
    LOOPBACK,
    Certificates,
    DaemonProcess,
    daemon_pair,
    make_certificates,
    short_directory,
)

pytestmark = pytest.mark.qemu

GUARD_S = 60
P2P = F.LIVE | F.PEER2PEER
#: A guest that migrates in well under a second.
STEADY = GuestShape(memory_mib=128, working_set_mib=32, dirty_rate_mib_s=20)
#: A guest that never converges at SLOW bandwidth: every pass finds its working set dirty.
BUSY = GuestShape(memory_mib=128, working_set_mib=8, dirty_rate_mib_s=64)
SLOW = {"bandwidth": 8}
#: A bandwidth at which BUSY converges.
FAST_MIB_S = 1024


@dataclass
class Hosts:
    """Daemons ``a`` and ``b`` (each allowing the other and ``admin``), and the test's
    certificates."""

    a: DaemonProcess
    b: DaemonProcess
    certs: Certificates
    root: Path

    async def clients(self) -> tuple[Client, Client]:
        """A client of ``a`` over TLS (as ``admin``) and one of ``b`` over its unix socket."""
        return (
            await Client.connect(self.a.tls_uri, tls_dir=self.certs.host(ADMIN)),
            await Client.connect(self.b.unix_uri),
        )

    def guest(self, name: str, shape: GuestShape = STEADY) -> DaemonGuest:
        return DaemonGuest.build(self.root, name, shape)


@pytest.fixture(scope="module")
def certs() -> Iterator[Certificates]:
    with short_directory() as root:
        yield make_certificates(root, ["host-a", "host-b"])


@contextlib.contextmanager
def two_daemons(certs: Certificates) -> Iterator[Hosts]:
    with short_directory() as root, daemon_pair(certs, root) as (a, b):
        yield Hosts(a, b, certs, root)
        assert (a.stop(), b.stop()) == (0, 0), a.log_text() + b.log_text()


@pytest.fixture(scope="module")
def shared(certs: Certificates) -> Iterator[Hosts]:
    """One pair for the tests that leave both daemons as they found them."""
    with two_daemons(certs) as hosts:
        yield hosts


@pytest.fixture
def fresh(certs: Certificates) -> Iterator[Hosts]:
    """A pair of its own, for a test that kills a daemon."""
    with two_daemons(certs) as hosts:
        yield hosts


@pytest.fixture
async def monitor() -> AsyncIterator[HeartbeatMonitor]:
    async with HeartbeatMonitor() as watching:
        yield watching


async def running(client: Client) -> dict[str, DomainState]:
    return {summary.name: summary.state for summary in await client.list_domains()}


async def defined(client: Client) -> set[str]:
    return {summary.name for summary in await client.list_domains(include_inactive=True)}


async def start(client: Client, guest: DaemonGuest, monitor: HeartbeatMonitor) -> None:
    """Define and start ``guest`` and follow its heartbeat as source ``a`` from its first
    line (it starts paused until the monitor follows it)."""
    await client.define(guest.xml())
    await client.start(guest.name, paused=True)
    await follow(monitor, guest, source="a")
    await client.resume(guest.name)
    await beats(monitor, "a", 50)


async def migrating(client: Client) -> AsyncIterator[JobEvent]:
    """Job events of the client's daemon once pre-copy has moved data."""
    async for event in client.events():
        if (
            isinstance(event, JobEvent)
            and event.phase == "perform3"
            and (event.statistics.data_processed or 0) > 0
        ):
            yield event


async def until_migrating(client: Client, migration: asyncio.Task[JobInfo]) -> None:
    """Return once pre-copy has moved data; fail with the migration's outcome if it ends
    first."""

    async def first_progress() -> None:
        async for _ in migrating(client):
            return

    watcher = asyncio.create_task(first_progress())
    await asyncio.wait({watcher, migration}, return_when=asyncio.FIRST_COMPLETED)
    if not watcher.done():
        watcher.cancel()
        outcome = migration.exception() or migration.result()
        pytest.fail(f"the migration ended before it was seen copying: {outcome!r}")


# -- peer-to-peer and managed-direct -------------------------------------------------------------


async def test_peer_to_peer_there_and_back(shared: Hosts, monitor: HeartbeatMonitor) -> None:
    ca, cb = await shared.clients()
    async with ca, cb, asyncio.timeout(GUARD_S):
        guest = shared.guest("p2p")
        await start(ca, guest, monitor)
        flags = P2P | F.PERSIST_DEST | F.UNDEFINE_SOURCE

        on_b = guest.moved()
        follower = follow_soon(monitor, on_b, source="b")
        info = await ca.migrate(
            guest.name, shared.b.tls_uri, flags=flags, typed={"destination_xml": on_b.xml()}
        )
        await follower
        assert_one_guest(await beats(monitor, "b", 300), before="a", after="b")
        assert (info.job_type, info.operation) == (JobType.COMPLETED, "migration-out")
        assert (info.statistics.memory_total or 0) >= STEADY.memory_mib << 20
        assert info.statistics.downtime is not None
        assert await running(cb) == {"p2p": DomainState.RUNNING}
        assert await defined(ca) == set()
        assert "p2p" not in shared.a.qemu_pids()
        log = shared.a.log_text()
        assert "migrator.job phase begin3 -> perform3 domain=p2p job_id=" in log
        assert "side=source elapsed_ms=" in log

        back = on_b.moved()
        follower = follow_soon(monitor, back, source="a2")
        await cb.migrate(
            guest.name, shared.a.tls_uri, flags=flags, typed={"destination_xml": back.xml()}
        )
        await follower
        assert_one_guest(await beats(monitor, "a2", 300), before="b", after="a2")
        assert await running(ca) == {"p2p": DomainState.RUNNING}
        assert await defined(cb) == set()
        assert (await ca.dominfo("p2p")).persistent
        await ca.destroy("p2p")
        await ca.undefine("p2p")


async def test_managed_direct_migration(shared: Hosts, monitor: HeartbeatMonitor) -> None:
    async with (
        await Client.connect(shared.a.unix_uri) as ca,
        await Client.connect(shared.b.unix_uri) as cb,
        asyncio.timeout(GUARD_S),
    ):
        guest = shared.guest("direct")
        await start(ca, guest, monitor)
        on_b = guest.moved()
        follower = follow_soon(monitor, on_b, source="b")
        info = await ca.migrate(
            guest.name,
            shared.b.unix_uri,
            flags=F.LIVE,
            typed={"destination_xml": on_b.xml()},
            direct=True,
        )
        await follower
        assert_one_guest(await beats(monitor, "b", 300), before="a", after="b")
        assert info.job_type is JobType.COMPLETED
        [arrived] = await cb.list_domains()
        assert (arrived.name, arrived.state, arrived.persistent) == (
            "direct",
            DomainState.RUNNING,
            False,
        )
        assert await running(ca) == {}
        assert await defined(ca) == {"direct"}
        await cb.destroy("direct")
        await ca.undefine("direct")


@pytest.mark.parametrize(
    ("extra", "left_on_a", "persistent_on_b"),
    [
        (F(0), True, False),
        (F.PERSIST_DEST, True, True),
        (F.UNDEFINE_SOURCE, False, False),
        (F.PERSIST_DEST | F.UNDEFINE_SOURCE, False, True),
    ],
    ids=["plain", "persist", "undefine", "persist-undefine"],
)
async def test_persist_and_undefine_combinations(
    shared: Hosts, extra: F, left_on_a: bool, persistent_on_b: bool
) -> None:
    ca, cb = await shared.clients()
    async with ca, cb, asyncio.timeout(GUARD_S):
        guest = shared.guest("combo")
        await ca.define(guest.xml())
        await ca.start(guest.name)
        await ca.migrate(
            guest.name,
            shared.b.tls_uri,
            flags=P2P | extra,
            typed={"destination_xml": guest.moved().xml()},
        )
        assert (await cb.dominfo("combo")).persistent is persistent_on_b
        assert ("combo" in await defined(ca)) is left_on_a
        await cb.destroy("combo")
        assert ("combo" in await defined(cb)) is persistent_on_b
        for client in (ca, cb):
            if "combo" in await defined(client):
                await client.undefine("combo")


async def test_offline_migration_moves_the_definition(shared: Hosts) -> None:
    ca, cb = await shared.clients()
    async with ca, cb, asyncio.timeout(GUARD_S):
        guest = shared.guest("offline")
        await ca.define(guest.xml())
        flags = F.OFFLINE | F.PERSIST_DEST | F.PEER2PEER
        info = await ca.migrate(guest.name, shared.b.tls_uri, flags=flags)
        assert info.job_type is JobType.COMPLETED
        assert (await defined(ca), await defined(cb)) == ({"offline"}, {"offline"})
        assert await running(cb) == {}
        await ca.undefine("offline")
        await cb.undefine("offline")


async def test_a_stopped_daemon_leaves_its_guest_running(
    shared: Hosts, monitor: HeartbeatMonitor
) -> None:
    async with asyncio.timeout(GUARD_S):
        async with await Client.connect(shared.a.unix_uri) as client:
            await start(client, shared.guest("kept"), monitor)
        qemu = shared.a.qemu_pids()["kept"]
        assert shared.a.stop() == 0
        await beats(monitor, "a", 300)  # SIGTERM left the guest running
        shared.a.start()
        async with await Client.connect(shared.a.unix_uri) as client:
            assert await running(client) == {"kept": DomainState.RUNNING}
            assert shared.a.qemu_pids() == {"kept": qemu}
            await client.suspend("kept")
            assert await running(client) == {"kept": DomainState.PAUSED}
            await client.destroy("kept")
            await client.undefine("kept")
        assert shared.a.qemu_pids() == {}


# -- daemons that die --------------------------------------------------------------------------


async def stuck_migration(
    hosts: Hosts, client: Client, monitor: HeartbeatMonitor
) -> asyncio.Task[JobInfo]:
    """Start guest ``vm`` on ``a`` and a migration of it to ``b`` that never converges;
    return once pre-copy has moved data."""
    guest = hosts.guest("vm", BUSY)
    await start(client, guest, monitor)
    await client.subscribe()
    migration = asyncio.create_task(
        client.migrate(
            guest.name,
            hosts.b.tls_uri,
            flags=P2P,
            typed={**SLOW, "destination_xml": guest.moved().xml()},
        )
    )
    await until_migrating(client, migration)
    return migration


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll ``condition()`` until it holds (bound the wait with a timeout)."""
    while True:
        if condition():
            return
        await asyncio.sleep(0.02)


async def test_destination_daemon_killed_mid_perform(
    fresh: Hosts, monitor: HeartbeatMonitor
) -> None:
    ca, cb = await fresh.clients()
    async with ca, asyncio.timeout(GUARD_S):
        await cb.close()
        migration = await stuck_migration(fresh, ca, monitor)
        fresh.b.kill()
        with pytest.raises(ClientError) as failed:
            await migration
        assert failed.value.code == "migration-failed"
        assert "connection to the destination daemon was lost" in failed.value.message

        await beats(monitor, "a", 300)
        assert await running(ca) == {"vm": DomainState.RUNNING}
        assert (await ca.domjobinfo("vm")).job_type is JobType.NONE
        completed = await ca.domjobinfo("vm", completed=True)
        assert completed.job_type is JobType.FAILED
        assert "lost" in (completed.error or "")

        fresh.b.start()  # resolves its half-done incoming job: nothing of the guest stays
        async with await Client.connect(fresh.b.unix_uri) as again:
            assert await defined(again) == set()
        await eventually(lambda: not fresh.b.qemu_pids())
        report = await beats(monitor, "a", 300)
        assert report.anomaly_count == 0, report.anomalies
        await ca.destroy("vm")


async def test_source_daemon_killed_and_restarted_mid_perform(
    fresh: Hosts, monitor: HeartbeatMonitor
) -> None:
    ca, cb = await fresh.clients()
    async with cb, asyncio.timeout(GUARD_S):
        migration = await stuck_migration(fresh, ca, monitor)
        [qemu] = fresh.a.qemu_pids().values()
        fresh.a.kill()
        with pytest.raises(ClientError) as lost:
            await migration
        assert lost.value.code == "unreachable"
        await ca.close()
        # The destination saw its controller go and ended its incoming guest.
        await eventually(lambda: not fresh.b.qemu_pids())
        assert await defined(cb) == set()

        fresh.a.start()
        async with await Client.connect(fresh.a.unix_uri) as again:
            assert await running(again) == {"vm": DomainState.RUNNING}
            assert (await again.dominfo("vm")).job is None
            assert fresh.a.qemu_pids() == {"vm": qemu}
            report = await beats(monitor, "a", 300)
            assert report.anomaly_count == 0, report.anomalies
            assert "resolved source job of vm in phase perform3" in fresh.a.log_text()
            await again.destroy("vm")


# -- hostile peers -------------------------------------------------------------------------------

#: A byte msgpack reserves, so that no frame can begin with it.
RESERVED = b"\xc1" * 8
#: The header of a 64 MiB binary, and 2 MiB of its body.
OVERSIZE = b"\xc6\x04\x00\x00\x00" + b"x" * (2 << 20)
HELLO = msgpack.packb([0, 0, "transport.hello", {"version": 1}])


async def closed_by_daemon(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read until the daemon closes the connection; any answer before that is ignored."""
    try:
        while await reader.read(65536):
            pass
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def attack(opener: object, payload: bytes) -> None:
    reader, writer = await opener()  # type: ignore[operator]
    writer.write(payload)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    await closed_by_daemon(reader, writer)


async def test_garbage_and_oversize_frames_during_a_migration(
    shared: Hosts, monitor: HeartbeatMonitor
) -> None:
    ca, cb = await shared.clients()
    async with ca, cb, asyncio.timeout(GUARD_S):
        guest = shared.guest("hostile", BUSY)
        await start(ca, guest, monitor)
        await ca.subscribe()
        on_b = guest.moved()
        follower = follow_soon(monitor, on_b, source="b")
        migration = asyncio.create_task(
            ca.migrate(
                guest.name,
                shared.b.tls_uri,
                flags=P2P,
                typed={**SLOW, "destination_xml": on_b.xml()},
            )
        )
        await until_migrating(ca, migration)

        tls = TLSClientConfig.from_dir(shared.certs.host(ADMIN)).context()
        _, port = shared.b.tls_uri.rsplit(":", 1)
        openers = [
            lambda: asyncio.open_unix_connection(
                shared.a.unix_uri.removeprefix("migrator+unix://")
            ),
            lambda: asyncio.open_unix_connection(
                shared.b.unix_uri.removeprefix("migrator+unix://")
            ),
            lambda: asyncio.open_connection(LOOPBACK, int(port), ssl=tls, server_hostname=LOOPBACK),
        ]
        for opener in openers:
            for payload in (RESERVED, OVERSIZE, HELLO + RESERVED, HELLO + OVERSIZE):
                await attack(opener, payload)

        # Only now may the copy outrun the guest's writes and finish.
        await ca.migrate_setspeed(guest.name, FAST_MIB_S)
        info = await migration
        await follower
        assert info.job_type is JobType.COMPLETED
        assert_one_guest(await beats(monitor, "b", 300), before="a", after="b")
        assert (await cb.host_info()).name == "host-b"
        await cb.destroy("hostile")
        await ca.undefine("hostile")
