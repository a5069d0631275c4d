"""A transport peer in a process of its own, for the keepalive tests.

``python -m tests.transport.peer server SOCKET`` serves a ``hang`` method on SOCKET;
``python -m tests.transport.peer client SOCKET`` connects to SOCKET and stays connected.
Either prints ``ready`` once it is, then runs until it is killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from transport import Connection, Limits, Server, connect_unix

LIMITS = Limits(keepalive_interval=0.5, keepalive_missed=4)


async def hang(params: Any, connection: Connection) -> None:
    await asyncio.Event().wait()


async def main(role: str, path: Path) -> None:
    if role == "server":
        async with Server({"hang": hang}, limits=LIMITS) as server:
            await server.listen_unix(path)
            print("ready", flush=True)
            await asyncio.Event().wait()
    else:
        async with await connect_unix(path, limits=LIMITS) as connection:
            print("ready", flush=True)
            await connection.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
