"""Checks a dump of the test guest's memory against its own status record.

Dump guest-physical memory from address 0 (QMP ``pmemsave``, with the VM paused so that the dump
is one consistent moment) and pass it to :func:`verify_memory_dump`. The status record inside
the dump says how far the guest got; :mod:`migrator.testguest.protocol` says what every
working-set page must then hold.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from migrator.testguest.errors import MemoryDumpError
from migrator.testguest.protocol import (
    PAGE_SIZE,
    STATUS_ADDR,
    WORKING_SET_ADDR,
    GuestStatus,
    page_pattern,
)

#: How many damaged pages a check lists (all are counted).
MAX_LISTED_BAD_PAGES = 64

_QWORDS = struct.Struct(f"<{PAGE_SIZE // 8}Q")
_QWORD = struct.Struct("<Q")


@dataclass(frozen=True)
class MemoryCheck:
    """The outcome of a memory check: the guest's status and the pages that are wrong."""

    status: GuestStatus
    pages_checked: int
    bad_pages: tuple[int, ...]
    bad_page_count: int

    @property
    def intact(self) -> bool:
        """True when every working-set page holds what the guest wrote there."""
        return self.bad_page_count == 0


def memory_dump_size(status: GuestStatus) -> int:
    """How many bytes from guest-physical address 0 a dump needs for this guest."""
    return WORKING_SET_ADDR + status.working_set_pages * PAGE_SIZE


def verify_memory_dump(dump: bytes | bytearray | memoryview) -> MemoryCheck:
    """Check every working-set page in ``dump`` (guest memory from address 0).

    Raises:
        MemoryDumpError: the dump holds no status record or ends before the working set does.
    """
    view = memoryview(dump)
    status = GuestStatus.unpack(view[STATUS_ADDR:])
    needed = memory_dump_size(status)
    if len(view) < needed:
        raise MemoryDumpError(
            f"the dump has {len(view)} bytes but the working set ends at {needed:#x}",
            size=len(view),
        )
    generation, cursor = status.generation, status.cursor
    bad: list[int] = []
    bad_count = 0
    for page in range(status.working_set_pages):
        start = WORKING_SET_ADDR + page * PAGE_SIZE
        content = view[start : start + PAGE_SIZE]
        if page < cursor:
            intact = content == _filled(page_pattern(page, generation))
        elif page > cursor:
            intact = content == _filled(page_pattern(page, generation - 1))
        else:
            intact = _is_partly_rewritten(
                content, new=page_pattern(page, generation), old=page_pattern(page, generation - 1)
            )
        if not intact:
            bad_count += 1
            if len(bad) < MAX_LISTED_BAD_PAGES:
                bad.append(page)
    return MemoryCheck(status, status.working_set_pages, tuple(bad), bad_count)


def _filled(value: int) -> bytes:
    return _QWORD.pack(value) * (PAGE_SIZE // 8)


def _is_partly_rewritten(content: memoryview, *, new: int, old: int) -> bool:
    """True when the page is some qwords of ``new`` followed by ``old`` for the rest."""
    qwords = _QWORDS.unpack(content)
    rewritten = next((i for i, value in enumerate(qwords) if value != new), len(qwords))
    return all(value == old for value in qwords[rewritten:])
