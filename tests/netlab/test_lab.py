"""The network lab on this machine: two namespaces that reach each other, partitions that
cut them off and heal, shaping, and cleanup."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from migrator.netlab import LabHost, NetLab, NetLabError, NetLabUnsupported

PORT = 47123
GUARD_S = 30

#: Accept one connection, say "hello" and exit.
SERVER = f"""
import socket
s = socket.create_server(('0.0.0.0', {PORT}))
print('listening', flush=True)
conn, _ = s.accept()
conn.sendall(b'hello')
conn.close()
"""

#: Connect (giving up after the given seconds) and print what the server said.
CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], {port}), timeout=float(sys.argv[2])) as c:
        print(c.recv(16).decode())
except OSError as err:
    print('unreachable', type(err).__name__)
"""


def namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in listing.stdout.splitlines() if line.strip()}


async def serve(host: LabHost) -> asyncio.subprocess.Process:
    server = await asyncio.create_subprocess_exec(
        *host.command([sys.executable, "-c", SERVER]), stdout=asyncio.subprocess.PIPE
    )
    assert server.stdout is not None
    assert await server.stdout.readline() == b"listening\n"
    return server


async def connect(lab: NetLab, *, timeout_s: float) -> str:
    client = await asyncio.create_subprocess_exec(
        *lab.a.command(
            [sys.executable, "-c", CLIENT.format(port=PORT), lab.b.address, str(timeout_s)]
        ),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await client.communicate()
    return out.decode().strip()


async def test_the_hosts_reach_each_other_and_nothing_is_left_behind() -> None:
    async with asyncio.timeout(GUARD_S):
        async with await NetLab.create() as lab:
            assert {lab.a.namespace, lab.b.namespace} <= namespaces()
            server = await serve(lab.b)
            assert await connect(lab, timeout_s=5) == "hello"
            await server.wait()
    assert not {lab.a.namespace, lab.b.namespace} & namespaces()


async def test_a_partition_cuts_the_link_until_it_heals() -> None:
    async with asyncio.timeout(GUARD_S), await NetLab.create() as lab:
        server = await serve(lab.b)
        try:
            await lab.partition()
            assert (await connect(lab, timeout_s=0.5)).startswith("unreachable")
            await lab.heal()
            assert await connect(lab, timeout_s=5) == "hello"
        finally:
            if server.returncode is None:
                server.kill()
            await server.wait()


async def test_partition_for_heals_by_itself() -> None:
    async with asyncio.timeout(GUARD_S), await NetLab.create() as lab:
        server = await serve(lab.b)
        await lab.partition_for(0.2)
        assert await connect(lab, timeout_s=5) == "hello"
        await server.wait()


async def test_a_rate_limit_installs_a_token_bucket_and_comes_off_again() -> None:
    async with asyncio.timeout(GUARD_S), await NetLab.create() as lab:
        await lab.shape(rate_kbit=8000)
        shown = await lab.qdisc(lab.a)
        assert "tbf" in shown and "8Mbit" in shown
        await lab.unshape()
        server = await serve(lab.b)
        assert await connect(lab, timeout_s=5) == "hello"
        await server.wait()


async def test_a_delay_needs_netem_and_says_so_where_the_kernel_lacks_it() -> None:
    async with asyncio.timeout(GUARD_S), await NetLab.create() as lab:
        try:
            await lab.shape(delay_ms=20)
        except NetLabUnsupported as err:
            assert str(err) == "this kernel has no 'netem' queueing discipline"
        else:
            shown = await lab.qdisc(lab.a)
            assert "netem" in shown and "delay 20ms" in shown


async def test_shaping_without_a_limit_is_refused() -> None:
    async with await NetLab.create() as lab:
        with pytest.raises(NetLabError, match="with a rate, a delay, or both"):
            await lab.shape()


#: Accept one connection on each of two ports; on a line from stdin, say of each whether it
#: is still open or was reset.
TWO_PORT_SERVER = f"""
import socket, sys
servers = [socket.create_server(('0.0.0.0', port)) for port in ({PORT}, {PORT + 1})]
print('listening', flush=True)
conns = [server.accept()[0] for server in servers]
sys.stdin.readline()
for conn in conns:
    try:
        conn.recv(1, socket.MSG_DONTWAIT)
        print('closed', flush=True)
    except BlockingIOError:
        print('open', flush=True)
    except ConnectionResetError:
        print('reset', flush=True)
"""

#: Connect to both ports and hold the connections until stdin closes.
TWO_PORT_CLIENT = f"""
import socket, sys
conns = [socket.create_connection((sys.argv[1], port)) for port in ({PORT}, {PORT + 1})]
print('connected', flush=True)
sys.stdin.read()
"""


async def test_resetting_connections_spares_the_ports_named() -> None:
    async with asyncio.timeout(GUARD_S), await NetLab.create() as lab:
        pipe = asyncio.subprocess.PIPE
        server = await asyncio.create_subprocess_exec(
            *lab.b.command([sys.executable, "-c", TWO_PORT_SERVER]), stdin=pipe, stdout=pipe
        )
        assert server.stdout is not None and server.stdin is not None
        assert await server.stdout.readline() == b"listening\n"
        client = await asyncio.create_subprocess_exec(
            *lab.a.command([sys.executable, "-c", TWO_PORT_CLIENT, lab.b.address]),
            stdin=pipe,
            stdout=pipe,
        )
        assert client.stdout is not None
        try:
            assert await client.stdout.readline() == b"connected\n"
            await lab.reset_connections(sparing=[PORT + 1])
            out, _ = await server.communicate(b"check\n")
            assert out.decode().split() == ["reset", "open"]
        finally:
            client.kill()
            await client.wait()
