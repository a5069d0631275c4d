"""Daemons in this process: each host's runtime sides, the calls they serve, and what they
store, with the connections between callers and daemons modelled closely enough that a
daemon can die, a connection can drop, and a restarted daemon resolves its half-done jobs
exactly as a real one does.

* Every call a daemon serves runs as a task of that daemon. Killing the daemon cancels its
  tasks and drops its runtime sides (:meth:`SourceSide.detach`); the caller of a cancelled
  call gets :class:`ConnectionLost`, as an RPC client whose server died.
* Starting it again builds new sides on the same host and lets them adopt the job records
  it had stored (:func:`migrator.runtime.restart.reattach`), after a trip through their
  wire form, as from disk.
* A :class:`Connection` is one caller's connection to one daemon for one migration; when it
  drops, the daemon sees its peer go (``peer_lost`` / ``abandon``) and the caller's next
  call fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import msgpack

import cookies
from migrator.domain import Domain
from migrator.errors import MigratorError
from migrator.runtime.destination import DestinationSide, PrepareResult
from migrator.runtime.host import Host
from migrator.runtime.records import JobRecord
from migrator.runtime.restart import Resolved, reattach
from migrator.runtime.source import BeginResult, SourceSide
from migrator.scenario.cluster import PointHandler
from migrator.scenario.errors import ConnectionLost
from migrator.scenario.model import Phase, Point
from migrator.scenario.trace import Trace, TraceKind
from params import MigrationFlag

T = TypeVar("T")


def sides_of(host: Host, *, resume_timeout: float) -> tuple[SourceSide, DestinationSide]:
    """Fresh source and destination sides for ``host`` (as a starting daemon makes them)."""
    return SourceSide(host, resume_timeout=resume_timeout), DestinationSide(host)


class ClockHold:
    """Keeps a clock from moving on its own while a call or its answer is in flight
    between tasks, as if it took no time; ``join`` and ``leave`` are the clock's. Taking
    and dropping twice in a row does nothing."""

    def __init__(self, join: Callable[[], None], leave: Callable[[], None]) -> None:
        self._join = join
        self._leave = leave
        self._held = False

    def take(self) -> None:
        if not self._held:
            self._held = True
            self._join()

    def drop(self) -> None:
        if self._held:
            self._held = False
            self._leave()


class InProcessDaemon:
    """The daemon of ``host``: its two runtime sides, the tasks serving calls, and the
    definitions it has stored (written through ``host.on_definitions_changed``).
    ``clock`` is the ``join``/``leave`` pair of a clock that moves only when nothing runs
    (a simulated one): calls in flight hold it."""

    def __init__(
        self,
        host: Host,
        *,
        resume_timeout: float,
        clock: tuple[Callable[[], None], Callable[[], None]] | None = None,
    ) -> None:
        self.host = host
        self._clock = clock
        self.resume_timeout = resume_timeout
        self.source, self.destination = sides_of(host, resume_timeout=resume_timeout)
        self.alive = True
        #: Counts the daemon's lives: a connection made to an earlier life is gone.
        self.epoch = 0
        #: Writing a definition fails with "no space left on device".
        self.disk_full = False
        #: The persistent definitions as the daemon last wrote them out.
        self.stored: dict[str, Domain] = dict(host.definitions)
        host.on_definitions_changed = self._store
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        return f"<InProcessDaemon {self.host.name} alive={self.alive} epoch={self.epoch}>"

    def _store(self, definitions: Mapping[str, Domain]) -> None:
        if self.disk_full:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.stored = dict(definitions)

    async def serve(self, call: Coroutine[Any, Any, T]) -> T:
        """Run ``call`` as a task of this daemon and return its result.

        Raises:
            ConnectionLost: the daemon is not running, or died before answering.
            Exception: whatever ``call`` raised.
        """
        if not self.alive:
            call.close()
            raise self.gone()
        hold = None if self._clock is None else ClockHold(*self._clock)

        async def served() -> T:
            if hold is not None:
                hold.drop()
            try:
                return await call
            finally:
                if hold is not None:
                    hold.take()

        if hold is not None:
            hold.take()
        task = asyncio.get_running_loop().create_task(served())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A call cancelled before it started was never awaited: close it.
        task.add_done_callback(lambda _: call.close())
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                raise self.gone() from None
            raise
        finally:
            if hold is not None:
                hold.drop()

    def gone(self) -> ConnectionLost:
        return ConnectionLost(f"the daemon on {self.host.name} went away", host=self.host.name)

    async def stop(self) -> None:
        """Die: cancel every call being served and drop the sides. The guests keep
        running; the job records and stored definitions stay for the next start."""
        self.alive = False
        self.epoch += 1
        current = asyncio.current_task()
        serving = [task for task in self._tasks if task is not current]
        for task in serving:
            task.cancel()
        await self.source.detach()
        await self.destination.detach()
        await asyncio.gather(*serving, return_exceptions=True)
        self.host.guests.clear()

    async def start(self) -> list[Resolved]:
        """Start again: read back what was stored, reconnect to the guests and resolve the
        half-done jobs.

        Raises:
            RecordError: a stored job record does not read back.
            DomainError: a stored definition is unreadable.
        """
        host = self.host
        host.definitions = dict(self.stored)
        for name in host.status.names():
            record = host.status.load(name)
            if record is not None:
                wire = msgpack.unpackb(msgpack.packb(record.to_wire()), raw=False)
                host.status.save(name, JobRecord.from_wire(wire))
        self.source, self.destination = sides_of(host, resume_timeout=self.resume_timeout)
        self.alive = True
        return await self.serve(reattach(host, source=self.source, destination=self.destination))

    async def peer_gone(self, name: str, *, driving: bool) -> None:
        """The connection carrying ``name``'s migration is gone: each side with a job for
        it resolves it on its own. ``driving`` is for a source daemon that drives the
        migration itself (peer-to-peer): losing the destination only cancels a running
        Perform, the rest is up to Finish and Confirm. Otherwise the connection was the
        controlling one, and the source resolves its job as libvirt does when that closes.
        """
        lost = self.source.destination_lost if driving else self.source.peer_lost
        with contextlib.suppress(MigratorError):
            await self.serve(lost(name))
        with contextlib.suppress(MigratorError):
            await self.serve(self.destination.abandon(name))


class Connection:
    """A caller's connection to ``daemon`` for one migration. A ``local`` one is the
    daemon calling itself: nothing can drop it. ``network`` is awaited before a request
    and before its reply cross the network (it returns once they can)."""

    def __init__(
        self,
        daemon: InProcessDaemon,
        *,
        local: bool = False,
        network: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.daemon = daemon
        self.local = local
        self.dropped = False
        self._epoch = daemon.epoch
        self._network = network

    @property
    def usable(self) -> bool:
        daemon = self.daemon
        return daemon.alive and daemon.epoch == self._epoch and not self.dropped

    def drop(self) -> None:
        if not self.local:
            self.dropped = True

    async def call(self, call: Coroutine[Any, Any, T]) -> T:
        """Have the daemon serve ``call``.

        Raises:
            ConnectionLost: the connection is gone, or went while the call was served.
        """
        try:
            if self._network is not None:
                await self._network()
            if not self.usable:
                raise self.daemon.gone()
        except BaseException:
            call.close()
            raise
        result = await self.daemon.serve(call)
        if self._network is not None:
            await self._network()
        if not self.usable:
            raise self.daemon.gone()
        return result


def cookie_features(cookie: bytes) -> str:
    """The features a cookie carries, for the trace."""
    try:
        decoded = cookies.decode_unverified(cookie).cookie
    except cookies.CookieError:
        return "unreadable"
    return ",".join(sorted(feature.wire_name for feature in decoded.features)) or "none"


class _Endpoint:
    """One side's phases, reached through a connection, with the points around each."""

    def __init__(self, connection: Connection, *, points: PointHandler, trace: Trace) -> None:
        self.connection = connection
        self.daemon = connection.daemon
        self._points = points
        self._trace = trace

    async def _phase(self, phase: Phase, call: Callable[[], Awaitable[T]]) -> T:
        async def served() -> T:
            await self._points.reached(Point.before(phase))
            result = await call()
            await self._points.reached(Point.after(phase))
            return result

        return await self.connection.call(served())

    def _relay(self, phase: Phase, cookie: bytes) -> bytes:
        self._trace.add(
            TraceKind.COOKIE, self.daemon.host.name, f"{phase.value} {cookie_features(cookie)}"
        )
        return self._points.relay_cookie(Point.after(phase), cookie)


