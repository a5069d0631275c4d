"""One QMP connection to one QEMU, through :class:`qemu.qmp.QMPClient`.

Commands go one at a time, so that a file descriptor sent with ``SCM_RIGHTS`` can never
overtake the bytes of a command still in the transport's buffer. Events go straight from the
reader to a callback: ``EventListener`` queues and also keeps every event in an unbounded
history, which a daemon's long-lived connection must not do, so the client's default
all-events listener is told to accept nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from qemu.qmp import EventListener, QMPClient, QMPError, Runstate
from qemu.qmp.message import Message

from migrator.drivers.base import InstanceEvent
from migrator.drivers.qemu.qmpmap import RELAYED_EVENTS, instance_event

_LOG = logging.getLogger(__name__)


def _accept_nothing(_event: Message) -> bool:
    return False


class _EventRelay(EventListener):
    """Hands each relayed event to ``deliver`` as it arrives: no queue, no history."""

    def __init__(self, deliver: Callable[[InstanceEvent], None]) -> None:
        super().__init__(RELAYED_EVENTS)
        self._deliver = deliver

    async def put(self, event: Message) -> None:
        if not self.accept(event):
            return
        mapped = instance_event(event)
        if mapped is None:
            _LOG.warning("ignoring QMP event with unknown data: %s", event)
        else:
            self._deliver(mapped)


class Monitor:
    """A QMP connection; ``name`` names its logger (``qemu.qmp.qmp_client.NAME``)."""

    def __init__(self, name: str, *, on_event: Callable[[InstanceEvent], None]) -> None:
        self._client = QMPClient(name)
        self._client.events.event_filter = _accept_nothing
        self._client.register_listener(_EventRelay(on_event))
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return repr(self._client)

    @property
    def connected(self) -> bool:
        return self._client.runstate is Runstate.RUNNING

    async def connect(self, path: str) -> None:
        """Connect to the QMP socket at ``path`` and negotiate.

        Raises:
            QMPError: the connection or the negotiation failed.
        """
        await self._client.connect(path)

    async def execute(self, command: str, arguments: Mapping[str, object] | None = None) -> object:
        """Run ``command``; its ``return`` value.

        Raises:
            qemu.qmp.ExecuteError: QEMU refused it.
            QMPError: the connection is down or broke before the reply.
        """
        async with self._lock:
            return await self._client.execute(command, arguments)

    async def pass_fd(self, fd: int, name: str) -> None:
        """Send ``fd`` to QEMU and name it ``name`` there (``getfd``); ``fd`` stays open here.

        Raises:
            QMPError: as :meth:`execute`.
        """
        async with self._lock:
            self._client.send_fd_scm(fd)
            await self._client.execute("getfd", {"fdname": name})

    async def wait_closed(self) -> None:
        """Return once the connection is down (QEMU hung up, or :meth:`close`)."""
        while self._client.runstate is Runstate.RUNNING:
            await self._client.runstate_changed()

    async def close(self) -> None:
        """Disconnect. A connection that broke re-raises its error here: nothing is left to
        close then, so that error is dropped."""
        if self._client.runstate is Runstate.IDLE:
            return
        with contextlib.suppress(QMPError, EOFError, OSError):
            await self._client.disconnect()
