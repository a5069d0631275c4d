"""Virtual time: milliseconds that pass only when the simulation lets them.

*Actors* are the coroutines that make time pass: a running migration, a caller of
:meth:`VirtualClock.sleep` inside :meth:`VirtualClock.actor`. Once every actor sleeps, the
clock jumps to the earliest wake-up, so an hour of simulated migration costs no wall time and
two runs with the same inputs see the same timestamps. Everything else (the engine under
test, waiting for events) never holds time back: it runs between steps, at the virtual time
of the last step.

An actor that waits for something other than time (a migration paused until someone acts)
sleeps without a deadline; it then neither holds time back nor pushes it forward. An
:class:`Alarm` wakes a sleeping actor early, when an input changed its plans.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class _Sleep:
    """One sleeping actor: ``timed`` sleeps count as asleep; untimed ones leave the actors."""

    __slots__ = ("future", "timed")

    def __init__(self, future: asyncio.Future[None], *, timed: bool) -> None:
        self.future = future
        self.timed = timed


class Alarm:
    """Wakes the actor sleeping on it before its deadline. Ringing an alarm that nobody
    sleeps on does nothing: the actor sees the change when it next looks."""

    __slots__ = ("_clock", "_sleep")

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._sleep: _Sleep | None = None

    def ring(self) -> None:
        if self._sleep is not None:
            self._clock._wake(self._sleep)


_Entry = tuple[float, int, "_Sleep | Callable[[], None]"]


class VirtualClock:
    """Simulated milliseconds, shared by every host of one world."""

    def __init__(self) -> None:
        self._now = 0.0
        self._timers: list[_Entry] = []
        self._order = itertools.count()
        self._actors = 0
        self._sleeping = 0
        self._advance_scheduled = False

    @property
    def now_ms(self) -> float:
        return self._now

    def join(self) -> None:
        """Count the caller as an actor until :meth:`leave`: time waits for it."""
        self._actors += 1

    def leave(self) -> None:
        self._actors -= 1
        self._schedule_advance()

    @contextmanager
    def actor(self) -> Iterator[None]:
        """Be an actor for the duration of the block."""
        self.join()
        try:
            yield
        finally:
            self.leave()

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` when time reaches now + ``delay_ms`` (only actors move time)."""
        heapq.heappush(self._timers, (self._now + delay_ms, next(self._order), callback))
        self._schedule_advance()

    async def sleep(self, delay_ms: float | None, *, alarm: Alarm | None = None) -> None:
        """Let ``delay_ms`` of virtual time pass for the calling actor, or until ``alarm``
        rings; with ``None``, only the alarm (or cancellation) ends the sleep."""
        sleep = _Sleep(asyncio.get_running_loop().create_future(), timed=delay_ms is not None)
        if delay_ms is None:
            self._actors -= 1
        else:
            heapq.heappush(self._timers, (self._now + delay_ms, next(self._order), sleep))
            self._sleeping += 1
        if alarm is not None:
            alarm._sleep = sleep
        self._schedule_advance()
        try:
            await sleep.future
        finally:
            if alarm is not None:
                alarm._sleep = None
            if sleep.future.cancelled():
                self._settle(sleep)

    def _wake(self, sleep: _Sleep) -> None:
        if not sleep.future.done():
            sleep.future.set_result(None)
            self._settle(sleep)

    def _settle(self, sleep: _Sleep) -> None:
        """Count a woken (or cancelled) sleeper as a running actor again."""
        if sleep.timed:
            self._sleeping -= 1
        else:
            self._actors += 1

    def _schedule_advance(self) -> None:
        # Deferred by one loop turn, so that what the last step made ready runs first.
        if not self._advance_scheduled and self._all_asleep():
            self._advance_scheduled = True
            asyncio.get_running_loop().call_soon(self._advance)

    def _all_asleep(self) -> bool:
        return self._actors > 0 and self._sleeping == self._actors

    def _advance(self) -> None:
        self._advance_scheduled = False
        while self._timers and self._all_asleep():
            due, _, entry = heapq.heappop(self._timers)
            if isinstance(entry, _Sleep):
                if entry.future.done():
                    continue
                self._now = max(self._now, due)
                self._wake(entry)
            else:
                self._now = max(self._now, due)
                entry()
