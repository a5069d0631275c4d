"""Migrations with TLS between two daemons (subprocesses) on real QEMU: the stream is
encrypted with the hosts' own certificates, the guest arrives, and no TLS object stays in
either QEMU; a destination whose certificate does not name the host the source expects
fails the migration with QEMU's TLS error, and the guest runs on at the source.

What QEMU holds is asked of QEMU itself, on its QMP socket, while its daemon is stopped
(QEMU runs on; the daemon finds it again when it starts). Nothing is timed: the guard only
stops a broken test from hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest
from qemu.qmp import QMPClient

from migrator.client import Client, ClientError, DomainState
from migrator.client import phasewire as wire
from migrator.client.remote import RemoteDestination, RemoteSource
from migrator.client.session import open_session
from migrator.client.uri import parse_uri
from migrator.drivers.base import TLS_CREDENTIALS_ID
from migrator.drivers.qemu.rundir import RunPaths
from migrator.drivers.uri import tcp_address
from migrator.runtime.destination import PrepareResult
from migrator.runtime.protocol import run_migration
from migrator.testguest.heartbeat import HeartbeatMonitor
from params import MigrationFlag as F

from .guests import assert_one_guest, beats, follow_soon
from .processes import (
    ADMIN,
    LOOPBACK,
    Certificates,
    DaemonProcess,
    daemon_pair,
    make_certificates,
    short_directory,
)
from .test_qemu_daemons import GUARD_S, STEADY, Hosts, eventually, running, start

pytestmark = pytest.mark.qemu

TLS = F.LIVE | F.TLS
#: The first bytes of a TLS record that opens a handshake: content type 22, version 3.x.
TLS_HANDSHAKE = b"\x16\x03"
#: The first bytes of a plain QEMU migration stream.
QEMU_MAGIC = b"QEVM"


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    """Daemons ``a`` and ``b`` whose certificate directories (one CA, each naming
    127.0.0.1) serve their listeners and their QEMUs alike."""
    with short_directory() as root:
        certs: Certificates = make_certificates(root / "certs", ["host-a", "host-b"])
        with daemon_pair(certs, root) as (a, b):
            yield Hosts(a, b, certs, root)
            assert (a.stop(), b.stop()) == (0, 0), a.log_text() + b.log_text()


@pytest.fixture
async def monitor() -> AsyncIterator[HeartbeatMonitor]:
    async with HeartbeatMonitor() as watching:
        yield watching


@dataclasses.dataclass(frozen=True)
class Inside:
    """What one QEMU holds: its objects (``qom-list /objects``) and migration parameters."""

    objects: frozenset[str]
    parameters: dict[str, object]


async def look_inside(daemon: DaemonProcess, name: str) -> Inside:
    """Stop ``daemon`` (its QEMU runs on), ask the QEMU of ``name`` on its QMP socket, and
    start the daemon again."""
    assert await asyncio.to_thread(daemon.stop) == 0, daemon.log_text()
    qmp = QMPClient("look-inside")
    await qmp.connect(str(RunPaths.of(daemon.run_dir, name).monitor))
    try:
        children = await qmp.execute("qom-list", {"path": "/objects"})
        parameters = await qmp.execute("query-migrate-parameters")
    finally:
        with contextlib.suppress(EOFError):
            await qmp.disconnect()
    await asyncio.to_thread(daemon.start)
    assert isinstance(children, list) and isinstance(parameters, dict)
    return Inside(frozenset(str(child["name"]) for child in children), parameters)


def assert_no_tls_left(inside: Inside) -> None:
    assert TLS_CREDENTIALS_ID not in inside.objects
    assert (inside.parameters["tls-creds"], inside.parameters["tls-hostname"]) == ("", "")


async def test_peer_to_peer_migration_with_tls(hosts: Hosts, monitor: HeartbeatMonitor) -> None:
    ca, cb = await hosts.clients()
    async with ca, cb, asyncio.timeout(GUARD_S):
        guest = hosts.guest("sealed", STEADY)
        await start(ca, guest, monitor)
        on_b = guest.moved()
        follower = follow_soon(monitor, on_b, source="b")
        await ca.migrate(
            guest.name,
            hosts.b.tls_uri,
            flags=TLS | F.PEER2PEER,
            typed={"destination_xml": on_b.xml()},
        )
        await follower
        assert_one_guest(await beats(monitor, "b", 300), before="a", after="b")
        assert await running(cb) == {"sealed": DomainState.RUNNING}
        assert "sealed" not in hosts.a.qemu_pids()
    assert_no_tls_left(await look_inside(hosts.b, "sealed"))
    async with await Client.connect(hosts.b.unix_uri) as again:
        assert await running(again) == {"sealed": DomainState.RUNNING}
        await beats(monitor, "b", 50)
        await again.destroy("sealed")
    async with await Client.connect(hosts.a.unix_uri) as home:
        await home.undefine("sealed")


class Relay:
    """A TCP relay on the loopback interface that keeps the first bytes the source sent."""

    KEEP = 64

    def __init__(self) -> None:
        self.first: bytes = b""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Relay to ``host``:``port``; the port to connect to instead."""

        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(host, port)
            copies = (self._copy(reader, up_writer, keep=True), self._copy(up_reader, writer))
            await asyncio.gather(*copies)

        self._server = await asyncio.start_server(accept, LOOPBACK, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _copy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, keep: bool = False
    ) -> None:
        try:
            while data := await reader.read(1 << 16):
                if keep and len(self.first) < self.KEEP:
                    self.first = (self.first + data)[: self.KEEP]
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclasses.dataclass
class ThroughRelay:
    """The destination daemon, its incoming stream reached through ``relay``."""

    inner: RemoteDestination
    relay: Relay

    async def prepare(
        self, *, cookie: bytes, xml: str, flags: F, typed: dict[str, object]
    ) -> PrepareResult:
        prepared = await self.inner.prepare(cookie=cookie, xml=xml, flags=flags, typed=typed)
        address = tcp_address(prepared.uri)
        assert address is not None, prepared.uri
        port = await self.relay.start(*address)
        return dataclasses.replace(prepared, uri=f"tcp:{LOOPBACK}:{port}")

    async def finish(self, name: str, *, cookie: bytes | None, cancelled: bool) -> bytes:
        return await self.inner.finish(name, cookie=cookie, cancelled=cancelled)


