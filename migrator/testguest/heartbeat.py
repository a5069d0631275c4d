"""Watches the test guest's heartbeat on one or more QEMU serial sockets.

QEMU exposes the guest's COM1 as a listening socket (``-chardev socket,...,server=on``), unix
or TCP; the monitor connects to it as a client. During a live migration attach both the
source's and the destination's sockets: the log merges them into one sequence (see
:mod:`migrator.testguest.heartbeat_log`).

Bytes are stamped with the clock as the event loop reads them, and fed to the log from the
protocol callbacks, with no task in between. The first bytes of a source are fed one loop
iteration late: the source it takes over from stopped writing before it started, so whatever
that one wrote last is already readable and gets fed first, even when the monitor fell behind
and both sockets became readable together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from migrator.testguest.errors import SerialSourceError
from migrator.testguest.heartbeat_log import HeartbeatLog, HeartbeatReport

#: A unix socket path, or a TCP (host, port).
SerialAddress = Path | tuple[str, int]


class _SerialProtocol(asyncio.Protocol):
    def __init__(self, monitor: HeartbeatMonitor, name: str) -> None:
        self._monitor = monitor
        self._name = name
        self.transport: asyncio.BaseTransport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._monitor._received(self._name, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._monitor._lost(self._name)
        self.lost.set_result(None)


class HeartbeatMonitor:
    """Follows serial sockets and records when each heartbeat arrived.

    Create it inside the running event loop. Use it as an async context manager, or call
    :meth:`close`; either way every connection is closed and waited for.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = HeartbeatLog()
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._change: asyncio.Future[None] = self._loop.create_future()
        self._protocols: list[_SerialProtocol] = []
        self._heard: set[str] = set()
        self._deferred: dict[str, int] = {}
        self._closed = False

    async def __aenter__(self) -> HeartbeatMonitor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def attach(self, address: SerialAddress, *, name: str) -> None:
        """Connect to the serial socket at ``address`` and follow it as source ``name``.

        Raises:
            SerialSourceError: the monitor is closed, the name is taken, or the socket does not
                accept the connection.
        """
        where = str(address) if isinstance(address, Path) else f"{address[0]}:{address[1]}"
        if self._closed:
            raise SerialSourceError("the heartbeat monitor is closed", path=where)
        self._log.add_source(name)
        protocol = _SerialProtocol(self, name)
        try:
            if isinstance(address, Path):
                await self._loop.create_unix_connection(lambda: protocol, str(address))
            else:
                await self._loop.create_connection(lambda: protocol, *address)
        except OSError as err:
            self._log.remove_source(name)
            raise SerialSourceError(
                f"cannot connect to serial socket {where}: {err.strerror or err}", path=where
            ) from err
        self._protocols.append(protocol)

    def report(self) -> HeartbeatReport:
        """What has arrived so far."""
        return self._log.report()

    async def wait_for(self, predicate: Callable[[HeartbeatReport], bool]) -> HeartbeatReport:
        """Wait until ``predicate`` holds for the report, and return that report.

        Bound the wait with ``asyncio.timeout``.

        Raises:
            SerialSourceError: every attached source has closed and the predicate is false.
        """
        while True:
            report = self._log.report()
            if predicate(report):
                return report
            if self._log.all_closed:
                raise SerialSourceError(
                    "every serial source has closed before the awaited output came", path=None
                )
            await asyncio.shield(self._change)

    async def close(self) -> None:
        """Stop following every source and wait until each connection is closed."""
        self._closed = True
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        await asyncio.gather(*(protocol.lost for protocol in self._protocols))

    def _received(self, name: str, data: bytes) -> None:
        at = self._clock()
        if name in self._heard and not self._deferred.get(name):
            self._feed(name, data, at)
            return
        self._heard.add(name)
        self._deferred[name] = self._deferred.get(name, 0) + 1
        self._loop.call_soon(self._feed_deferred, name, data, at)

    def _feed_deferred(self, name: str, data: bytes, at: float) -> None:
        self._deferred[name] -= 1
        self._feed(name, data, at)

    def _feed(self, name: str, data: bytes, at: float) -> None:
        self._log.feed(name, data, at=at)
        self._notify()

    def _lost(self, name: str) -> None:
        self._log.close_source(name)
        self._notify()

    def _notify(self) -> None:
        self._change.set_result(None)
        self._change = self._loop.create_future()
