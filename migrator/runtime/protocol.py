"""The five-phase sequence, driven from one place: the source daemon (peer-to-peer) or a
client (managed-direct). Both sides are reached through the same two interfaces, whether
they are in this process or behind an RPC connection.

The caller's rule from libvirt: when Finish fails, the guest is restarted on the source
(Confirm with ``cancelled``); when Perform fails, Finish is called with ``cancelled`` first.
Cancelling the driving task is not a failure: whoever drives is gone, and each side resolves
its job by itself (peer loss, or recovery when its daemon starts again).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from typing import Protocol

from migrator.errors import MigratorError
from migrator.runtime.destination import PrepareResult
from migrator.runtime.source import BeginResult
from params import MigrationFlag

log = logging.getLogger("migrator.protocol")

#: Flags that only concern the source and are not sent to the destination.
SOURCE_ONLY_FLAGS = MigrationFlag.ABORT_ON_ERROR | MigrationFlag.AUTO_CONVERGE


class SourceAPI(Protocol):
    async def begin(
        self, name: str, *, flags: MigrationFlag, typed: dict[str, object]
    ) -> BeginResult: ...

    async def perform(self, name: str, *, cookie: bytes, uri: str) -> bytes: ...

    async def confirm(self, name: str, *, cookie: bytes | None, cancelled: bool) -> None: ...


class DestinationAPI(Protocol):
    async def prepare(
        self, *, cookie: bytes, xml: str, flags: MigrationFlag, typed: dict[str, object]
    ) -> PrepareResult: ...

    async def finish(self, name: str, *, cookie: bytes | None, cancelled: bool) -> bytes: ...


class SourceResumeAPI(Protocol):
    async def begin_resume(self, name: str) -> bytes: ...

    async def confirm(self, name: str, *, cookie: bytes | None, cancelled: bool) -> None: ...

    async def perform_resume(self, name: str, *, uri: str) -> None: ...

    async def confirm_resume(self, name: str) -> None: ...


class DestinationResumeAPI(Protocol):
    async def prepare_resume(self, name: str) -> str: ...

    async def finish_resume(self, name: str) -> None: ...

    async def abandon(self, name: str) -> None: ...


async def run_migration(
    source: SourceAPI,
    destination: DestinationAPI,
    name: str,
    *,
    flags: MigrationFlag,
    typed: dict[str, object],
    destination_typed: dict[str, object],
) -> None:
    """Migrate ``name`` from ``source`` to ``destination`` through all five phases.

    Raises:
        MigratorError: a phase failed; the guest runs on exactly one host afterwards (or,
            after a post-copy failure, the job stays open for a resume).
    """
    begin = await source.begin(name, flags=flags, typed=typed)
    dest_flags = flags & ~SOURCE_ONLY_FLAGS
    try:
        prepared = await destination.prepare(
            cookie=begin.cookie, xml=begin.xml, flags=dest_flags, typed=destination_typed
        )
    except Exception:
        await _quietly(source.confirm(name, cookie=None, cancelled=True))
        raise
    if MigrationFlag.OFFLINE in flags:
        await _finish_and_confirm(source, destination, name, cookie=None)
        return
    try:
        performed = await source.perform(name, cookie=prepared.cookie, uri=prepared.uri)
    except Exception:
        await _quietly(destination.finish(name, cookie=None, cancelled=True))
        await _quietly(source.confirm(name, cookie=None, cancelled=True))
        raise
    await _finish_and_confirm(source, destination, name, cookie=performed)


async def resume_postcopy(
    source: SourceResumeAPI, destination: DestinationResumeAPI, name: str
) -> None:
    """Reconnect a failed post-copy migration of ``name`` and see it through.

    Raises:
        PhaseRefused: QEMU does not report ``postcopy-paused`` yet (pause it first).
        MigratorError: a resume step failed; both sides stay in ``postcopy_failed``, ready
            for another attempt.
    """
    await source.begin_resume(name)
    try:
        uri = await destination.prepare_resume(name)
    except Exception:
        # The source goes back to post-copy-failed, ready for another attempt.
        await _quietly(source.confirm(name, cookie=None, cancelled=True))
        raise
    try:
        await source.perform_resume(name, uri=uri)
    except Exception:
        await _quietly(destination.abandon(name))
        raise
    await destination.finish_resume(name)
    await source.confirm_resume(name)


async def _finish_and_confirm(
    source: SourceAPI, destination: DestinationAPI, name: str, *, cookie: bytes | None
) -> None:
    try:
        finished = await destination.finish(name, cookie=cookie, cancelled=False)
    except Exception:
        await _quietly(source.confirm(name, cookie=None, cancelled=True))
        raise
    await source.confirm(name, cookie=finished, cancelled=False)


async def _quietly(step: Awaitable[object]) -> None:
    """Run a rollback step whose own failure must not hide the original error."""
    with contextlib.suppress(MigratorError, OSError):
        await step
