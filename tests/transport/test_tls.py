"""Mutual TLS on loopback: who gets in, who is refused, and that refusals are visible."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from transport import (
    AuthenticationError,
    ConfigError,
    Server,
    TLSClientConfig,
    TLSServerConfig,
    connect_tls,
    connect_unix,
)

from .conftest import ALLOWED_CLIENTS, FAST, HELLO, LogWatch, Methods, Pki, closed_except


async def test_a_good_certificate_is_accepted_with_both_identities_checked(
    tls_server: tuple[Server, int], certs: Pki
) -> None:
    server, port = tls_server
    tls = TLSClientConfig.from_dir(certs.client)
    async with await connect_tls(
        "127.0.0.1", port, tls=tls, expected_server_name="host-a", limits=FAST
    ) as connection:
        assert connection.peer_name == "host-a"
        assert await connection.call("whoami") == "host-b"
        assert await connection.call("echo", [1, "two"]) == [1, "two"]
        assert [c.peer_name for c in server.connections] == ["host-b"]


async def test_the_server_may_be_named_by_its_ip_address(
    tls_server: tuple[Server, int], certs: Pki
) -> None:
    _, port = tls_server
    tls = TLSClientConfig.from_dir(certs.client)
    async with await connect_tls("127.0.0.1", port, tls=tls, limits=FAST) as connection:
        assert connection.peer_name == "127.0.0.1"
        assert await connection.call("echo", "by ip") == "by ip"


@dataclass(frozen=True)
class Refusal:
    """A client the TLS server must not let in: what the client sees, what the server logs."""

    client: str  # attribute of Pki: the client's host directory
    server_name: str  # the name the client expects the server to have
    client_sees: str
    server_logs: str


REFUSALS = {
    "another CA": Refusal("rogue", "host-a", "refused this host", "unable to get local issuer"),
    "expired": Refusal("expired", "host-a", "refused this host", "certificate has expired"),
    "not allowed": Refusal("not_allowed", "host-a", "host-z is not on the allow", "host-z is not"),
    "wrong server name": Refusal("client", "host-c", "Hostname mismatch", "handshake failed"),
}


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
async def test_refused_clients_see_an_authentication_error(
    tls_server: tuple[Server, int], certs: Pki, transport_log: LogWatch, refusal: Refusal
) -> None:
    server, port = tls_server
    good = await connect_tls(
        "127.0.0.1", port, tls=TLSClientConfig.from_dir(certs.client), limits=FAST
    )
    (good_on_server,) = server.connections
    tls = TLSClientConfig.from_dir(getattr(certs, refusal.client))
    with pytest.raises(AuthenticationError, match=refusal.client_sees):
        await connect_tls(
            "127.0.0.1", port, tls=tls, expected_server_name=refusal.server_name, limits=FAST
        )
    await transport_log.wait_for(refusal.server_logs)
    await closed_except(server, good_on_server)
    assert server.connections == (good_on_server,)
    assert await good.call("echo", "unaffected") == "unaffected"
    await good.close()


async def test_a_client_without_a_certificate_is_cut_off_with_a_logged_reason(
    tls_server: tuple[Server, int], certs: Pki, transport_log: LogWatch
) -> None:
    _, port = tls_server
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=certs.server / "ca-cert.pem")
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="host-a"
    )
    writer.write(HELLO)
    try:
        assert await reader.read(100) == b""  # no answer to the hello: cut off
    except ssl.SSLError as alert:  # or the server's alert arrives first
        assert "certificate" in str(alert)
    writer.close()
    await transport_log.wait_for("peer did not return a certificate")


async def test_an_expired_server_certificate_is_refused(methods: Methods, certs: Pki) -> None:
    tls = TLSServerConfig.from_dir(certs.expired_server, allowed_clients=ALLOWED_CLIENTS)
    async with Server(methods.table(), limits=FAST) as server:
        _, port = await server.listen_tls("127.0.0.1", 0, tls=tls)
        with pytest.raises(AuthenticationError, match="certificate has expired"):
            await connect_tls(
                "127.0.0.1", port, tls=TLSClientConfig.from_dir(certs.client), limits=FAST
            )


async def test_missing_certificate_files_are_a_config_error(
    methods: Methods, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="CA certificate"):
        await Server(methods.table()).listen_tls(
            "127.0.0.1", 0, tls=TLSServerConfig.from_dir(tmp_path, allowed_clients={"x"})
        )
    with pytest.raises(ConfigError, match="CA certificate"):
        await connect_tls("127.0.0.1", 1, tls=TLSClientConfig.from_dir(tmp_path))


def test_a_server_needs_an_allow_list(certs: Pki) -> None:
    with pytest.raises(ConfigError, match="allowed client"):
        TLSServerConfig.from_dir(certs.server, allowed_clients=[])


async def test_one_server_listens_on_unix_and_tls_at_once(
    methods: Methods, certs: Pki, socket_path: Path
) -> None:
    tls = TLSServerConfig.from_dir(certs.server, allowed_clients=ALLOWED_CLIENTS)
    async with Server(methods.table(), limits=FAST) as server:
        await server.listen_unix(socket_path)
        _, port = await server.listen_tls("127.0.0.1", 0, tls=tls)
        client_tls = TLSClientConfig.from_dir(certs.client)
        async with (
            await connect_unix(socket_path, limits=FAST) as local,
            await connect_tls("127.0.0.1", port, tls=client_tls, limits=FAST) as remote,
        ):
            assert await local.call("whoami") is None
            assert await remote.call("whoami") == "host-b"
            assert sorted(str(c.peer_name) for c in server.connections) == ["None", "host-b"]
