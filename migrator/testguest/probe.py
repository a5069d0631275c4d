"""Reads the test guest through any QMP connection: its status record, a memory dump, a check.

Every function takes the ``execute`` coroutine of a QMP connection (a :class:`GuestVm`, a
qemu driver instance, ...) and a scratch file that QEMU writes with ``pmemsave``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from migrator.testguest.errors import MemoryDumpError
from migrator.testguest.memcheck import MemoryCheck, memory_dump_size, verify_memory_dump
from migrator.testguest.protocol import MIB, PAGE_SIZE, STATUS_ADDR, STATUS_SIZE, GuestStatus

#: Runs one QMP command and returns its reply.
Execute = Callable[[str, Mapping[str, object] | None], Awaitable[object]]

#: How often :func:`until_rewritten` looks at the status record, in seconds.
POLL_INTERVAL_S = 0.02


async def read_status(execute: Execute, scratch: Path) -> GuestStatus:
    """The guest's status record, read while the guest runs.

    Raises:
        MemoryDumpError: the guest has not put a status record in place.
        Whatever ``execute`` raises when QMP fails.
    """
    await execute("pmemsave", {"val": STATUS_ADDR, "size": STATUS_SIZE, "filename": str(scratch)})
    return GuestStatus.unpack(await asyncio.to_thread(scratch.read_bytes))


async def dump_memory(execute: Execute, path: Path, *, size: int) -> None:
    """Write ``size`` bytes of guest RAM from address 0 to ``path``, pausing a running guest
    meanwhile so that the dump is one consistent moment (as :func:`verify_memory_dump` needs).

    Raises:
        Whatever ``execute`` raises when QMP fails.
    """
    status = await execute("query-status", None)
    running = isinstance(status, dict) and status.get("running") is True
    if running:
        await execute("stop", None)
    try:
        await execute("pmemsave", {"val": 0, "size": size, "filename": str(path)})
    finally:
        if running:
            await execute("cont", None)


async def check_memory(execute: Execute, scratch: Path) -> MemoryCheck:
    """Dump guest RAM up to the end of the working set and check it against the status record.

    The check runs in a worker thread, so that the event loop keeps serving meanwhile; the
    scratch file is removed afterwards.

    Raises:
        MemoryDumpError: the guest has no status record in place.
        Whatever ``execute`` raises when QMP fails.
    """
    status = await read_status(execute, scratch)
    await dump_memory(execute, scratch, size=memory_dump_size(status))
    return await asyncio.to_thread(_verify_and_remove, scratch)


async def until_rewritten(execute: Execute, scratch: Path, *, working_set_mib: int) -> None:
    """Return once the guest has rewritten its whole working set: until then most of it is
    zero pages, which a migration copies at once however busy the guest is.

    Raises:
        Whatever ``execute`` raises when QMP fails.
    """
    pages = working_set_mib * MIB // PAGE_SIZE
    while True:
        try:
            status = await read_status(execute, scratch)
        except MemoryDumpError:
            status = None  # not in place yet
        if status is not None and status.pages_written >= pages:
            return
        await asyncio.sleep(POLL_INTERVAL_S)


def _verify_and_remove(dump: Path) -> MemoryCheck:
    try:
        return verify_memory_dump(dump.read_bytes())
    finally:
        dump.unlink(missing_ok=True)
