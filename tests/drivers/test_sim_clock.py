"""The virtual clock: time moves only when every actor sleeps, to the earliest wake-up."""

from __future__ import annotations

import asyncio

from migrator.drivers.sim.clock import Alarm, VirtualClock


async def napper(clock: VirtualClock, name: str, *, naps: list[float], log: list[tuple]) -> None:
    with clock.actor():
        for nap in naps:
            await clock.sleep(nap)
            log.append((clock.now_ms, name))


async def test_actors_wake_in_virtual_time_order() -> None:
    clock = VirtualClock()
    log: list[tuple] = []
    await asyncio.gather(
        napper(clock, "a", naps=[300, 300], log=log),
        napper(clock, "b", naps=[200, 500, 10], log=log),
    )
    assert log == [(200, "b"), (300, "a"), (600, "a"), (700, "b"), (710, "b")]
    assert clock.now_ms == 710


async def test_time_waits_for_an_actor_that_is_busy() -> None:
    clock = VirtualClock()
    log: list[tuple] = []
    busy_until = asyncio.Event()

    async def busy() -> None:
        with clock.actor():
            await busy_until.wait()  # not sleeping on the clock: time must wait
            log.append((clock.now_ms, "busy"))

    task = asyncio.create_task(busy())
    sleeper = asyncio.create_task(napper(clock, "sleeper", naps=[1000], log=log))
    for _ in range(10):
        await asyncio.sleep(0)
    assert clock.now_ms == 0 and log == []
    busy_until.set()
    await asyncio.gather(task, sleeper)
    assert log == [(0, "busy"), (1000, "sleeper")]


async def test_an_alarm_wakes_a_sleeper_early() -> None:
    clock = VirtualClock()
    alarm = Alarm(clock)
    log: list[tuple] = []

    async def long_nap() -> None:
        with clock.actor():
            await clock.sleep(10_000, alarm=alarm)
            log.append((clock.now_ms, "woken"))

    async def waker() -> None:
        with clock.actor():
            await clock.sleep(250)
            alarm.ring()
            log.append((clock.now_ms, "rang"))

    await asyncio.gather(long_nap(), waker())
    assert log == [(250, "rang"), (250, "woken")]
    alarm.ring()  # nobody sleeps on it any more: nothing happens
    assert clock.now_ms == 250


async def test_a_sleeper_without_deadline_holds_no_time_back() -> None:
    clock = VirtualClock()
    alarm = Alarm(clock)
    log: list[tuple] = []

    async def blocked() -> None:
        with clock.actor():
            await clock.sleep(None, alarm=alarm)
            log.append((clock.now_ms, "unblocked"))

    task = asyncio.create_task(blocked())
    await napper(clock, "other", naps=[5000], log=log)
    alarm.ring()
    await task
    assert log == [(5000, "other"), (5000, "unblocked")]


async def test_timers_fire_only_as_actors_move_time() -> None:
    clock = VirtualClock()
    fired: list[float] = []
    clock.call_later(100, lambda: fired.append(clock.now_ms))
    for _ in range(5):
        await asyncio.sleep(0)
    assert fired == [] and clock.now_ms == 0
    log: list[tuple] = []
    await napper(clock, "mover", naps=[150], log=log)
    assert fired == [100]
    assert log == [(150, "mover")]


async def test_a_cancelled_sleeper_stops_counting() -> None:
    clock = VirtualClock()
    log: list[tuple] = []
    blocker = asyncio.Event()

    async def hold() -> None:
        with clock.actor():
            await blocker.wait()

    holder = asyncio.create_task(hold())  # keeps time still while the sleeper is cancelled
    task = asyncio.create_task(napper(clock, "cancelled", naps=[5], log=log))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    blocker.set()
    await holder
    async with asyncio.timeout(5):  # a miscounted sleeper would stop time for good
        await napper(clock, "next", naps=[10], log=log)
    assert log == [(10, "next")]