class SourceEndpoint(_Endpoint):
    """The source daemon's phases (``SourceAPI`` and ``SourceResumeAPI``)."""

    async def begin(
        self, name: str, *, flags: MigrationFlag, typed: dict[str, object]
    ) -> BeginResult:
        async def call() -> BeginResult:
            result = await self.daemon.source.begin(name, flags=flags, typed=typed)
            return replace(result, cookie=self._relay(Phase.BEGIN, result.cookie))

        return await self._phase(Phase.BEGIN, call)

    async def perform(self, name: str, *, cookie: bytes, uri: str) -> bytes:
        async def call() -> bytes:
            result = await self.daemon.source.perform(name, cookie=cookie, uri=uri)
            return self._relay(Phase.PERFORM, result)

        return await self._phase(Phase.PERFORM, call)

    async def confirm(self, name: str, *, cookie: bytes | None, cancelled: bool) -> None:
        await self._phase(
            Phase.CONFIRM,
            lambda: self.daemon.source.confirm(name, cookie=cookie, cancelled=cancelled),
        )

    async def begin_resume(self, name: str) -> bytes:
        async def call() -> bytes:
            return self._relay(Phase.BEGIN_RESUME, await self.daemon.source.begin_resume(name))

        return await self._phase(Phase.BEGIN_RESUME, call)

    async def perform_resume(self, name: str, *, uri: str) -> None:
        await self._phase(
            Phase.PERFORM_RESUME, lambda: self.daemon.source.perform_resume(name, uri=uri)
        )

    async def confirm_resume(self, name: str) -> None:
        await self._phase(Phase.CONFIRM_RESUME, lambda: self.daemon.source.confirm_resume(name))


