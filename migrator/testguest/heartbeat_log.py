"""Turns the guest's serial output, from one or more QEMU processes, into heartbeat statistics.

Sans-IO: callers feed bytes with their arrival time; :class:`HeartbeatLog` never reads a clock
or a socket.

During a live migration the guest's serial output moves from the source QEMU to the
destination. The guest may be stopped in the middle of a line, so the destination's first bytes
can complete a line that the source began: when a source produces its first bytes, the
unfinished line of the source that spoke last is handed over to it. (This needs the source's
last bytes fed before the destination's first ones; the asyncio monitor sees to that.) After
that each source's lines are its own, so two copies of the guest running at once show up as
repeated sequence numbers rather than as garbled lines.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from migrator.testguest.errors import SerialSourceError
from migrator.testguest.protocol import LineKind, parse_line

#: Longest line kept while waiting for its newline; longer ones are reported as malformed.
MAX_LINE_BYTES = 64
#: How many anomalies and bad-page reports a report lists (all are counted).
MAX_RECORDED = 100


class AnomalyKind(enum.Enum):
    """What is wrong with a line."""

    GAP = enum.auto()  # heartbeats are missing before this one
    REPEAT = enum.auto()  # this sequence number is not above the highest seen: a duplicate or late
    MALFORMED = enum.auto()  # not a guest line


@dataclass(frozen=True)
class SequenceAnomaly:
    """One unexpected line.

    ``seq`` and ``expected`` are the heartbeat's number and the number that should have come
    (None for malformed lines); ``line`` is the raw line, cut to ``MAX_LINE_BYTES``.
    """

    kind: AnomalyKind
    source: str
    seq: int | None
    expected: int | None
    line: bytes


@dataclass(frozen=True)
class SourceSummary:
    """What one serial source has delivered.

    ``switchover_gap`` is the time in seconds from the last heartbeat of any other source to
    this source's first one: for a migration destination, the pause at the switchover. None
    until the source delivers a heartbeat, and for the very first heartbeat of the log.
    """

    name: str
    heartbeats: int
    first_seq: int | None
    last_seq: int | None
    switchover_gap: float | None
    closed: bool


@dataclass(frozen=True)
class HeartbeatReport:
    """Everything seen so far, over all sources.

    ``largest_gap`` is the longest time in seconds between two consecutive heartbeat arrivals
    (whatever their numbers): the longest pause the guest's heartbeat showed.
    ``largest_gap_before_seq`` is the number of the heartbeat that ended it.
    """

    heartbeats: int
    last_seq: int | None
    largest_gap: float
    largest_gap_before_seq: int | None
    anomalies: tuple[SequenceAnomaly, ...]
    anomaly_count: int
    verified_sweeps: int
    bad_pages: tuple[int, ...]
    bad_page_reports: int
    sources: tuple[SourceSummary, ...]

    def source(self, name: str) -> SourceSummary:
        """The summary of source ``name``.

        Raises:
            SerialSourceError: there is no such source.
        """
        for summary in self.sources:
            if summary.name == name:
                return summary
        raise SerialSourceError(f"no serial source named {name!r}", path=None)


@dataclass
class _Source:
    name: str
    pending: bytearray = field(default_factory=bytearray)
    started: bool = False
    closed: bool = False
    heartbeats: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    switchover_gap: float | None = None

    def summary(self) -> SourceSummary:
        return SourceSummary(
            self.name,
            self.heartbeats,
            self.first_seq,
            self.last_seq,
            self.switchover_gap,
            self.closed,
        )


class HeartbeatLog:
    """Accumulates lines from named sources; memory stays bounded however long it runs."""

    def __init__(self) -> None:
        self._sources: dict[str, _Source] = {}
        self._last_speaker: _Source | None = None
        self._heartbeats = 0
        self._last_seq: int | None = None
        self._last_arrival: float | None = None
        self._largest_gap = 0.0
        self._largest_gap_before_seq: int | None = None
        self._anomalies: list[SequenceAnomaly] = []
        self._anomaly_count = 0
        self._verified_sweeps = 0
        self._bad_pages: list[int] = []
        self._bad_page_reports = 0

    def add_source(self, name: str) -> None:
        """Register a source before feeding it.

        Raises:
            SerialSourceError: a source with this name exists already.
        """
        if name in self._sources:
            raise SerialSourceError(f"serial source {name!r} is already attached", path=None)
        self._sources[name] = _Source(name)

    def remove_source(self, name: str) -> None:
        """Forget a source that never delivered anything (its connection failed).

        Raises:
            SerialSourceError: there is no such source, or it has delivered bytes.
        """
        if self._source(name).started:
            raise SerialSourceError(f"serial source {name!r} has delivered output", path=None)
        del self._sources[name]

    def close_source(self, name: str) -> None:
        """Mark a source as finished: it will deliver nothing more.

        Raises:
            SerialSourceError: there is no such source.
        """
        self._source(name).closed = True

    @property
    def all_closed(self) -> bool:
        """True when there are sources and every one of them is closed."""
        return bool(self._sources) and all(source.closed for source in self._sources.values())

    def feed(self, name: str, data: bytes, *, at: float) -> None:
        """Take bytes that arrived from source ``name`` at time ``at`` (seconds).

        Raises:
            SerialSourceError: there is no such source.
        """
        source = self._source(name)
        if not data:
            return
        if not source.started:
            source.started = True
            speaker = self._last_speaker
            if speaker is not None and speaker.pending:
                source.pending[:0] = speaker.pending
                speaker.pending.clear()
        self._last_speaker = source
        source.pending += data
        *lines, rest = source.pending.split(b"\n")
        source.pending = bytearray(rest)
        for line in lines:
            self._line(source, bytes(line), at)
        if len(source.pending) > MAX_LINE_BYTES:
            self._anomaly(AnomalyKind.MALFORMED, source, None, None, bytes(source.pending))
            source.pending.clear()

    def report(self) -> HeartbeatReport:
        """A snapshot of the statistics."""
        return HeartbeatReport(
            heartbeats=self._heartbeats,
            last_seq=self._last_seq,
            largest_gap=self._largest_gap,
            largest_gap_before_seq=self._largest_gap_before_seq,
            anomalies=tuple(self._anomalies),
            anomaly_count=self._anomaly_count,
            verified_sweeps=self._verified_sweeps,
            bad_pages=tuple(self._bad_pages),
            bad_page_reports=self._bad_page_reports,
            sources=tuple(source.summary() for source in self._sources.values()),
        )

    def _source(self, name: str) -> _Source:
        try:
            return self._sources[name]
        except KeyError:
            raise SerialSourceError(f"no serial source named {name!r}", path=None) from None

    def _line(self, source: _Source, line: bytes, at: float) -> None:
        parsed = parse_line(line)
        if parsed is None:
            self._anomaly(AnomalyKind.MALFORMED, source, None, None, line)
        elif parsed.kind is LineKind.HEARTBEAT:
            self._heartbeat(source, parsed.value, at, line)
        elif parsed.kind is LineKind.VERIFIED:
            self._verified_sweeps += 1
        else:
            self._bad_page_reports += 1
            if len(self._bad_pages) < MAX_RECORDED:
                self._bad_pages.append(parsed.value)

    def _heartbeat(self, source: _Source, seq: int, at: float, line: bytes) -> None:
        self._heartbeats += 1
        source.heartbeats += 1
        if source.first_seq is None:
            source.first_seq = seq
            if self._last_arrival is not None:
                source.switchover_gap = at - self._last_arrival
        source.last_seq = seq
        if self._last_arrival is not None and at - self._last_arrival > self._largest_gap:
            self._largest_gap = at - self._last_arrival
            self._largest_gap_before_seq = seq
        self._last_arrival = at
        last = self._last_seq
        if last is not None and seq != last + 1:
            kind = AnomalyKind.GAP if seq > last + 1 else AnomalyKind.REPEAT
            self._anomaly(kind, source, seq, last + 1, line)
        self._last_seq = seq if last is None else max(last, seq)

    def _anomaly(
        self,
        kind: AnomalyKind,
        source: _Source,
        seq: int | None,
        expected: int | None,
        line: bytes,
    ) -> None:
        self._anomaly_count += 1
        if len(self._anomalies) < MAX_RECORDED:
            self._anomalies.append(
                SequenceAnomaly(kind, source.name, seq, expected, line[:MAX_LINE_BYTES])
            )
