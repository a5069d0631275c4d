"""Cutting a byte stream into msgpack objects, within the limits. Sans-IO: bytes in, objects out.

msgpack is self-delimiting, so frames need no length prefix. What the decoder cannot see on
its own (a frame that stalls, or the stream ending inside a frame) the reader reports through
:attr:`FrameDecoder.pending` and :meth:`FrameDecoder.check_eof`.
"""

from __future__ import annotations

from typing import NoReturn

import msgpack

from transport.errors import LimitExceeded, ProtocolViolation
from transport.limits import Limits

#: What msgpack raises on malformed input: bad bytes, nesting too deep, an array or map past
#: its limit, a non-string map key, invalid UTF-8, a refused extension type.
_MALFORMED = (msgpack.UnpackException, ValueError, TypeError)

#: The unpacker's first buffer; it grows up to the frame limit only when a frame needs it
#: (msgpack would otherwise allocate the whole limit for every connection).
_INITIAL_BUFFER = 16 * 1024


def _refuse_extension(code: int, data: bytes) -> NoReturn:
    raise ValueError(f"msgpack extension type {code} is not accepted")


class FrameDecoder:
    """Turns the bytes of one connection into complete msgpack objects.

    The unpacker never buffers more than ``limits.max_frame_bytes``: input is fed in slices
    that fit beside the incomplete frame already held.
    """

    def __init__(self, limits: Limits) -> None:
        self._max_frame = limits.max_frame_bytes
        self._unpacker = msgpack.Unpacker(
            raw=False,
            strict_map_key=True,
            max_buffer_size=limits.max_frame_bytes,
            read_size=min(_INITIAL_BUFFER, limits.max_frame_bytes),
            max_array_len=limits.max_array_len,
            max_map_len=limits.max_map_len,
            ext_hook=_refuse_extension,
        )
        self._fed = 0
        self._complete = 0

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held, waiting for the rest."""
        return self._fed - self._complete

    def feed(self, data: bytes) -> list[object]:
        """Add ``data``; return the objects it completed, in order.

        Raises:
            ProtocolViolation: the bytes are not valid msgpack within the array, map and
                nesting limits.
            LimitExceeded: a frame is larger than ``max_frame_bytes``.
        """
        objects: list[object] = []
        view = memoryview(data)
        while view:
            room = self._max_frame - self.pending
            if room == 0:
                self._frame_too_large()
            chunk, view = view[:room], view[room:]
            self._unpacker.feed(chunk)
            self._fed += len(chunk)
            try:
                for obj in self._unpacker:
                    # tell() also counts a partial trailing frame, so read it per object.
                    self._complete = self._unpacker.tell()
                    objects.append(obj)
            except _MALFORMED as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise ProtocolViolation(f"malformed msgpack ({reason})") from exc
        if self.pending == self._max_frame:
            self._frame_too_large()
        return objects

    def check_eof(self) -> None:
        """Call when the stream has ended.

        Raises:
            ProtocolViolation: the stream ended inside a frame.
        """
        if self.pending:
            raise ProtocolViolation(
                f"connection ended inside a frame ({self.pending} bytes of it received)",
                details={"pending_bytes": self.pending},
            )

    def _frame_too_large(self) -> NoReturn:
        raise LimitExceeded(
            f"frame larger than max_frame_bytes ({self._max_frame} bytes)",
            details={"limit": "max_frame_bytes", "value": self._max_frame},
        )
