"""The migration stream's connection the source host opens for QEMU."""

from __future__ import annotations

import socket

import pytest

from migrator.drivers.base import DriverError
from migrator.drivers.qemu.streamsocket import connect_stream
from migrator.drivers.uri import tcp_address


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("tcp:127.0.0.1:4444", ("127.0.0.1", 4444)),
        ("tcp:host-b.example:49152", ("host-b.example", 49152)),
        ("tcp:[::1]:4444", ("::1", 4444)),
        ("tcp:127.0.0.1:0", None),
        ("tcp:127.0.0.1:65536", None),
        ("tcp:127.0.0.1", None),
        ("tcp::4444", None),
        ("tcp:127.0.0.1:port", None),
        ("unix:/run/migration.sock", None),
        ("fd:migrate-out", None),
    ],
)
def test_tcp_address(uri: str, address: tuple[str, int] | None) -> None:
    assert tcp_address(uri) == address


async def test_the_connection_is_blocking_and_sends_small_writes_at_once() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
        with await connect_stream(host, port, instance="vm") as connection:
            assert connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert connection.gettimeout() is None
            accepted, _ = server.accept()
            with accepted:
                connection.sendall(b"x")
                assert accepted.recv(1) == b"x"


async def test_a_refused_connection_names_the_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        host, port = server.getsockname()
    with pytest.raises(DriverError, match=f"migration port 127.0.0.1:{port}: ") as refused:
        await connect_stream(host, port, instance="vm")
    assert refused.value.instance == "vm"
