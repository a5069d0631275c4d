"""The shared definitions: status record, page pattern, serial lines."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.testguest.errors import MemoryDumpError
from migrator.testguest.protocol import (
    STATUS_MAGIC,
    STATUS_SIZE,
    GuestLine,
    GuestStatus,
    LineKind,
    StatusField,
    page_pattern,
    parse_line,
)

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)
statuses = st.builds(GuestStatus, **{f.name: U64 for f in dataclasses.fields(GuestStatus)})


def test_status_fields_follow_the_record_layout() -> None:
    names = [f.name.upper() for f in dataclasses.fields(GuestStatus)]
    assert names == [field.name for field in StatusField][1:]
    assert [field.value for field in StatusField] == list(range(0, STATUS_SIZE, 8))


@given(statuses)
def test_status_round_trip(status: GuestStatus) -> None:
    packed = status.pack()
    assert len(packed) == STATUS_SIZE
    assert int.from_bytes(packed[:8], "little") == STATUS_MAGIC
    assert GuestStatus.unpack(packed + b"trailing bytes are ignored") == status


@given(st.integers(min_value=1, max_value=1 << 20), st.integers(min_value=0, max_value=1 << 40))
def test_generation_and_cursor_split_pages_written(pages: int, written: int) -> None:
    status = GuestStatus(
        working_set_pages=pages, dirty_bytes_per_ms=0, verify_pages_per_ms=0, pages_written=written
    )
    assert status.generation * pages + status.cursor == written
    assert 0 <= status.cursor < pages


def test_idle_guest_has_generation_zero() -> None:
    status = GuestStatus(working_set_pages=0, dirty_bytes_per_ms=0, verify_pages_per_ms=0)
    assert (status.generation, status.cursor) == (0, 0)


def test_unpack_refuses_short_or_foreign_data() -> None:
    with pytest.raises(MemoryDumpError, match="takes 88 bytes") as short:
        GuestStatus.unpack(bytes(10))
    assert short.value.size == 10
    with pytest.raises(MemoryDumpError, match="no test guest status record"):
        GuestStatus.unpack(bytes(STATUS_SIZE))


@given(st.integers(min_value=0, max_value=1 << 19), st.integers(min_value=0, max_value=1 << 32))
def test_pattern_changes_at_every_pass(page: int, generation: int) -> None:
    assert page_pattern(page, generation) != page_pattern(page, generation + 1)
    assert 0 <= page_pattern(page, generation) < 1 << 64


@given(
    st.integers(min_value=0, max_value=1 << 19),
    st.integers(min_value=0, max_value=1 << 19),
    st.integers(min_value=0, max_value=1 << 32),
)
def test_pattern_tells_pages_of_one_pass_apart(a: int, b: int, generation: int) -> None:
    if a != b:
        assert page_pattern(a, generation) != page_pattern(b, generation)


def test_unwritten_pages_are_zero() -> None:
    assert page_pattern(12345, -1) == 0


@given(st.sampled_from(list(LineKind)), st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_lines_parse(kind: LineKind, value: int) -> None:
    assert parse_line(kind.value + format(value, "x").encode()) == GuestLine(kind, value)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"H",
        b"H1A",
        b"H 1",
        b"H-1",
        b"H0x1",
        b"H1_0",
        b"OK1",
        b"BAD",
        b"HB 1",
        b"H1 ",
        b"H" + b"1" * 17,
        b"\x00H1",
    ],
)
def test_other_lines_do_not_parse(line: bytes) -> None:
    assert parse_line(line) is None
