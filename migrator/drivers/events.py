"""Event subscriptions of one hypervisor instance: scoped, ordered, lossless."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from migrator.drivers.base import InstanceEvent


class _Stream:
    """The events of one subscription; it ends after the process exited."""

    def __init__(self, *, closed: bool) -> None:
        self._events: deque[InstanceEvent] = deque()
        self._closed = closed
        self._waiter: asyncio.Future[None] | None = None

    def put(self, event: InstanceEvent) -> None:
        self._events.append(event)
        self._wake()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> InstanceEvent:
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._events.popleft()


class EventHub:
    """Hands every event to every open subscription."""

    def __init__(self) -> None:
        self._streams: list[_Stream] = []
        self._closed = False

    def publish(self, event: InstanceEvent) -> None:
        for stream in self._streams:
            stream.put(event)

    def close(self) -> None:
        """No more events: every subscription ends once it has read what it got."""
        self._closed = True
        for stream in self._streams:
            stream.close()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[InstanceEvent]]:
        stream = _Stream(closed=self._closed)
        self._streams.append(stream)
        try:
            yield stream
        finally:
            self._streams.remove(stream)
