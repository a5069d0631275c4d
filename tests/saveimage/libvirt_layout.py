"""libvirt's ``virQEMUSaveHeader`` written out by hand from the C struct, for comparison.

struct { char magic[16]; uint32_t version, data_len, was_running, format, cookieOffset;
uint32_t unused[14]; } in the writer's native byte order.
"""

from __future__ import annotations

import struct


def c_header(
    magic: bytes,
    *,
    version: int = 2,
    data_len: int,
    was_running: int,
    format_number: int,
    cookie_offset: int,
    byte_order: str = "<",
    unused: tuple[int, ...] = (0,) * 14,
) -> bytes:
    return struct.pack(
        f"{byte_order}16sIIIII14I",
        magic,
        version,
        data_len,
        was_running,
        format_number,
        cookie_offset,
        *unused,
    )
