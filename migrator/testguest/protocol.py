"""What the test guest and the host agree on: memory layout, status, page pattern, serial lines.

The kernel builder emits code from these definitions and the host-side tools parse with them,
so the two sides cannot drift apart.

Memory (guest-physical, identity-mapped in the guest):

* ``STATUS_ADDR``: the status record, one little-endian u64 per :class:`StatusField`.
* ``WORKING_SET_ADDR``: the working set, ``working_set_pages`` pages of ``PAGE_SIZE`` bytes.

The guest rewrites its working set in passes, page 0 first. In pass ``g`` it fills every u64 of
page ``p`` with ``page_pattern(p, g)``; before the first pass a page holds zeros, which is
``page_pattern(p, -1)``. After each page it increments ``PAGES_WRITTEN`` with a single store, so
``PAGES_WRITTEN`` alone says what every page must hold: with ``n`` pages, ``g, c =
divmod(PAGES_WRITTEN, n)``; pages below ``c`` hold pass ``g``, pages above hold pass ``g - 1``
and page ``c`` holds a prefix of pass ``g`` followed by the rest of pass ``g - 1`` (the guest may
have been stopped in the middle of it).

Serial lines (COM1, numbers in lowercase hexadecimal, each line ends with ``\\n``):

* ``H<seq>``: heartbeat number ``seq``, about one per millisecond, counting from 0;
* ``OK <n>``: the guest re-read its whole working set for the ``n``-th time and found it intact;
* ``BAD <page>``: page ``page`` does not hold what the guest wrote there.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import astuple, dataclass

from migrator.testguest.errors import MemoryDumpError

PAGE_SIZE = 4096
MIB = 1 << 20
U64_MASK = (1 << 64) - 1

#: Guest-physical address of the status record.
STATUS_ADDR = 0x101000
#: Guest-physical address of the first working-set page.
WORKING_SET_ADDR = 0x200000
#: The working set ends at or below 2 GiB: below the PCI hole of both the pc and q35 machines.
MAX_WORKING_SET_MIB = (2048 * MIB - WORKING_SET_ADDR) // MIB

#: Multiplier of the page number in the page pattern: odd, so pages of one pass all differ.
PATTERN_PAGE_MULTIPLIER = 0x5BD1E995
#: Added to the pattern's pass term at every pass: odd, so consecutive passes differ everywhere.
PATTERN_PASS_STEP = 0x6F4A7C15


def page_pattern(page: int, generation: int) -> int:
    """The u64 value that fills page ``page`` after pass ``generation`` (-1: never written)."""
    if generation < 0:
        return 0
    return ((page * PATTERN_PAGE_MULTIPLIER) ^ ((generation + 1) * PATTERN_PASS_STEP)) & U64_MASK


class StatusField(enum.IntEnum):
    """The u64 fields of the status record; the value is the field's byte offset."""

    MAGIC = 0
    WORKING_SET_PAGES = 8
    DIRTY_BYTES_PER_MS = 16
    VERIFY_PAGES_PER_MS = 24
    TSC_PER_MS = 32
    HEARTBEATS = 40
    PAGES_WRITTEN = 48
    PAGES_VERIFIED = 56
    VERIFY_SWEEPS = 64
    BAD_PAGES = 72
    SWEEP_FAILED = 80


#: "MIGTGST" and a layout version byte.
STATUS_MAGIC = int.from_bytes(b"MIGTGST\x01", "little")
_STATUS_STRUCT = struct.Struct("<" + "Q" * len(StatusField))
STATUS_SIZE = _STATUS_STRUCT.size


@dataclass(frozen=True)
class GuestStatus:
    """The guest's status record (everything but the magic), in :class:`StatusField` order.

    The first three fields are the guest's configuration, written by the kernel builder; the
    others are counters the guest keeps.
    """

    working_set_pages: int
    dirty_bytes_per_ms: int
    verify_pages_per_ms: int
    tsc_per_ms: int = 0
    heartbeats: int = 0
    pages_written: int = 0
    pages_verified: int = 0
    verify_sweeps: int = 0
    bad_pages: int = 0
    sweep_failed: int = 0

    def pack(self) -> bytes:
        """The record as the guest holds it in memory, magic included."""
        return _STATUS_STRUCT.pack(STATUS_MAGIC, *astuple(self))

    @classmethod
    def unpack(cls, data: bytes | bytearray | memoryview) -> GuestStatus:
        """Read a record from the first ``STATUS_SIZE`` bytes of ``data``.

        Raises:
            MemoryDumpError: ``data`` is too short or does not start with the status magic.
        """
        if len(data) < STATUS_SIZE:
            raise MemoryDumpError(
                f"a status record takes {STATUS_SIZE} bytes, got {len(data)}", size=len(data)
            )
        magic, *fields = _STATUS_STRUCT.unpack_from(data)
        if magic != STATUS_MAGIC:
            raise MemoryDumpError(
                f"no test guest status record here (magic {magic:#018x})", size=len(data)
            )
        return cls(*fields)

    @property
    def generation(self) -> int:
        """The pass the guest is writing: pages below :attr:`cursor` already hold it."""
        if self.working_set_pages == 0:
            return 0
        return self.pages_written // self.working_set_pages

    @property
    def cursor(self) -> int:
        """The page the guest writes next (it may already hold part of the new pass)."""
        if self.working_set_pages == 0:
            return 0
        return self.pages_written % self.working_set_pages


class LineKind(enum.Enum):
    """The lines the guest writes; the value is the line's prefix before the number."""

    HEARTBEAT = b"H"
    VERIFIED = b"OK "
    BAD_PAGE = b"BAD "


@dataclass(frozen=True)
class GuestLine:
    """One parsed serial line: its kind and its number."""

    kind: LineKind
    value: int


_KINDS = {kind.value: kind for kind in LineKind}
_LINE = re.compile(b"(" + b"|".join(map(re.escape, _KINDS)) + rb")([0-9a-f]{1,16})")


def parse_line(line: bytes) -> GuestLine | None:
    """Parse one serial line without its ``\\n``; None when it is not a guest line."""
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    return GuestLine(_KINDS[match.group(1)], int(match.group(2), 16))
