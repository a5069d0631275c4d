"""libvirt's save-image header and data section: a pure codec, bytes in, records or bytes out.

An image is laid out as libvirt's QEMU driver writes it (``virQEMUSaveHeader``)::

    offset        size      field
    0             16        magic, no NUL: "LibvirtQemudPart" while written, then "LibvirtQemudSave"
    16            4         version (2)
    20            4         data_len: bytes of XML + cookie + zero padding
    24            4         was_running (1 = resume after restore)
    28            4         format: compression, see ImageFormat
    32            4         cookie_offset: where the cookie starts in the data (0 = no cookie)
    36            56        unused, zero
    92            data_len  domain XML + NUL, [cookie XML + NUL], zero padding
    92+data_len   ...       the QEMU migration stream, possibly compressed

The words are in the writer's byte order; this codec writes little-endian, as libvirt does on
x86, and reads either: a version above 2 means the header came from a host of the other byte
order, so every word is swapped and checked again, as libvirt does.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import Final

from migrator.saveimage.errors import (
    BadMagic,
    DataPart,
    IncompleteImage,
    InvalidDataLength,
    InvalidText,
    TruncatedData,
    TruncatedHeader,
    UnsupportedFormat,
    UnsupportedVersion,
    XmlTooLarge,
)

__all__ = [
    "HEADER_SIZE",
    "PADDING",
    "SAVE_VERSION",
    "ImageFormat",
    "Magic",
    "SaveHeader",
    "build_data",
    "build_image_prefix",
    "parse_data",
    "rewrite_data",
    "stream_offset",
]

#: Size of the fixed header; the data section starts here.
HEADER_SIZE: Final = 92
#: The newest header version (``QEMU_SAVE_VERSION``); older ones are read as libvirt does.
SAVE_VERSION: Final = 2
#: Room left after the XML and cookie on first write, so that a later edit can grow the XML.
PADDING: Final = 64 * 1024

_U32_MAX: Final = 0xFFFF_FFFF
# magic, version, data_len, was_running, format, cookie_offset, 14 unused words.
_LITTLE_ENDIAN: Final = struct.Struct("<16s5I56x")
_BIG_ENDIAN: Final = struct.Struct(">16s5I56x")


class Magic(enum.Enum):
    """The first 16 bytes of an image: partial until the stream is complete and on disk."""

    PARTIAL = b"LibvirtQemudPart"
    COMPLETE = b"LibvirtQemudSave"


class ImageFormat(enum.IntEnum):
    """How the migration stream after the data section is stored: libvirt's on-disk numbers.

    The numbers are an ABI: never reuse one (libvirt retired ``lzma`` before ``xz``).
    """

    RAW = 0
    GZIP = 1
    BZIP2 = 2
    XZ = 3
    LZOP = 4
    ZSTD = 5
    SPARSE = 6

    @property
    def program(self) -> str | None:
        """The external (de)compressor, or ``None`` when QEMU writes the stream as-is."""
        if self in (ImageFormat.RAW, ImageFormat.SPARSE):
            return None
        return self.name.lower()

    @property
    def compress_command(self) -> tuple[str, ...] | None:
        """The command that compresses stdin to stdout, or ``None`` for no compression."""
        if self.program is None:
            return None
        level = ("-3",) if self is ImageFormat.XZ else ()
        return (self.program, "-c", *level)

    @property
    def decompress_command(self) -> tuple[str, ...] | None:
        """The command that decompresses stdin to stdout, or ``None`` for no compression."""
        if self.program is None:
            return None
        # Without it lzop exits non-zero on mere warnings, which would fail the restore.
        lenient = ("--ignore-warn",) if self is ImageFormat.LZOP else ()
        return (self.program, "-dc", *lenient)


def _checked_format(
    *, version: int, data_len: int, format_number: int, cookie_offset: int
) -> ImageFormat:
    """Check the header words in libvirt's order; return the format as an :class:`ImageFormat`.

    Raises:
        UnsupportedVersion, UnsupportedFormat, InvalidDataLength.
    """
    if not 0 <= version <= SAVE_VERSION:
        raise UnsupportedVersion(version, supported=SAVE_VERSION)
    try:
        image_format = ImageFormat(format_number)
    except ValueError:
        raise UnsupportedFormat(format_number) from None
    if not 0 < data_len <= _U32_MAX:
        raise InvalidDataLength(data_len)
    if not 0 <= cookie_offset <= data_len:
        raise InvalidDataLength(
            data_len, reason=f"cookie offset {cookie_offset} is outside the data"
        )
    return image_format


@dataclasses.dataclass(frozen=True, kw_only=True)
class SaveHeader:
    """The fixed 92-byte header of a save image.

    Raises (on construction): UnsupportedVersion, UnsupportedFormat, InvalidDataLength when a
    field cannot be stored in the header or contradicts another.
    """

    magic: Magic
    version: int = SAVE_VERSION
    data_len: int
    was_running: bool
    format: ImageFormat
    cookie_offset: int

    def __post_init__(self) -> None:
        _checked_format(
            version=self.version,
            data_len=self.data_len,
            format_number=int(self.format),
            cookie_offset=self.cookie_offset,
        )

    def pack(self) -> bytes:
        """The header as 92 little-endian bytes, unused words zero."""
        return _LITTLE_ENDIAN.pack(
            self.magic.value,
            self.version,
            self.data_len,
            int(self.was_running),
            self.format,
            self.cookie_offset,
        )

    @classmethod
    def unpack(cls, data: bytes) -> SaveHeader:
        """Read a complete image's header from the first 92 bytes of ``data``.

        Bytes past the header are ignored; so are the unused words.

        Raises:
            TruncatedHeader: fewer than 92 bytes.
            IncompleteImage: the partial magic (the save never finished).
            BadMagic: any other magic.
            UnsupportedVersion: a version above 2 in both byte orders.
            UnsupportedFormat: a format number libvirt never assigned.
            InvalidDataLength: a zero data length, or a cookie offset past it.
        """
        if len(data) < HEADER_SIZE:
            raise TruncatedHeader(len(data), expected=HEADER_SIZE)
        magic, version, data_len, was_running, format_number, cookie_offset = (
            _LITTLE_ENDIAN.unpack_from(data)
        )
        if magic == Magic.PARTIAL.value:
            raise IncompleteImage()
        if magic != Magic.COMPLETE.value:
            raise BadMagic(magic)
        if version > SAVE_VERSION:
            _, version, data_len, was_running, format_number, cookie_offset = (
                _BIG_ENDIAN.unpack_from(data)
            )
        image_format = _checked_format(
            version=version,
            data_len=data_len,
            format_number=format_number,
            cookie_offset=cookie_offset,
        )
        return cls(
            magic=Magic.COMPLETE,
            version=version,
            data_len=data_len,
            was_running=bool(was_running),
            format=image_format,
            cookie_offset=cookie_offset,
        )

    @property
    def decompress_command(self) -> tuple[str, ...] | None:
        """The command that restores the raw stream, or ``None`` if it is stored raw.

        Only version-2 images have compressed streams, as libvirt reads them.
        """
        if self.version != SAVE_VERSION:
            return None
        return self.format.decompress_command


def stream_offset(header: SaveHeader) -> int:
    """Where the QEMU migration stream starts in the file; an edit never moves it."""
    return HEADER_SIZE + header.data_len


def _encode_text(text: str, part: DataPart) -> bytes:
    """``text`` as a NUL-terminated UTF-8 string.

    Raises:
        InvalidText: ``text`` holds a NUL or a lone surrogate.
    """
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidText(
            part, problem=f"cannot be encoded as UTF-8 (character {error.start})"
        ) from None
    nul = encoded.find(0)
    if nul >= 0:
        raise InvalidText(part, problem=f"contains a NUL byte (byte {nul})")
    return encoded + b"\0"


def _encode_content(*, xml: str, cookie: str | None) -> tuple[bytes, int]:
    """The XML and cookie as stored, without padding, and the cookie offset (0: none)."""
    encoded_xml = _encode_text(xml, DataPart.DOMAIN_XML)
    if cookie is None:
        return encoded_xml, 0
    return encoded_xml + _encode_text(cookie, DataPart.COOKIE), len(encoded_xml)


def _padded(content: bytes, data_len: int) -> bytes:
    return content + bytes(data_len - len(content))


def build_data(
    *, xml: str, cookie: str | None, was_running: bool, format: ImageFormat, magic: Magic
) -> tuple[SaveHeader, bytes]:
    """A new image's header and data section, with :data:`PADDING` bytes to spare.

    Write ``header.pack()`` and the data section with the partial magic, then the stream, then
    rewrite the header with ``dataclasses.replace(header, magic=Magic.COMPLETE)``.

    Raises:
        InvalidText: ``xml`` or ``cookie`` holds a NUL or cannot be encoded as UTF-8.
        InvalidDataLength: the texts are too large for the header's 32-bit length.
    """
    content, cookie_offset = _encode_content(xml=xml, cookie=cookie)
    header = SaveHeader(
        magic=magic,
        data_len=len(content) + PADDING,
        was_running=was_running,
        format=format,
        cookie_offset=cookie_offset,
    )
    return header, _padded(content, header.data_len)


def build_image_prefix(
    *, xml: str, cookie: str | None, was_running: bool, format: ImageFormat, magic: Magic
) -> bytes:
    """Everything a new image holds before the migration stream: header and data section.

    Raises:
        InvalidText, InvalidDataLength: as :func:`build_data`.
    """
    header, data = build_data(
        xml=xml, cookie=cookie, was_running=was_running, format=format, magic=magic
    )
    return header.pack() + data


def _decode_text(region: bytes, *, part: DataPart, data_len: int) -> str:
    """The NUL-terminated UTF-8 string at the start of ``region``.

    Raises:
        InvalidDataLength: no NUL in ``region``.
        InvalidText: the string is not UTF-8.
    """
    end = region.find(0)
    if end < 0:
        raise InvalidDataLength(data_len, reason=f"the {part.value} is not NUL-terminated")
    try:
        return region[:end].decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidText(part, problem=f"is not valid UTF-8 (byte {error.start})") from None


def parse_data(header: SaveHeader, data: bytes) -> tuple[str, str | None]:
    """The domain XML and the cookie (``None`` if there is none) from an image's data section.

    ``data`` starts right after the header; bytes past ``header.data_len`` (the stream) are
    ignored.

    Raises:
        TruncatedData: ``data`` is shorter than ``header.data_len``.
        InvalidDataLength: the XML or cookie is not NUL-terminated within its part.
        InvalidText: the XML or cookie is not UTF-8.
    """
    xml_len = header.cookie_offset or header.data_len
    if len(data) < header.data_len:
        part = DataPart.DOMAIN_XML if len(data) < xml_len else DataPart.COOKIE
        raise TruncatedData(part, expected=header.data_len, actual=len(data))
    xml = _decode_text(data[:xml_len], part=DataPart.DOMAIN_XML, data_len=header.data_len)
    if xml_len == header.data_len:
        return xml, None
    cookie = _decode_text(
        data[xml_len : header.data_len], part=DataPart.COOKIE, data_len=header.data_len
    )
    return xml, cookie


def rewrite_data(
    header: SaveHeader, *, xml: str, cookie: str | None, was_running: bool | None
) -> tuple[SaveHeader, bytes]:
    """New header and data section for an image edited in place (save-image-define/edit).

    The magic, version, format and data length are kept, so the stream does not move;
    ``was_running=None`` keeps the image's run state.

    Raises:
        InvalidText: ``xml`` or ``cookie`` holds a NUL or cannot be encoded as UTF-8.
        XmlTooLarge: the new XML and cookie do not fit in the data section.
    """
    content, cookie_offset = _encode_content(xml=xml, cookie=cookie)
    if len(content) > header.data_len:
        raise XmlTooLarge(needed=len(content), available=header.data_len)
    new_header = dataclasses.replace(
        header,
        cookie_offset=cookie_offset,
        was_running=header.was_running if was_running is None else was_running,
    )
    return new_header, _padded(content, header.data_len)
