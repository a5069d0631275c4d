"""Keepalive: a peer that stops answering (SIGSTOP) is found out, from either side."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from transport import PeerLost, Runstate, Server, connect_unix

from .conftest import FAST, Methods

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def peer_process(role: str, socket_path: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``tests.transport.peer`` until it is ready; always resume and kill it afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.transport.peer",
        role,
        str(socket_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            assert await process.stdout.readline() == b"ready\n"
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        await process.wait()


async def test_a_client_detects_a_stopped_server(socket_path: Path) -> None:
    async with peer_process("server", socket_path) as server:
        connection = await connect_unix(socket_path, limits=FAST)
        call = asyncio.create_task(connection.call("hang"))
        await asyncio.sleep(0)  # let the call go out
        server.send_signal(signal.SIGSTOP)
        async with asyncio.timeout(10):
            with pytest.raises(PeerLost, match="outcome is unknown"):
                await call
            reason = await connection.wait_closed()
    assert isinstance(reason, PeerLost)
    assert reason.details["silent_for"] >= FAST.silence_allowed


async def test_a_server_detects_a_stopped_client(methods: Methods, socket_path: Path) -> None:
    async with Server(methods.table(), limits=FAST) as server:
        await server.listen_unix(socket_path)
        async with peer_process("client", socket_path) as client:
            (connection,) = server.connections  # answered the hello before the peer was ready
            assert connection.state is Runstate.OPEN
            client.send_signal(signal.SIGSTOP)
            async with asyncio.timeout(10):
                reason = await connection.wait_closed()
    assert isinstance(reason, PeerLost)
    assert "silent" in reason.message
    assert not server.connections
