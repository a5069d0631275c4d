"""The memory model of a simulated migration: what is left to send, what the guest dirties
meanwhile, and QEMU's RAM counters. Pure arithmetic; the migration task supplies time.

Pre-copy runs in passes, as QEMU's does. Pass 1 sends every non-zero page (zero pages are
only counted, as ``duplicate``); each later pass sends what the guest dirtied during the pass
before, never more than its working set. A pass ends with a dirty-bitmap sync, which is what
``dirty_sync_count`` counts: it is the number of the pass in progress. Inside a step the
rates are constant, so advancing by any amount of time is exact.

Bandwidth and compression are effects on size and speed: multifd multiplies the per-stream
limit by the channel count; xbzrle shrinks the pages it finds in its cache (see
:func:`xbzrle_encoding`); auto-converge scales the dirty rate down (:class:`AutoConverge`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from migrator.drivers.sim.options import PAGE_SIZE

#: QEMU recomputes rates, and decides on throttling, once a period is longer than this.
RATE_PERIOD_MS = 1000.0


@dataclass(frozen=True)
class Encoding:
    """How one pass's pages go on the wire: ``hit_fraction`` of them are xbzrle-encoded to
    ``encoded_ratio`` of a page; at a ratio of 1 or more the encoding overflows and those
    pages go out whole."""

    hit_fraction: float = 0.0
    encoded_ratio: float = 1.0

    @property
    def overflows(self) -> bool:
        return self.encoded_ratio >= 1.0

    @property
    def wire_ratio(self) -> float:
        """Bytes on the wire per byte of guest memory."""
        if self.overflows:
            return 1.0
        return self.hit_fraction * self.encoded_ratio + (1.0 - self.hit_fraction)


PLAIN = Encoding()


@dataclass(frozen=True)
class Flow:
    """What a step runs at, fixed until the next input.

    Attributes:
        wire_bytes_s: the bandwidth the migration gets.
        encoding: how the current pass's pages are encoded.
        xbzrle: whether the xbzrle capability is on (pages it cannot encode are misses).
        dirty_bytes_s: what the source guest writes (0 while its CPUs are stopped).
        fault_pages_s: post-copy only: pages the running destination guest touches.
    """

    wire_bytes_s: float
    encoding: Encoding = PLAIN
    xbzrle: bool = False
    dirty_bytes_s: float = 0.0
    fault_pages_s: float = 0.0


def bandwidth(
    *, link_bytes_s: int, stream_bytes_s: int | None, channels: int, limit_bytes_s: int
) -> float:
    """The bandwidth of a migration: the link, the streams (one per channel), and the rate
    limit (0: none)."""
    limits = [link_bytes_s]
    if stream_bytes_s is not None:
        limits.append(stream_bytes_s * channels)
    if limit_bytes_s > 0:
        limits.append(limit_bytes_s)
    return float(min(limits))


def xbzrle_encoding(
    *, pass_number: int, cache_bytes: int, working_set_bytes: int, encoded_ratio: float
) -> Encoding:
    """xbzrle for a pass. QEMU encodes nothing in the first (bulk) pass; the second fills
    the cache, so all its pages miss; from the third on, a page dirtied again is in the cache
    with probability min(1, cache / working set).

    >>> xbzrle_encoding(pass_number=3, cache_bytes=64, working_set_bytes=256, encoded_ratio=0.5)
    Encoding(hit_fraction=0.25, encoded_ratio=0.5)
    """
    if pass_number < 3:
        return Encoding(0.0, encoded_ratio)
    hit = 1.0 if working_set_bytes <= cache_bytes else cache_bytes / working_set_bytes
    return Encoding(hit, encoded_ratio)


@dataclass(frozen=True)
class ThrottleSettings:
    """The auto-converge parameters (QMP names: ``cpu-throttle-initial``,
    ``cpu-throttle-increment``, ``max-cpu-throttle``, ``throttle-trigger-threshold``,
    ``cpu-throttle-tailslow``)."""

    initial: int
    increment: int
    maximum: int
    trigger_threshold: int
    tailslow: bool


class AutoConverge:
    """QEMU's CPU throttling (``migration_trigger_throttle``, ``mig_throttle_guest_down``).

    At the end of each rate period, if the guest dirtied more than ``throttle-trigger-
    threshold`` percent of what was sent in the period, a counter goes up; the second time
    it does, throttling starts at ``cpu-throttle-initial`` percent or grows by
    ``cpu-throttle-increment`` (less with tail-slow), up to ``max-cpu-throttle``, and the
    counter starts again. A throttled guest dirties ``(100 - percentage)`` percent as fast.
    """

    def __init__(self) -> None:
        self.percentage = 0
        self._high_periods = 0

    def on_period(
        self, *, dirty_bytes: float, sent_bytes: float, settings: ThrottleSettings
    ) -> None:
        threshold = sent_bytes * settings.trigger_threshold / 100
        if dirty_bytes <= threshold:
            return
        self._high_periods += 1
        if self._high_periods < 2:
            return
        self._high_periods = 0
        if not self.percentage:
            self.percentage = settings.initial
            return
        step = settings.increment
        if settings.tailslow:
            running = 100 - self.percentage
            ideal = running * (threshold / dirty_bytes)
            step = min(int(running - ideal), settings.increment)
        self.percentage = min(self.percentage + step, settings.maximum)

    def scale(self, dirty_bytes_s: float) -> float:
        return dirty_bytes_s * (100 - self.percentage) / 100

    def stop(self) -> None:
        self.percentage = 0


@dataclass(frozen=True)
class Period:
    """One closed rate period: what the guest dirtied and what went on the wire in it."""

    dirty_bytes: float
    sent_bytes: float


class MemoryCopy:
    """The state of one guest's memory copy, with QEMU's RAM counters (as floats; the
    statistics round them)."""

    def __init__(
        self, *, memory_bytes: int, nonzero_bytes: int, working_set_bytes: int, now_ms: float
    ) -> None:
        self.memory_bytes = memory_bytes
        self.working_set_bytes = min(working_set_bytes, memory_bytes)
        self._nonzero = float(min(nonzero_bytes, memory_bytes))
        self._zero_pages = (memory_bytes - self._nonzero) / PAGE_SIZE
        #: ``dirty_sync_count``: 1 after the setup sync.
        self.pass_number = 1
        #: Guest bytes still to send in this pass.
        self.pending = self._nonzero
        #: Guest bytes dirtied since the last sync.
        self.dirty = 0.0
        self.transferred = 0.0
        self.normal_bytes = 0.0
        self.xbzrle_bytes = 0.0
        self.xbzrle_pages = 0.0
        self.xbzrle_misses = 0.0
        self.xbzrle_overflows = 0.0
        self.postcopy_requests = 0.0
        self.dirty_pages_rate = 0.0
        self._postcopy_total = 0.0
        self._period_start_ms = now_ms
        self._period_dirty = 0.0
        self._period_sent_from = 0.0

    # -- what QEMU reports ----------------------------------------------------------------

    @property
    def remaining_bytes(self) -> float:
        """``ram.remaining``: the dirty bitmap still to walk (in pass 1 it includes the
        zero pages not reached yet)."""
        if self.pass_number == 1 and self._nonzero:
            return self.pending * self.memory_bytes / self._nonzero
        return self.pending

    @property
    def duplicate_pages(self) -> float:
        if self.pass_number == 1 and self._nonzero:
            return self._zero_pages * (1.0 - self.pending / self._nonzero)
        return self._zero_pages

    # -- stepping ---------------------------------------------------------------------------

    def drain_seconds(self, flow: Flow) -> float:
        """Time to send what is pending at ``flow`` (infinite when nothing moves)."""
        if not self.pending:
            return 0.0
        if flow.wire_bytes_s <= 0:
            return math.inf
        return self.pending * flow.encoding.wire_ratio / flow.wire_bytes_s

    def advance(self, seconds: float, flow: Flow) -> None:
        """Let ``seconds`` pass at ``flow``."""
        if self.pending and flow.wire_bytes_s > 0:
            before = self.pending
            sent = min(before, seconds * flow.wire_bytes_s / flow.encoding.wire_ratio)
            if before - sent < 1.0:
                sent = before
            self.pending = before - sent
            self._count_sent(sent, flow)
            if flow.fault_pages_s and self._postcopy_total:
                # Touches land on pages not received yet in proportion to what is missing.
                missing = (before + self.pending) / 2 / self._postcopy_total
                self.postcopy_requests += flow.fault_pages_s * seconds * missing
        if flow.dirty_bytes_s:
            self.dirty = min(
                float(self.working_set_bytes), self.dirty + flow.dirty_bytes_s * seconds
            )

    def _count_sent(self, sent: float, flow: Flow) -> None:
        encoding = flow.encoding
        if not (flow.xbzrle and self.pass_number >= 2):
            self.normal_bytes += sent
            self.transferred += sent
            return
        pages = sent / PAGE_SIZE
        hits = pages * encoding.hit_fraction
        self.xbzrle_misses += pages - hits
        if encoding.overflows:
            self.xbzrle_overflows += hits
            self.normal_bytes += sent
            self.transferred += sent
            return
        encoded = hits * PAGE_SIZE * encoding.encoded_ratio
        whole = (pages - hits) * PAGE_SIZE
        self.xbzrle_pages += hits
        self.xbzrle_bytes += encoded
        self.normal_bytes += whole
        self.transferred += encoded + whole

    def sync(self, now_ms: float) -> Period | None:
        """End the pass: what the guest dirtied becomes the next pass. Returns the rate
        period that closed with this sync, if one did."""
        self._period_dirty += self.dirty
        self.pending = self.dirty
        self.dirty = 0.0
        self.pass_number += 1
        elapsed_ms = now_ms - self._period_start_ms
        if elapsed_ms <= RATE_PERIOD_MS:
            return None
        period = Period(
            dirty_bytes=self._period_dirty, sent_bytes=self.transferred - self._period_sent_from
        )
        self.dirty_pages_rate = self._period_dirty / PAGE_SIZE * 1000 / elapsed_ms
        self._period_start_ms = now_ms
        self._period_dirty = 0.0
        self._period_sent_from = self.transferred
        return period

    def begin_postcopy(self) -> None:
        """Switch to post-copy: everything not on the destination yet (the rest of this
        pass and what was dirtied since its start) is pulled from now on."""
        self.pending += self.dirty
        self.dirty = 0.0
        self.pass_number += 1
        self._postcopy_total = self.pending
