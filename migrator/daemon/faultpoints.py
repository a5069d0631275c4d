"""Fault points for scenario replay: a daemon that reports, and waits at, every point where a
scenario may inject a fault. Off unless the environment variable
:data:`FAULT_POINTS_VARIABLE` names a unix socket; never for production use.

When it is on, the daemon reports to that socket, and waits for the answer before going on:

* each QMP command its engine sends (``command``), before QEMU gets it;
* each migration status QEMU enters (``status``);
* before and after each protocol phase it runs (``before``, ``after``); the answer to an
  ``after`` report carries the cookie that goes on (the replay may alter it);

and, without waiting, each job record it writes (``phase``) and removes (``end``). Every
answer may say ``disk_full``: from then on, writing a definition fails with ENOSPC.

The wire form is one request per connection: a 4-byte big-endian length and a msgpack map
each way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import os
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack

from migrator.domain import Domain
from migrator.drivers.base import EventKind, Instance
from migrator.runtime.records import JobRecord

if TYPE_CHECKING:
    from migrator.daemon.service import _Parts

#: Names the socket fault points are reported to; unset, a daemon reports nothing.
FAULT_POINTS_VARIABLE = "MIGRATOR_FAULT_POINTS"

#: The length prefix of each message.
LENGTH = struct.Struct(">I")
#: The largest message either side accepts.
MAX_MESSAGE_BYTES = 1 << 20

#: The phase methods of each side, reported before and after they run; the value says which
#: part of the result is the cookie emitted (None: no cookie).
_SOURCE_PHASES = {
    "begin": "cookie",
    "perform": "",
    "confirm": None,
    "begin_resume": "",
    "perform_resume": None,
    "confirm_resume": None,
}
_DESTINATION_PHASES = {
    "prepare": "cookie",
    "finish": "",
    "prepare_resume": None,
    "finish_resume": None,
}


async def exchange(path: Path, message: Mapping[str, object]) -> dict[str, Any]:
    """Send ``message`` to the socket at ``path`` and return the answer.

    Raises:
        OSError: the socket cannot be reached or closed before answering.
        ValueError: the answer is malformed.
    """
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        await write_message(writer, message)
        answer = await read_message(reader)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return answer


async def write_message(writer: asyncio.StreamWriter, message: Mapping[str, object]) -> None:
    data = msgpack.packb(dict(message), use_bin_type=True)
    writer.write(LENGTH.pack(len(data)) + data)
    await writer.drain()


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    """Raises: asyncio.IncompleteReadError, ValueError: a short or malformed message."""
    (size,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"a fault-point message of {size} bytes is too large")
    message = msgpack.unpackb(await reader.readexactly(size), raw=False)
    if not isinstance(message, dict):
        raise ValueError("a fault-point message must be a map")
    return message


class FaultPoints:
    """The reporter of one daemon (host ``host``) to the socket at ``path``."""

    def __init__(self, path: Path, *, host: str) -> None:
        self.path = path
        self.host = host
        self.disk_full = False
        self._notes: set[asyncio.Task[None]] = set()

    async def report(self, kind: str, **fields: object) -> dict[str, Any]:
        """Report a point and wait for the answer (an empty one if nobody answers)."""
        try:
            answer = await exchange(self.path, {"host": self.host, "kind": kind, **fields})
        except (OSError, ValueError, asyncio.IncompleteReadError):
            return {}
        if answer.get("disk_full"):
            self.disk_full = True
        return answer

    def note(self, kind: str, **fields: object) -> None:
        """Report without waiting (from code that cannot wait)."""
        task = asyncio.get_running_loop().create_task(self._note(kind, fields))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _note(self, kind: str, fields: dict[str, object]) -> None:
        await self.report(kind, **fields)

    # -- the taps' sink ----------------------------------------------------------------------

    async def command(self, host: str, command: str, detail: str) -> None:
        await self.report("command", command=command, detail=detail)

    async def started(self, host: str, name: str, instance: Instance) -> None:
        ready = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._statuses(instance, ready))
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)
        await ready.wait()

    async def _statuses(self, instance: Instance, ready: asyncio.Event) -> None:
        async with instance.listen() as events:
            ready.set()
            async for event in events:
                if event.kind is EventKind.MIGRATION and event.status is not None:
                    await self.report("status", status=event.status.value)

    def saved(self, host: str, record: JobRecord) -> None:
        self.note("phase", side=record.side.value, domain=record.domain, phase=record.phase)

    def deleted(self, host: str, record: JobRecord) -> None:
        self.note("end", side=record.side.value, domain=record.domain, phase=record.phase)

    # -- phases ------------------------------------------------------------------------------

    def wrap_phase(
        self, phase: str, method: Callable[..., Awaitable[Any]], cookie: str | None
    ) -> Callable[..., Awaitable[Any]]:
        """``method`` (the side's ``phase``), reported before and after it runs; ``cookie``
        names the result's field that holds the cookie it emits ("": the result is the
        cookie; None: it emits none)."""

        @functools.wraps(method)
        async def reported(*args: Any, **kwargs: Any) -> Any:
            await self.report("before", phase=phase)
            result = await method(*args, **kwargs)
            if cookie is None:
                await self.report("after", phase=phase)
                return result
            emitted = result if cookie == "" else getattr(result, cookie)
            answer = await self.report("after", phase=phase, cookie=emitted)
            relayed = answer.get("cookie", emitted)
            if not isinstance(relayed, bytes):
                return result
            if cookie == "":
                return relayed
            return dataclasses.replace(result, cookie=relayed)

        return reported

    def store_definitions(
        self, store: Callable[[Mapping[str, Domain]], None] | None
    ) -> Callable[[Mapping[str, Domain]], None]:
        """``store``, failing with ENOSPC once an answer said the disk is full."""

        def stored(definitions: Mapping[str, Domain]) -> None:
            if self.disk_full:
                raise OSError(errno.ENOSPC, "No space left on device")
            if store is not None:
                store(definitions)

        return stored


def install(parts: _Parts, *, host: str) -> FaultPoints | None:
    """Report ``parts``' fault points if :data:`FAULT_POINTS_VARIABLE` is set; otherwise do
    nothing. Call it before the daemon resolves its half-done jobs."""
    path = os.environ.get(FAULT_POINTS_VARIABLE)
    if not path:
        return None
    # Imported here: the scenario package imports the daemon's modules.
    from migrator.scenario.taps import TappedDriver, TappedStatusStore  # noqa: PLC0415

    points = FaultPoints(Path(path), host=host)
    daemon_host = parts.host
    daemon_host.driver = TappedDriver(daemon_host.driver, host=host, sink=points)
    daemon_host.status = TappedStatusStore(daemon_host.status, host=host, sink=points)
    daemon_host.on_definitions_changed = points.store_definitions(
        daemon_host.on_definitions_changed
    )
    for side, phases in ((parts.source, _SOURCE_PHASES), (parts.destination, _DESTINATION_PHASES)):
        for phase, cookie in phases.items():
            setattr(side, phase, points.wrap_phase(phase, getattr(side, phase), cookie))
    return points
