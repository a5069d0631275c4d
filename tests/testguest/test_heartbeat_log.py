"""Heartbeat statistics from serial bytes, fed by hand (no sockets, no clock)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.testguest.errors import SerialSourceError
from migrator.testguest.heartbeat_log import (
    MAX_LINE_BYTES,
    MAX_RECORDED,
    AnomalyKind,
    HeartbeatLog,
    SequenceAnomaly,
)


def heartbeats(first: int, last: int) -> bytes:
    return b"".join(b"H%x\n" % seq for seq in range(first, last + 1))


def log_with(*names: str) -> HeartbeatLog:
    log = HeartbeatLog()
    for name in names:
        log.add_source(name)
    return log


def test_continuous_heartbeats() -> None:
    log = log_with("vm")
    log.feed("vm", heartbeats(0, 99), at=1.0)
    report = log.report()
    assert (report.heartbeats, report.last_seq, report.anomaly_count) == (100, 99, 0)
    summary = report.source("vm")
    assert (summary.heartbeats, summary.first_seq, summary.last_seq) == (100, 0, 99)
    assert summary.switchover_gap is None
    assert not summary.closed


def test_largest_gap_between_arrivals() -> None:
    log = log_with("vm")
    for seq, at in enumerate([0.0, 0.001, 0.002, 0.050, 0.051, 0.060]):
        log.feed("vm", b"H%x\n" % seq, at=at)
    report = log.report()
    assert report.largest_gap == pytest.approx(0.048)
    assert report.largest_gap_before_seq == 3


def test_missing_repeated_and_malformed_lines_are_anomalies() -> None:
    log = log_with("vm")
    log.feed("vm", b"H0\nH1\nH4\nH4\nH2\nnoise\nH5\n", at=0.0)
    report = log.report()
    assert report.anomalies == (
        SequenceAnomaly(AnomalyKind.GAP, "vm", 4, 2, b"H4"),
        SequenceAnomaly(AnomalyKind.REPEAT, "vm", 4, 5, b"H4"),
        SequenceAnomaly(AnomalyKind.REPEAT, "vm", 2, 5, b"H2"),
        SequenceAnomaly(AnomalyKind.MALFORMED, "vm", None, None, b"noise"),
    )
    assert (report.anomaly_count, report.heartbeats, report.last_seq) == (4, 6, 5)


def test_verification_lines() -> None:
    log = log_with("vm")
    log.feed("vm", b"H0\nOK 1\nBAD 1f\nBAD 20\nH1\nOK 2\n", at=0.0)
    report = log.report()
    assert (report.verified_sweeps, report.bad_pages, report.bad_page_reports) == (
        2,
        (0x1F, 0x20),
        2,
    )
    assert report.anomaly_count == 0


@given(st.lists(st.integers(min_value=0, max_value=200), max_size=10))
def test_chunking_does_not_matter(cuts: list[int]) -> None:
    stream = heartbeats(0, 50) + b"OK 1\n"
    log = log_with("vm")
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        log.feed("vm", stream[start:cut], at=0.0)
        start = max(start, cut)
    report = log.report()
    assert (report.heartbeats, report.last_seq, report.anomaly_count, report.verified_sweeps) == (
        51,
        50,
        0,
        1,
    )


@given(st.integers(min_value=0, max_value=len(heartbeats(0, 40))))
def test_a_line_cut_by_migration_is_joined_across_sources(cut: int) -> None:
    stream = heartbeats(0, 40)
    log = log_with("source", "destination")
    log.feed("source", stream[:cut], at=1.0)
    log.feed("destination", stream[cut:], at=2.0)
    report = log.report()
    assert (report.heartbeats, report.last_seq, report.anomaly_count) == (41, 40, 0)
    source, destination = report.source("source"), report.source("destination")
    assert source.heartbeats + destination.heartbeats == 41
    if source.last_seq is not None and destination.first_seq is not None:
        assert destination.first_seq == source.last_seq + 1
        assert destination.switchover_gap == pytest.approx(1.0)
        assert report.largest_gap == pytest.approx(1.0)


def test_two_running_copies_show_as_repeats() -> None:
    log = log_with("a", "b")
    log.feed("a", heartbeats(0, 9), at=0.0)
    log.feed("b", heartbeats(5, 9), at=0.1)
    report = log.report()
    assert report.anomaly_count == 5
    assert {anomaly.kind for anomaly in report.anomalies} == {AnomalyKind.REPEAT}
    assert {anomaly.source for anomaly in report.anomalies} == {"b"}


def test_memory_stays_bounded() -> None:
    log = log_with("vm")
    log.feed("vm", b"junk\n" * (MAX_RECORDED * 3) + b"BAD 1\n" * (MAX_RECORDED * 3), at=0.0)
    log.feed("vm", b"x" * (MAX_LINE_BYTES * 4), at=0.0)  # no newline ever comes
    report = log.report()
    assert len(report.anomalies) == MAX_RECORDED
    assert report.anomaly_count == MAX_RECORDED * 3 + 1
    assert len(report.bad_pages) == MAX_RECORDED
    assert report.bad_page_reports == MAX_RECORDED * 3


def test_sources_open_and_close() -> None:
    log = HeartbeatLog()
    assert not log.all_closed
    log.add_source("a")
    log.add_source("b")
    log.close_source("a")
    assert not log.all_closed
    log.close_source("b")
    assert log.all_closed
    assert log.report().source("a").closed


def test_unknown_and_duplicate_sources_are_refused() -> None:
    log = log_with("a")
    with pytest.raises(SerialSourceError, match="already attached"):
        log.add_source("a")
    with pytest.raises(SerialSourceError, match="no serial source named 'b'"):
        log.feed("b", b"H0\n", at=0.0)
    with pytest.raises(SerialSourceError, match="no serial source named 'b'"):
        log.close_source("b")
    with pytest.raises(SerialSourceError, match="no serial source named 'b'"):
        log.report().source("b")
