"""How commands print sizes, rates, durations and aligned fields; the progress bar's view
of a job's statistics (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cookies import JobStatistics
from migrator.cli.output import echo_fields, format_bytes, format_duration_ms, format_rate
from migrator.cli.progress import DEFAULT_PAGE_SIZE, ProgressView

MiB = 1 << 20


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.000 KiB"),
        (1536, "1.500 KiB"),
        (128 * MiB, "128.000 MiB"),
        (3 << 30, "3.000 GiB"),
        (1 << 70, "1024.000 EiB"),
    ],
)
def test_format_bytes(size: int, text: str) -> None:
    assert format_bytes(size) == text


@given(st.integers(0, 1 << 62))
def test_format_bytes_keeps_the_number_below_1024_of_its_unit(size: int) -> None:
    number, unit = format_bytes(size).split()
    assert 0 <= float(number) < 1024.0005
    assert (unit == "B") == (size < 1024)


def test_format_rate_and_duration() -> None:
    assert format_rate(32 * MiB) == "32.000 MiB/s"
    assert format_duration_ms(12) == "12 ms"
    assert format_duration_ms(2345) == "2.3 s"
    assert format_duration_ms(125_000) == "2 min 05 s"


def test_echo_fields_aligns_values(capsys: pytest.CaptureFixture[str]) -> None:
    echo_fields([("Name", "vm"), ("Max memory", "131072 KiB")])
    assert capsys.readouterr().out == "Name:       vm\nMax memory: 131072 KiB\n"


def test_progress_view_of_data_statistics() -> None:
    statistics = JobStatistics(
        data_total=128 * MiB,
        data_processed=100 * MiB,
        data_remaining=32 * MiB,
        memory_total=1,
        memory_bps=16 * MiB,
        memory_dirty_rate=1024,
        memory_page_size=8192,
        memory_iteration=3,
    )
    view = ProgressView.of(statistics, phase="perform3")
    assert (view.total, view.processed, view.remaining) == (128 * MiB, 100 * MiB, 32 * MiB)
    assert view.done == 96 * MiB
    assert view.dirty_bps == 1024 * 8192
    assert view.eta_ms == 2000
    fields = view.fields()
    assert fields["phase"] == "perform3"
    assert fields["processed"] == "100.0 MiB"
    assert fields["rate"] == "16.0 MiB/s"
    assert fields["dirty"] == "8.0 MiB/s"
    assert fields["iteration"] == "3"
    assert fields["eta"] == "2.0 s"


def test_progress_view_falls_back_to_memory_and_reported_eta() -> None:
    statistics = JobStatistics(
        memory_total=64 * MiB,
        memory_remaining=16 * MiB,
        memory_processed=48 * MiB,
        memory_dirty_rate=10,
        time_remaining=750,
    )
    view = ProgressView.of(statistics, phase="perform3")
    assert (view.total, view.done) == (64 * MiB, 48 * MiB)
    assert view.dirty_bps == 10 * DEFAULT_PAGE_SIZE
    assert view.eta_ms == 750


def test_progress_view_of_nothing_reported() -> None:
    view = ProgressView.of(JobStatistics(), phase="begin3")
    assert view.done == 0
    assert set(view.fields().values()) == {"begin3", "-"}