class DestinationEndpoint(_Endpoint):
    """The destination daemon's phases (``DestinationAPI`` and ``DestinationResumeAPI``)."""

    async def prepare(
        self, *, cookie: bytes, xml: str, flags: MigrationFlag, typed: dict[str, object]
    ) -> PrepareResult:
        async def call() -> PrepareResult:
            result = await self.daemon.destination.prepare(
                cookie=cookie, xml=xml, flags=flags, typed=typed
            )
            return replace(result, cookie=self._relay(Phase.PREPARE, result.cookie))

        return await self._phase(Phase.PREPARE, call)

    async def finish(self, name: str, *, cookie: bytes | None, cancelled: bool) -> bytes:
        async def call() -> bytes:
            result = await self.daemon.destination.finish(name, cookie=cookie, cancelled=cancelled)
            return self._relay(Phase.FINISH, result)

        return await self._phase(Phase.FINISH, call)

    async def prepare_resume(self, name: str) -> str:
        return await self._phase(
            Phase.PREPARE_RESUME, lambda: self.daemon.destination.prepare_resume(name)
        )

    async def finish_resume(self, name: str) -> None:
        await self._phase(Phase.FINISH_RESUME, lambda: self.daemon.destination.finish_resume(name))

    async def abandon(self, name: str) -> None:
        await self.connection.call(self.daemon.destination.abandon(name))
