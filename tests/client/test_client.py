"""The clients against a daemon process: mutual TLS (and the certificates it refuses), a
daemon that cannot be reached or goes away, and the blocking client."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest

from migrator.client import (
    Client,
    ClientError,
    DomainState,
    LifecycleEvent,
    LifecycleKind,
    SyncClient,
)
from migrator.domain import format_domain
from tests.daemon.processes import (
    ADMIN,
    LOOPBACK,
    Certificates,
    DaemonProcess,
    make_certificates,
    short_directory,
)
from tests.runtime.cluster import make_domain
from transport import certdir

GUARD_S = 30
HELLO = msgpack.packb([0, 0, "transport.hello", {"version": 1}])


@dataclass(frozen=True)
class Served:
    daemon: DaemonProcess
    certs: Certificates
    root: Path


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """A sim daemon with a TLS listener that lets ``admin`` in."""
    with short_directory() as root:
        certs = make_certificates(root / "pki", ["host-a"])
        certdir.issue(root / "pki", name="stranger", ips=[LOOPBACK])
        daemon = DaemonProcess(
            "host-a", root / "a", driver="sim", tls_dir=certs.host("host-a"), allow=[ADMIN]
        )
        daemon.start()
        try:
            yield Served(daemon, certs, root)
        finally:
            daemon.kill()


async def test_a_client_with_a_certificate_on_the_allow_list_gets_in(served: Served) -> None:
    uri = served.daemon.tls_uri
    async with await Client.connect(uri, tls_dir=served.certs.host(ADMIN)) as client:
        info = await client.host_info()
        assert (info.name, info.uri) == ("host-a", uri)
        assert client.uri == uri


@pytest.mark.parametrize(
    ("directory", "words"),
    [
        ("rogue", "most likely refused this host's certificate"),
        ("stranger", "client certificate for stranger is not on the allow-list"),
    ],
)
async def test_certificates_the_daemon_refuses(served: Served, directory: str, words: str) -> None:
    uri = served.daemon.tls_uri
    with pytest.raises(ClientError) as refused:
        await Client.connect(uri, tls_dir=served.certs.root / directory)
    assert refused.value.code == "unreachable"
    assert f"cannot connect to {uri}" in refused.value.message
    assert words in refused.value.message


async def test_a_client_without_a_certificate_is_cut_off(served: Served) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=served.certs.root / "ca-cert.pem")
    port = int(served.daemon.tls_uri.rsplit(":", 1)[1])
    async with asyncio.timeout(GUARD_S):
        try:
            reader, writer = await asyncio.open_connection(
                LOOPBACK, port, ssl=context, server_hostname=LOOPBACK
            )
            writer.write(HELLO)
            answer = await reader.read()
        except (ConnectionError, ssl.SSLError):
            answer = b""
    assert answer == b""
    with pytest.raises(ClientError) as unreadable:
        await Client.connect(served.daemon.tls_uri, tls_dir=served.root / "empty")
    assert unreadable.value.code == "invalid-argument"
    assert served.daemon.tls_uri in unreadable.value.message


async def test_a_tls_uri_needs_a_certificate_directory(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIGRATOR_TLS_DIR", raising=False)
    with pytest.raises(ClientError, match="needs a certificate directory") as refused:
        await Client.connect(served.daemon.tls_uri)
    assert refused.value.code == "invalid-argument"


async def test_an_unreachable_daemon_is_named_with_the_reason(served: Served) -> None:
    missing = f"migrator+unix://{served.root}/nobody.sock"
    with pytest.raises(ClientError) as refused:
        await Client.connect(missing)
    assert refused.value.code == "unreachable"
    assert refused.value.message == f"cannot connect to {missing}: No such file or directory"
    closed = "migrator+tls://127.0.0.1:1"
    with pytest.raises(ClientError) as refused:
        await Client.connect(closed, tls_dir=served.certs.host(ADMIN))
    assert refused.value.message == f"cannot connect to {closed}: Connection refused"


def test_the_blocking_client(served: Served) -> None:
    with SyncClient.connect(served.daemon.unix_uri) as client:
        client.subscribe()
        client.define(format_domain(make_domain("sync")))
        client.start("sync", paused=True)
        assert [(d.name, d.state) for d in client.list_domains()] == [("sync", DomainState.PAUSED)]
        events = client.events()
        seen = [next(events) for _ in range(3)]
        assert [(e.domain, e.event) for e in seen if isinstance(e, LifecycleEvent)] == [
            ("sync", LifecycleKind.DEFINED),
            ("sync", LifecycleKind.STARTED),
            ("sync", LifecycleKind.SUSPENDED),
        ]
        events.close()
        client.destroy("sync")
        client.undefine("sync")
        with pytest.raises(ClientError) as refused:
            client.dominfo("sync")
        assert refused.value.code == "no-domain"


async def test_events_fail_when_the_daemon_goes_away() -> None:
    with short_directory() as root:
        daemon = DaemonProcess("host-a", root / "a", driver="sim").start()
        try:
            async with await Client.connect(daemon.unix_uri) as client, asyncio.timeout(GUARD_S):
                await client.subscribe()
                daemon.kill()
                with pytest.raises(ClientError) as lost:
                    async for _ in client.events():
                        pass
                assert lost.value.code == "unreachable"
                with pytest.raises(ClientError) as again:
                    await client.host_info()
                assert again.value.code == "unreachable"
        finally:
            daemon.kill()
