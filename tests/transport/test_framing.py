"""The frame decoder: bytes in any chunking give the same objects; hostile bytes are refused."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport.errors import ConfigError, LimitExceeded, ProtocolViolation
from transport.framing import FrameDecoder
from transport.limits import Limits

SMALL = Limits(max_frame_bytes=4096, max_array_len=64, max_map_len=16)

objects = st.lists(
    st.lists(
        st.integers(-(2**63), 2**64 - 1) | st.text(max_size=50) | st.binary(max_size=50), max_size=8
    ),
    min_size=1,
    max_size=10,
)


@given(objects, st.data())
def test_any_chunking_yields_the_same_objects(
    batch: list[list[object]], data: st.DataObject
) -> None:
    stream = b"".join(msgpack.packb(obj) for obj in batch)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    decoder = FrameDecoder(SMALL)
    out: list[object] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out.extend(decoder.feed(stream[start:end]))
    assert out == batch
    assert decoder.pending == 0
    decoder.check_eof()


@given(st.binary(max_size=2048))
def test_random_bytes_yield_objects_or_a_transport_error(junk: bytes) -> None:
    decoder = FrameDecoder(SMALL)
    try:
        decoder.feed(junk)
        assert decoder.pending <= SMALL.max_frame_bytes
        decoder.check_eof()
    except (ProtocolViolation, LimitExceeded):
        pass


def test_a_frame_at_the_limit_passes_and_one_byte_more_does_not() -> None:
    overhead = len(msgpack.packb(b"x" * 4000)) - 4000
    fits = msgpack.packb(b"x" * (4096 - overhead))
    assert len(fits) == 4096
    assert FrameDecoder(SMALL).feed(fits) == [b"x" * (4096 - overhead)]
    with pytest.raises(LimitExceeded, match="max_frame_bytes") as caught:
        FrameDecoder(SMALL).feed(msgpack.packb(b"x" * (4097 - overhead)))
    assert caught.value.limit == "max_frame_bytes"


def test_a_4_gib_binary_header_waits_and_is_a_truncated_frame_at_eof() -> None:
    decoder = FrameDecoder(SMALL)
    assert decoder.feed(b"\xc6\xff\xff\xff\xff") == []
    assert decoder.pending == 5
    with pytest.raises(ProtocolViolation, match="ended inside a frame"):
        decoder.check_eof()


def test_a_frame_cut_off_is_reported_at_eof() -> None:
    frame = msgpack.packb([0, 1, "echo", "hello"])
    decoder = FrameDecoder(SMALL)
    assert decoder.feed(frame + frame[:-3]) == [[0, 1, "echo", "hello"]]
    with pytest.raises(ProtocolViolation, match=f"{len(frame) - 3} bytes"):
        decoder.check_eof()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x91" * 5000, "StackError"),
        (b"\xdd\x00\x0f\x42\x40", "max_array_len"),
        (b"\xdf\x00\x0f\x42\x40", "max_map_len"),
        (b"\xc1", "FormatError"),
        (msgpack.packb({1: 2}), "map key"),
        (b"\xa2\xff\xfe", "UnicodeDecodeError"),
        (msgpack.packb(msgpack.ExtType(3, b"x")), "extension type 3"),
    ],
)
def test_hostile_bytes_are_protocol_violations(data: bytes, reason: str) -> None:
    limits = Limits(max_frame_bytes=1 << 20, max_array_len=64, max_map_len=16)
    with pytest.raises(ProtocolViolation, match=reason):
        FrameDecoder(limits).feed(data)


def test_an_oversize_string_is_refused_before_it_is_buffered_whole() -> None:
    decoder = FrameDecoder(SMALL)
    with pytest.raises(LimitExceeded):
        decoder.feed(msgpack.packb("y" * 1_000_000))
    assert decoder.pending <= SMALL.max_frame_bytes


@pytest.mark.parametrize(
    "bad",
    [
        {"max_frame_bytes": 0},
        {"frame_timeout": -1.0},
        {"max_in_flight": 2.5},
        {"keepalive_missed": True},
    ],
)
def test_limits_must_be_positive_numbers_of_their_type(bad: dict[str, object]) -> None:
    name = next(iter(bad))
    with pytest.raises(ConfigError, match=name):
        Limits(**bad)  # type: ignore[arg-type]
