"""A scenario's faults, fired as the protocol reaches their points.

Each fault fires once, the first time its point is reached, in the order the file lists
them. What it does is said in terms of the cluster's primitives, so it means the same on
every driver. A fault that calls into a daemon (a cancel, a switch to post-copy, a dropped
connection) and whose point is a QMP command runs in a task of its own: the command is sent
from inside a job, and that job would otherwise wait for itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine
from typing import Any

from cookies import CookieError
from migrator.errors import MigratorError
from migrator.scenario import cookie_faults
from migrator.scenario.cluster import Cluster, PointHandler
from migrator.scenario.model import Fault, FaultKind, HostsSpec, Point, PointKind, TimeoutAction
from migrator.scenario.trace import TraceKind
from params import ParamsError

#: What a migration, an operator's request or a fault's effect may fail with, on purpose.
EXPECTED_ERRORS = (MigratorError, CookieError, ParamsError, OSError)


class FaultPlan(PointHandler):
    """The faults of one scenario run against ``cluster``, for the guest ``guest``."""

    def __init__(
        self, faults: tuple[Fault, ...], *, cluster: Cluster, hosts: HostsSpec, guest: str
    ) -> None:
        self._pending = list(faults)
        self._cluster = cluster
        self._hosts = hosts
        self._guest = guest
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> tuple[Fault, ...]:
        """The faults whose point has not been reached."""
        return tuple(self._pending)

    def wants(self, kind: PointKind) -> bool:
        return any(fault.at.kind is kind for fault in self._pending)

    def _take(self, point: Point, *, cookie: bool) -> list[Fault]:
        due = [f for f in self._pending if f.at == point and f.kind.alters_cookie == cookie]
        for fault in due:
            self._pending.remove(fault)
        return due

    # -- PointHandler ------------------------------------------------------------------------

    async def reached(self, point: Point) -> None:
        for fault in self._take(point, cookie=False):
            if point.kind is PointKind.COMMAND and fault.kind.calls_daemon:
                self._spawn(self._fire(fault), into=self._tasks)
            else:
                await self._fire(fault)

    def relay_cookie(self, point: Point, cookie: bytes) -> bytes:
        for fault in self._take(point, cookie=True):
            self._note(fault)
            if fault.kind is FaultKind.COOKIE_TAMPERED:
                cookie = cookie_faults.tampered(cookie)
            else:
                key = self._cluster.signing_key(self._hosts.name(point.role))
                cookie = cookie_faults.with_unknown_feature(cookie, signing_key=key)
        return cookie

    # -- firing ------------------------------------------------------------------------------

    async def _fire(self, fault: Fault) -> None:
        self._note(fault)
        cluster, host, guest = self._cluster, self._hosts.name(fault.target), self._guest
        match fault.kind:
            case FaultKind.QEMU_CRASH:
                await cluster.crash_qemu(host, guest)
            case FaultKind.DAEMON_KILLED:
                await cluster.kill_daemon(host, restart=fault.restart)
            case FaultKind.PEER_DROPPED:
                await cluster.drop_connections()
            case FaultKind.PARTITION:
                await cluster.partition(fault.seconds)
            case FaultKind.SLOW_LINK:
                await cluster.set_link(rate_mib_s=fault.rate_mib_s, delay_ms=fault.delay_ms)
            case FaultKind.DISK_FULL:
                await cluster.fill_disk(host)
            case FaultKind.CANCEL:
                await self._request(host, cluster.abort_job(guest))
            case FaultKind.SWITCH_TO_POSTCOPY:
                await self._request(host, cluster.switch_to_postcopy(guest))
            case FaultKind.TIMEOUT:
                self._spawn(self._timeout(fault), into=self._timers)

    def _note(self, fault: Fault) -> None:
        details = {
            FaultKind.DAEMON_KILLED: "" if fault.restart else " (stays down)",
            FaultKind.PARTITION: f" for {fault.seconds:g} s",
            FaultKind.SLOW_LINK: f" to {fault.rate_mib_s:g} MiB/s",
            FaultKind.TIMEOUT: f" of {fault.seconds:g} s ({fault.action.value})",
        }
        self._cluster.trace.add(
            TraceKind.FAULT,
            self._hosts.name(fault.target),
            f"{fault.kind.value} at {fault.at.text}{details.get(fault.kind, '')}",
        )

    async def _request(self, host: str, request: Awaitable[None]) -> None:
        """An operator's request; a refusal is what the scenario shows, not a failure."""
        try:
            await request
        except EXPECTED_ERRORS as exc:
            self._cluster.trace.add(TraceKind.FAULT, host, f"refused: {exc}")

    async def _timeout(self, fault: Fault) -> None:
        cluster = self._cluster
        expired = asyncio.Event()
        cluster.call_later(fault.seconds, expired.set)
        await expired.wait()
        if not cluster.migrating(self._guest):
            return
        host = self._hosts.name(fault.target)
        cluster.trace.add(TraceKind.FAULT, host, f"timeout expired: {fault.action.value}")
        match fault.action:
            case TimeoutAction.ABORT:
                await self._request(host, cluster.abort_job(self._guest))
            case TimeoutAction.POSTCOPY:
                await self._request(host, cluster.switch_to_postcopy(self._guest))
            case TimeoutAction.SUSPEND:
                await self._request(host, cluster.suspend_guest(self._guest))

    # -- tasks -------------------------------------------------------------------------------

    @staticmethod
    def _spawn(work: Coroutine[Any, Any, None], *, into: set[asyncio.Task[None]]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        into.add(task)
        task.add_done_callback(into.discard)

    async def drain(self) -> None:
        """Wait for the faults firing in tasks of their own.

        Raises:
            Exception: what one of them raised (a bug: expected failures are traced).
        """
        while self._tasks:
            for outcome in await asyncio.gather(*list(self._tasks), return_exceptions=True):
                if isinstance(outcome, Exception):
                    raise outcome

    async def stop_timers(self) -> None:
        """Forget the timeouts not expired yet: the migration they watched is over."""
        timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*timers, return_exceptions=True)
