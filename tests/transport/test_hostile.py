"""Hostile peers lose their own connection, with a logged reason; good connections never notice."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport import Connection, Limits, Server, connect_tls, connect_unix
from transport.tls import TLSClientConfig

from .conftest import FAST, HELLO, LogWatch, Methods, Pki, closed_except


@dataclass(frozen=True)
class Attack:
    """What a hostile peer sends, and what the server's log must say about it."""

    name: str
    payload: bytes
    logged: str
    hello_first: bool = True
    hang_up: bool = True  # send EOF after the payload (else keep the connection open)
    trickle: float = 0.0  # seconds between single bytes


def _request(msgid: int, method: str, params: object = None) -> bytes:
    return bytes(msgpack.packb([0, msgid, method, params]))


ATTACKS = [
    Attack("garbage before the hello", b"\xc1garbage", "malformed msgpack", hello_first=False),
    Attack("a call before the hello", _request(1, "echo"), "expected the hello", hello_first=False),
    Attack("silence", b"", "no hello within handshake_timeout", hello_first=False, hang_up=False),
    Attack("4 GiB binary header", b"\xc6\xff\xff\xff\xff", "frame_timeout", hang_up=False),
    Attack("deep nesting", b"\x91" * 100_000, "StackError"),
    Attack("huge array", b"\xdd\x00\x0f\x42\x40", "max_array_len"),
    Attack("huge map", b"\xdf\x00\x0f\x42\x40", "max_map_len"),
    Attack("oversize frame", bytes(msgpack.packb("x" * (2 << 20))), "max_frame_bytes"),
    Attack("frame cut off at EOF", _request(5, "echo", "abcdef")[:-3], "ended inside a frame"),
    Attack("not a message", bytes(msgpack.packb({"a": 1})), "not a msgpack-RPC message"),
    Attack("duplicate id", _request(9, "hang") * 2, "already in flight", hang_up=False),
    Attack(
        "one byte a second",
        _request(3, "echo", "slow"),
        "frame_timeout",
        hang_up=False,
        trickle=1.0,
    ),
]

#: The frame timeout outlasts two bytes of the trickle, so a per-read idle timer would never
#: fire; keepalive is slower than the frame timeout, so the frame timeout is what cuts off a
#: stalled frame.
HOSTILE_LIMITS = Limits(
    frame_timeout=2.5, handshake_timeout=1.0, keepalive_interval=1.0, close_timeout=0.5
)


@contextlib.asynccontextmanager
async def _steady_caller(connection: Connection) -> AsyncIterator[None]:
    """Keep calling ``echo`` on ``connection`` meanwhile; any failed call fails the test."""

    async def keep_calling() -> None:
        index = 0
        while True:
            assert await connection.call("echo", index) == index
            index += 1
            await asyncio.sleep(0.005)

    caller = asyncio.create_task(keep_calling())
    try:
        yield
    finally:
        if caller.done():
            caller.result()  # re-raise a failed call
        caller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await caller


async def _attack(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, attack: Attack
) -> None:
    """Send ``attack``, then read until the server closes the connection."""
    if attack.hello_first:
        writer.write(HELLO)
        hello_answer = await reader.read(100)
        assert msgpack.unpackb(hello_answer) == [1, 0, None, {"version": 1}]
    if attack.trickle:
        for byte in attack.payload:
            writer.write(bytes([byte]))
            await asyncio.sleep(attack.trickle)
            if reader.at_eof() or writer.is_closing():
                break
    else:
        writer.write(attack.payload)
    if attack.hang_up:
        with contextlib.suppress(OSError):
            writer.write_eof()
    async with asyncio.timeout(15):  # a broken server must not hang the test run
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass
    writer.close()


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
async def test_a_hostile_peer_loses_only_its_own_connection(
    methods: Methods, socket_path: Path, transport_log: LogWatch, attack: Attack
) -> None:
    async with Server(methods.table(), limits=HOSTILE_LIMITS) as server:
        await server.listen_unix(socket_path)
        good = await connect_unix(socket_path, limits=FAST)
        (good_on_server,) = server.connections
        async with _steady_caller(good):
            reader, writer = await asyncio.open_unix_connection(socket_path)
            await _attack(reader, writer, attack)
        await closed_except(server, good_on_server)
        assert "closing" in await transport_log.wait_for(attack.logged)
        assert server.connections == (good_on_server,)
        assert await good.call("echo", "after") == "after"
        await good.close()


async def test_plain_bytes_on_the_tls_port_lose_only_their_connection(
    tls_server: tuple[Server, int], certs: Pki, transport_log: LogWatch
) -> None:
    _, port = tls_server
    good = await connect_tls(
        "127.0.0.1", port, tls=TLSClientConfig.from_dir(certs.client), limits=FAST
    )
    async with _steady_caller(good):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await _attack(reader, writer, Attack("plain", HELLO, "", hello_first=False))
    await transport_log.wait_for("TLS handshake failed")
    assert await good.call("echo", "still here") == "still here"
    await good.close()


@settings(max_examples=30)
@given(junk=st.binary(min_size=1, max_size=512), hello_first=st.booleans())
def test_random_bytes_close_only_their_own_connection(junk: bytes, hello_first: bool) -> None:
    attack = Attack("random", junk, "", hello_first=hello_first)

    async def scenario(socket_path: Path) -> None:
        async with Server(Methods().table(), limits=HOSTILE_LIMITS) as server:
            await server.listen_unix(socket_path)
            good = await connect_unix(socket_path, limits=FAST)
            (good_on_server,) = server.connections
            reader, writer = await asyncio.open_unix_connection(socket_path)
            await _attack(reader, writer, attack)
            await closed_except(server, good_on_server)
            assert await good.call("echo", junk) == junk
            await good.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(scenario(Path(directory) / "r.sock"))
