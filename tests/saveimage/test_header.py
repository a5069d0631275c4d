"""The 92-byte header: layout against libvirt's C struct, byte order, formats, every error."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.saveimage import (
    HEADER_SIZE,
    BadMagic,
    ImageFormat,
    IncompleteImage,
    InvalidDataLength,
    Magic,
    SaveHeader,
    SaveImageError,
    TruncatedHeader,
    UnsupportedFormat,
    UnsupportedVersion,
    stream_offset,
)
from tests.saveimage.libvirt_layout import c_header

u32 = st.integers(min_value=0, max_value=2**32 - 1)


def _header(**changes: object) -> SaveHeader:
    fields: dict[str, object] = {
        "magic": Magic.COMPLETE,
        "data_len": 70_000,
        "was_running": True,
        "format": ImageFormat.ZSTD,
        "cookie_offset": 1234,
    }
    fields.update(changes)
    return SaveHeader(**fields)  # type: ignore[arg-type]


def test_libvirt_on_disk_numbers() -> None:
    assert [(f.name, f.value) for f in ImageFormat] == [
        ("RAW", 0),
        ("GZIP", 1),
        ("BZIP2", 2),
        ("XZ", 3),
        ("LZOP", 4),
        ("ZSTD", 5),
        ("SPARSE", 6),
    ]
    assert Magic.PARTIAL.value == b"LibvirtQemudPart"
    assert Magic.COMPLETE.value == b"LibvirtQemudSave"


@pytest.mark.parametrize(
    ("image_format", "compress", "decompress"),
    [
        (ImageFormat.RAW, None, None),
        (ImageFormat.SPARSE, None, None),
        (ImageFormat.GZIP, ("gzip", "-c"), ("gzip", "-dc")),
        (ImageFormat.BZIP2, ("bzip2", "-c"), ("bzip2", "-dc")),
        (ImageFormat.XZ, ("xz", "-c", "-3"), ("xz", "-dc")),
        (ImageFormat.LZOP, ("lzop", "-c"), ("lzop", "-dc", "--ignore-warn")),
        (ImageFormat.ZSTD, ("zstd", "-c"), ("zstd", "-dc")),
    ],
)
def test_compressor_commands(
    image_format: ImageFormat,
    compress: tuple[str, ...] | None,
    decompress: tuple[str, ...] | None,
) -> None:
    assert image_format.compress_command == compress
    assert image_format.decompress_command == decompress
    assert image_format.program == (compress[0] if compress else None)


def test_pack_matches_libvirt_struct_at_every_offset() -> None:
    header = _header(magic=Magic.PARTIAL, data_len=0x0001_2345, format=ImageFormat.XZ)
    packed = header.pack()
    expected = c_header(
        b"LibvirtQemudPart",
        data_len=0x0001_2345,
        was_running=1,
        format_number=3,
        cookie_offset=1234,
    )
    assert len(packed) == HEADER_SIZE == 92
    assert packed == expected
    assert packed[0:16] == b"LibvirtQemudPart"
    assert packed[16:20] == b"\x02\x00\x00\x00"
    assert packed[20:24] == b"\x45\x23\x01\x00"
    assert packed[24:28] == b"\x01\x00\x00\x00"
    assert packed[28:32] == b"\x03\x00\x00\x00"
    assert packed[32:36] == (1234).to_bytes(4, "little")
    assert packed[36:92] == bytes(56)


def test_not_running_packs_zero() -> None:
    assert _header(was_running=False).pack()[24:28] == bytes(4)


@given(
    data_len=st.integers(min_value=1, max_value=2**32 - 1),
    was_running=st.booleans(),
    image_format=st.sampled_from(ImageFormat),
    version=st.integers(min_value=0, max_value=2),
    cookie_fraction=st.floats(min_value=0, max_value=1),
)
def test_round_trip(
    data_len: int,
    was_running: bool,
    image_format: ImageFormat,
    version: int,
    cookie_fraction: float,
) -> None:
    header = _header(
        data_len=data_len,
        was_running=was_running,
        format=image_format,
        version=version,
        cookie_offset=int(data_len * cookie_fraction),
    )
    assert SaveHeader.unpack(header.pack()) == header


def test_reads_libvirt_header_and_ignores_trailing_bytes_and_unused_words() -> None:
    raw = c_header(
        b"LibvirtQemudSave",
        data_len=65_600,
        was_running=7,
        format_number=1,
        cookie_offset=0,
        unused=tuple(range(14)),
    )
    header = SaveHeader.unpack(raw + b"stream")
    assert header == SaveHeader(
        magic=Magic.COMPLETE,
        version=2,
        data_len=65_600,
        was_running=True,
        format=ImageFormat.GZIP,
        cookie_offset=0,
    )
    assert stream_offset(header) == 92 + 65_600


@given(data_len=st.integers(min_value=1, max_value=2**32 - 1), was_running=st.booleans())
def test_byte_swapped_header_is_detected_and_read(data_len: int, was_running: bool) -> None:
    raw = c_header(
        b"LibvirtQemudSave",
        data_len=data_len,
        was_running=int(was_running),
        format_number=4,
        cookie_offset=data_len // 2,
        byte_order=">",
    )
    header = SaveHeader.unpack(raw)
    assert (header.version, header.data_len, header.was_running) == (2, data_len, was_running)
    assert (header.format, header.cookie_offset) == (ImageFormat.LZOP, data_len // 2)
    # Written back in the codec's own (little-endian) order.
    assert header.pack() == c_header(
        b"LibvirtQemudSave",
        data_len=data_len,
        was_running=int(was_running),
        format_number=4,
        cookie_offset=data_len // 2,
    )


def test_decompress_command_only_for_version_2() -> None:
    assert _header(format=ImageFormat.GZIP).decompress_command == ("gzip", "-dc")
    assert _header(format=ImageFormat.GZIP, version=1).decompress_command is None
    assert _header(format=ImageFormat.RAW).decompress_command is None


@pytest.mark.parametrize("length", [0, 1, 16, 91])
def test_short_input(length: int) -> None:
    raw = _header().pack()[:length]
    with pytest.raises(TruncatedHeader, match=r"^failed to read qemu header") as caught:
        SaveHeader.unpack(raw)
    assert (caught.value.length, caught.value.expected) == (length, 92)


@pytest.mark.parametrize(
    "magic", [b"LibvirtQemudSavf", b"libvirtqemudsave", bytes(16), b"QFI\xfb" + bytes(12)]
)
def test_bad_magic(magic: bytes) -> None:
    raw = magic + _header().pack()[16:]
    with pytest.raises(BadMagic, match=r"not a save image: image magic is incorrect") as caught:
        SaveHeader.unpack(raw)
    assert caught.value.magic == magic


def test_partial_magic_is_incomplete() -> None:
    raw = _header(magic=Magic.PARTIAL).pack()
    with pytest.raises(IncompleteImage, match=r"^save image is incomplete$") as caught:
        SaveHeader.unpack(raw)
    assert caught.value.code == "incomplete-image"


def test_partial_magic_wins_over_other_faults() -> None:
    raw = c_header(
        b"LibvirtQemudPart", version=9, data_len=0, was_running=0, format_number=99,
        cookie_offset=5,
    )  # fmt: skip
    with pytest.raises(IncompleteImage):
        SaveHeader.unpack(raw)


@pytest.mark.parametrize("version", [3, 0x0300_0000, 2**32 - 1])
def test_unsupported_version_in_both_byte_orders(version: int) -> None:
    raw = c_header(
        b"LibvirtQemudSave", version=version, data_len=100, was_running=0, format_number=0,
        cookie_offset=0,
    )  # fmt: skip
    swapped = int.from_bytes(version.to_bytes(4, "little"), "big")
    with pytest.raises(UnsupportedVersion) as caught:
        SaveHeader.unpack(raw)
    assert str(caught.value) == f"image version is not supported ({swapped} > 2)"
    assert (caught.value.version, caught.value.supported) == (swapped, 2)


@pytest.mark.parametrize("format_number", [7, 8, 255, 2**32 - 1])
def test_unsupported_format(format_number: int) -> None:
    raw = c_header(
        b"LibvirtQemudSave", data_len=100, was_running=0, format_number=format_number,
        cookie_offset=0,
    )  # fmt: skip
    with pytest.raises(UnsupportedFormat) as caught:
        SaveHeader.unpack(raw)
    assert str(caught.value) == f"unsupported save image format: {format_number}"
    assert caught.value.format_number == format_number


def test_zero_data_length() -> None:
    raw = c_header(b"LibvirtQemudSave", data_len=0, was_running=1, format_number=0, cookie_offset=0)
    with pytest.raises(InvalidDataLength, match=r"^invalid header data length: 0$") as caught:
        SaveHeader.unpack(raw)
    assert caught.value.data_len == 0


def test_cookie_offset_past_data() -> None:
    raw = c_header(
        b"LibvirtQemudSave", data_len=100, was_running=1, format_number=0, cookie_offset=101
    )
    with pytest.raises(InvalidDataLength, match=r"^invalid header data length: 100 \(cookie"):
        SaveHeader.unpack(raw)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"version": 3}, UnsupportedVersion),
        ({"version": -1}, UnsupportedVersion),
        ({"data_len": 0}, InvalidDataLength),
        ({"data_len": 2**32}, InvalidDataLength),
        ({"cookie_offset": -1}, InvalidDataLength),
        ({"cookie_offset": 70_001}, InvalidDataLength),
        ({"format": 7}, UnsupportedFormat),
    ],
)
def test_constructing_an_unstorable_header_fails(
    changes: dict[str, object], error: type[SaveImageError]
) -> None:
    with pytest.raises(error):
        _header(**changes)


def test_header_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _header().data_len = 5  # type: ignore[misc]


magics = st.sampled_from([m.value for m in Magic])
raw_images = st.one_of(
    st.binary(max_size=120),
    st.tuples(magics, st.binary(max_size=100)).map(lambda parts: parts[0] + parts[1]),
)


@given(raw_images)
def test_random_bytes_raise_only_save_image_errors(raw: bytes) -> None:
    try:
        header = SaveHeader.unpack(raw)
    except SaveImageError:
        return
    assert raw.startswith(Magic.COMPLETE.value)
    assert SaveHeader.unpack(header.pack()) == header


@given(version=u32, data_len=u32, was_running=u32, format_number=u32, cookie_offset=u32)
def test_random_words_after_good_magic(
    version: int, data_len: int, was_running: int, format_number: int, cookie_offset: int
) -> None:
    raw = c_header(
        b"LibvirtQemudSave",
        version=version,
        data_len=data_len,
        was_running=was_running,
        format_number=format_number,
        cookie_offset=cookie_offset,
    )
    try:
        header = SaveHeader.unpack(raw)
    except SaveImageError:
        return
    native = version <= 2
    assert header.version == (version if native else int.from_bytes(raw[16:20], "big"))
    assert header.data_len > 0 and 0 <= header.cookie_offset <= header.data_len
    assert SaveHeader.unpack(header.pack()) == header
