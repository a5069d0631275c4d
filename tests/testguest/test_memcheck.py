"""The host-side memory check, on dumps built in Python the way the guest fills its memory."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.testguest.errors import MemoryDumpError
from migrator.testguest.memcheck import MAX_LISTED_BAD_PAGES, memory_dump_size, verify_memory_dump
from migrator.testguest.protocol import (
    PAGE_SIZE,
    STATUS_ADDR,
    WORKING_SET_ADDR,
    GuestStatus,
    page_pattern,
)

QWORDS = PAGE_SIZE // 8


def make_dump(pages: int, written: int, partial: int = 0) -> bytearray:
    """Memory as the guest leaves it after writing ``written`` pages, stopped ``partial`` qwords
    into the next one."""
    status = GuestStatus(
        working_set_pages=pages, dirty_bytes_per_ms=0, verify_pages_per_ms=0, pages_written=written
    )
    dump = bytearray(memory_dump_size(status))
    dump[STATUS_ADDR : STATUS_ADDR + len(status.pack())] = status.pack()
    generation, cursor = divmod(written, pages)
    for page in range(pages):
        if page < cursor:
            qwords = [page_pattern(page, generation)] * QWORDS
        elif page > cursor:
            qwords = [page_pattern(page, generation - 1)] * QWORDS
        else:
            qwords = [page_pattern(page, generation)] * partial
            qwords += [page_pattern(page, generation - 1)] * (QWORDS - partial)
        start = WORKING_SET_ADDR + page * PAGE_SIZE
        dump[start : start + PAGE_SIZE] = struct.pack(f"<{QWORDS}Q", *qwords)
    return dump


guest_states = st.integers(min_value=1, max_value=24).flatmap(
    lambda pages: st.tuples(
        st.just(pages),
        st.integers(min_value=0, max_value=pages * 4),
        st.integers(min_value=0, max_value=QWORDS),
    )
)


@given(guest_states)
def test_memory_as_the_guest_left_it_is_intact(state: tuple[int, int, int]) -> None:
    pages, written, partial = state
    check = verify_memory_dump(make_dump(pages, written, partial))
    assert check.intact
    assert (check.pages_checked, check.bad_pages, check.bad_page_count) == (pages, (), 0)
    assert check.status.pages_written == written


@given(guest_states, st.data())
def test_one_wrong_qword_is_found(state: tuple[int, int, int], data: st.DataObject) -> None:
    pages, written, partial = state
    dump = make_dump(pages, written, partial)
    page = data.draw(st.integers(min_value=0, max_value=pages - 1), label="page")
    slot = data.draw(st.integers(min_value=0, max_value=QWORDS - 1), label="slot")
    generation = written // pages
    value = next(
        v
        for v in (1, 2, 3)
        if v not in (page_pattern(page, generation), page_pattern(page, generation - 1))
    )
    struct.pack_into("<Q", dump, WORKING_SET_ADDR + page * PAGE_SIZE + slot * 8, value)
    check = verify_memory_dump(dump)
    assert not check.intact
    assert check.bad_pages == (page,)


def test_swapped_pages_are_found() -> None:
    dump = make_dump(8, 8)  # one full pass: every page differs from every other
    first, second = WORKING_SET_ADDR + 2 * PAGE_SIZE, WORKING_SET_ADDR + 5 * PAGE_SIZE
    dump[first : first + PAGE_SIZE], dump[second : second + PAGE_SIZE] = (
        dump[second : second + PAGE_SIZE],
        dump[first : first + PAGE_SIZE],
    )
    assert verify_memory_dump(dump).bad_pages == (2, 5)


def test_a_lost_pass_is_found_and_the_list_is_bounded() -> None:
    dump = make_dump(200, 200)
    # the guest says it wrote pass 1 everywhere, but memory still holds pass 0 (as if the
    # destination had received stale pages)
    status = GuestStatus.unpack(dump[STATUS_ADDR:])
    newer = dataclasses.replace(status, pages_written=400)
    dump[STATUS_ADDR : STATUS_ADDR + len(newer.pack())] = newer.pack()
    check = verify_memory_dump(dump)
    assert check.bad_page_count == 200
    assert check.bad_pages == tuple(range(MAX_LISTED_BAD_PAGES))


def test_dump_without_a_guest_is_refused() -> None:
    with pytest.raises(MemoryDumpError, match="no test guest status record"):
        verify_memory_dump(bytes(WORKING_SET_ADDR))
    with pytest.raises(MemoryDumpError, match="takes 88 bytes"):
        verify_memory_dump(bytes(STATUS_ADDR))


def test_dump_shorter_than_the_working_set_is_refused() -> None:
    dump = make_dump(4, 1)
    with pytest.raises(MemoryDumpError, match="working set ends at 0x204000") as refused:
        verify_memory_dump(dump[:-1])
    assert refused.value.size == len(dump) - 1


def test_dump_size_covers_the_working_set() -> None:
    status = GuestStatus(working_set_pages=3, dirty_bytes_per_ms=0, verify_pages_per_ms=0)
    assert memory_dump_size(status) == WORKING_SET_ADDR + 3 * PAGE_SIZE
