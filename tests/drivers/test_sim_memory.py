"""The pure memory model: auto-converge steps, xbzrle encoding, bandwidth, rate periods."""

from __future__ import annotations

import pytest

from migrator.drivers.sim.memory import (
    AutoConverge,
    Encoding,
    Flow,
    MemoryCopy,
    ThrottleSettings,
    bandwidth,
    xbzrle_encoding,
)

MiB = 1024 * 1024
QEMU_DEFAULTS = ThrottleSettings(
    initial=20, increment=10, maximum=99, trigger_threshold=50, tailslow=False
)


def throttle_after(periods: list[tuple[float, float]], settings: ThrottleSettings) -> list[int]:
    """The throttle after each (dirtied, sent) period."""
    converge = AutoConverge()
    seen = []
    for dirty, sent in periods:
        converge.on_period(dirty_bytes=dirty, sent_bytes=sent, settings=settings)
        seen.append(converge.percentage)
    return seen


def test_throttling_starts_on_the_second_high_period_and_steps_up_every_second() -> None:
    high, low = (60.0, 100.0), (50.0, 100.0)  # 60 % and exactly 50 % of what was sent
    assert throttle_after([high, low, high, high, high, high, high], QEMU_DEFAULTS) == [
        0,
        0,
        20,
        20,
        30,
        30,
        40,
    ]


def test_throttling_stops_at_its_maximum() -> None:
    settings = ThrottleSettings(
        initial=50, increment=30, maximum=90, trigger_threshold=50, tailslow=False
    )
    assert throttle_after([(1.0, 1.0)] * 6, settings) == [0, 50, 50, 80, 80, 90]


def test_tailslow_steps_only_as_far_as_the_dirty_rate_needs() -> None:
    settings = ThrottleSettings(
        initial=20, increment=30, maximum=99, trigger_threshold=50, tailslow=True
    )
    # At 20 %, 80 % of the CPU runs; dirtying 64 where 50 is allowed wants 80 * 50 / 64
    # = 62.5 % running, a step of int(80 - 62.5) = 17, below the increment of 30.
    assert throttle_after([(64.0, 100.0)] * 4, settings) == [0, 20, 20, 37]


def test_a_throttled_guest_dirties_in_proportion() -> None:
    converge = AutoConverge()
    converge.percentage = 70
    assert converge.scale(1000.0) == pytest.approx(300.0)
    converge.stop()
    assert converge.scale(1000.0) == 1000.0


@pytest.mark.parametrize(
    ("pass_number", "cache", "expected"),
    [
        (1, 64 * MiB, Encoding(0.0, 0.5)),
        (2, 64 * MiB, Encoding(0.0, 0.5)),
        (3, 64 * MiB, Encoding(1.0, 0.5)),
        (7, 16 * MiB, Encoding(0.25, 0.5)),
    ],
)
def test_xbzrle_hits_from_the_third_pass_as_far_as_the_cache_reaches(
    pass_number: int, cache: int, expected: Encoding
) -> None:
    encoding = xbzrle_encoding(
        pass_number=pass_number, cache_bytes=cache, working_set_bytes=64 * MiB, encoded_ratio=0.5
    )
    assert encoding == expected


def test_encoding_shrinks_what_goes_on_the_wire_unless_it_overflows() -> None:
    assert Encoding(0.5, 0.25).wire_ratio == pytest.approx(0.625)
    assert Encoding(1.0, 1.5).wire_ratio == 1.0


@pytest.mark.parametrize(
    ("stream", "channels", "limit", "expected"),
    [
        (None, 1, 0, 1000.0),
        (None, 1, 300, 300.0),
        (200, 1, 0, 200.0),
        (200, 4, 0, 800.0),
        (200, 8, 0, 1000.0),
        (200, 8, 500, 500.0),
    ],
)
def test_bandwidth_is_the_tightest_limit(
    stream: int | None, channels: int, limit: int, expected: float
) -> None:
    got = bandwidth(
        link_bytes_s=1000, stream_bytes_s=stream, channels=channels, limit_bytes_s=limit
    )
    assert got == expected


def test_rate_periods_close_only_after_a_second() -> None:
    copy = MemoryCopy(
        memory_bytes=100 * MiB, nonzero_bytes=100 * MiB, working_set_bytes=8 * MiB, now_ms=0
    )
    flow = Flow(wire_bytes_s=200 * MiB, dirty_bytes_s=4 * MiB)
    copy.advance(0.5, flow)
    assert copy.pending == 0
    assert copy.dirty == 2 * MiB
    assert copy.sync(500) is None  # a half-second period stays open
    copy.advance(0.01, flow)  # sends the 2 MiB of pass 2 while 0.04 MiB get dirty
    assert copy.pending == 0
    period = copy.sync(1020)
    assert period is not None
    assert period.dirty_bytes == pytest.approx(2 * MiB + 0.01 * 4 * MiB)
    assert period.sent_bytes == pytest.approx(100 * MiB + 2 * MiB)
    assert copy.dirty_pages_rate == pytest.approx(period.dirty_bytes / 4096 / 1.02)
    assert copy.pass_number == 3


def test_the_first_pass_walks_zero_pages_without_sending_them() -> None:
    copy = MemoryCopy(memory_bytes=100 * MiB, nonzero_bytes=25 * MiB, working_set_bytes=0, now_ms=0)
    assert copy.remaining_bytes == 100 * MiB
    copy.advance(0.5, Flow(wire_bytes_s=10 * MiB))
    assert copy.remaining_bytes == pytest.approx(80 * MiB)
    assert copy.duplicate_pages == pytest.approx(75 * MiB / 4096 * 0.2)
    assert copy.transferred == 5 * MiB
