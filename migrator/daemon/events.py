"""The daemon's event subscribers: connections that asked for ``events.subscribe`` and get
``event.lifecycle`` and ``event.job`` notifications, in order.

Each subscriber has its own bounded queue and sender, so a slow one delays nobody else; one
that lets more than ``queue_limit`` notifications pile up is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from migrator.client.client import JOB_NOTIFICATION, LIFECYCLE_NOTIFICATION
from migrator.client.types import JobEvent, LifecycleEvent, LifecycleKind
from transport import Connection, TransportError

log = logging.getLogger("migrator.daemon.events")

#: Notifications waiting for one subscriber before it is disconnected.
QUEUE_LIMIT = 1024

_Notification = tuple[str, dict[str, Any]]


class _Subscriber:
    def __init__(self, connection: Connection, *, queue_limit: int) -> None:
        self.connection = connection
        self.queue: asyncio.Queue[_Notification] = asyncio.Queue(queue_limit)
        self.sender = asyncio.create_task(self._send())
        self.follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        """Stop sending once the connection closed."""
        await self.connection.wait_closed()
        self.sender.cancel()

    async def _send(self) -> None:
        while True:
            method, params = await self.queue.get()
            try:
                await self.connection.notify(method, params)
            except TransportError as exc:
                log.debug("subscriber %s is gone: %s", self.connection.label, exc)
                return


class EventHub:
    """Publishes lifecycle and job events to every subscribed connection."""

    def __init__(self, *, queue_limit: int = QUEUE_LIMIT) -> None:
        self._queue_limit = queue_limit
        self._subscribers: dict[Connection, _Subscriber] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def listening(self) -> bool:
        """Whether anybody is subscribed."""
        return bool(self._subscribers)

    def subscribe(self, connection: Connection) -> None:
        """Send every later event to ``connection`` until it closes (again: nothing new)."""
        if connection in self._subscribers:
            return
        subscriber = _Subscriber(connection, queue_limit=self._queue_limit)
        self._subscribers[connection] = subscriber
        subscriber.sender.add_done_callback(lambda _: self._forget(connection))

    def lifecycle(self, domain: str, kind: LifecycleKind, detail: str = "") -> None:
        """Publish that ``kind`` happened to ``domain``."""
        log.info("%s %s (%s)", domain, kind.value, detail or "-", extra={"domain": domain})
        self._publish(LIFECYCLE_NOTIFICATION, LifecycleEvent(domain, kind, detail).to_json())

    def job(self, event: JobEvent) -> None:
        """Publish a job's progress."""
        self._publish(JOB_NOTIFICATION, event.to_json())

    async def close(self) -> None:
        """Stop sending (the connections are closed by their server)."""
        subscribers = list(self._subscribers.values())
        tasks = [task for s in subscribers for task in (s.sender, s.follower)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._subscribers.clear()

    def _publish(self, method: str, params: dict[str, Any]) -> None:
        for subscriber in list(self._subscribers.values()):
            try:
                subscriber.queue.put_nowait((method, params))
            except asyncio.QueueFull:
                log.warning(
                    "disconnecting subscriber %s: more than %d events waiting",
                    subscriber.connection.label,
                    self._queue_limit,
                )
                subscriber.sender.cancel()
                self._closing.add(closing := asyncio.create_task(subscriber.connection.close()))
                closing.add_done_callback(self._closing.discard)

    def _forget(self, connection: Connection) -> None:
        self._subscribers.pop(connection, None)