async def test_the_stream_on_the_wire_is_tls(hosts: Hosts, monitor: HeartbeatMonitor) -> None:
    """A managed-direct migration whose stream passes a relay: it starts with a TLS
    handshake, where a plain stream starts with QEMU's magic."""
    admin = hosts.certs.host(ADMIN)
    relay = Relay()
    async with (
        await Client.connect(hosts.a.tls_uri, tls_dir=admin) as ca,
        asyncio.timeout(GUARD_S),
    ):
        guest = hosts.guest("wire", STEADY)
        await start(ca, guest, monitor)
        await ca._call("host.trust", peer=hosts.b.tls_uri)
        on_b = guest.moved()
        typed: dict[str, object] = {"destination_xml": on_b.xml()}
        source = await open_session(parse_uri(hosts.a.tls_uri), tls_dir=admin)
        destination = await open_session(parse_uri(hosts.b.tls_uri), tls_dir=admin)
        follower = follow_soon(monitor, on_b, source="b")
        try:
            await run_migration(
                RemoteSource(source),
                ThroughRelay(RemoteDestination(destination), relay),
                guest.name,
                flags=TLS,
                typed=typed,
                destination_typed=wire.destination_typed(TLS, typed),
            )
        finally:
            await source.close()
            await destination.close()
            await relay.close()
        await follower
        assert_one_guest(await beats(monitor, "b", 300), before="a", after="b")
        assert relay.first.startswith(TLS_HANDSHAKE), relay.first
        assert QEMU_MAGIC not in relay.first
    async with await Client.connect(hosts.b.unix_uri) as cb:
        await cb.destroy("wire")
    async with await Client.connect(hosts.a.unix_uri) as again:
        await again.undefine("wire")


async def test_a_certificate_that_does_not_name_the_destination_fails_the_migration(
    hosts: Hosts, monitor: HeartbeatMonitor
) -> None:
    ca, cb = await hosts.clients()
    async with ca, cb, asyncio.timeout(GUARD_S):
        guest = hosts.guest("misnamed", STEADY)
        await start(ca, guest, monitor)
        with pytest.raises(ClientError) as failed:
            await ca.migrate(
                guest.name,
                hosts.b.tls_uri,
                flags=TLS | F.PEER2PEER,
                typed={"destination_xml": guest.moved().xml(), "tls.destination": "host-x"},
            )
        assert failed.value.code == "migration-failed"
        assert "Certificate does not match the hostname host-x" in failed.value.message
        report = await beats(monitor, "a", 100)
        assert report.anomaly_count == 0, report.anomalies
        assert await running(ca) == {"misnamed": DomainState.RUNNING}
        assert await running(cb) == {}
        await eventually(lambda: "misnamed" not in hosts.b.qemu_pids())
    assert_no_tls_left(await look_inside(hosts.a, "misnamed"))
    async with await Client.connect(hosts.a.unix_uri) as again:
        assert await running(again) == {"misnamed": DomainState.RUNNING}
        await beats(monitor, "a", 50)
        await again.destroy("misnamed")
        await again.undefine("misnamed")
