"""Save images in libvirt's layout: header, domain XML, cookie, padding, migration stream.

:mod:`migrator.saveimage.header` is part of the pure core: bytes in, records or bytes out.

- :class:`SaveHeader` packs and unpacks the 92-byte header, byte-compatible with libvirt's,
  and detects a header written in the other byte order.
- :func:`build_data` / :func:`build_image_prefix` lay out a new image (partial magic first),
  :func:`parse_data` reads the XML and cookie back, :func:`rewrite_data` edits them in place
  without moving the stream (:func:`stream_offset`).
"""

from migrator.saveimage.errors import (
    BadMagic,
    DataPart,
    IncompleteImage,
    InvalidDataLength,
    InvalidText,
    SaveImageError,
    TruncatedData,
    TruncatedHeader,
    UnsupportedFormat,
    UnsupportedVersion,
    XmlTooLarge,
)
from migrator.saveimage.header import (
    HEADER_SIZE,
    PADDING,
    SAVE_VERSION,
    ImageFormat,
    Magic,
    SaveHeader,
    build_data,
    build_image_prefix,
    parse_data,
    rewrite_data,
    stream_offset,
)

__all__ = [
    "HEADER_SIZE",
    "PADDING",
    "SAVE_VERSION",
    "BadMagic",
    "DataPart",
    "ImageFormat",
    "IncompleteImage",
    "InvalidDataLength",
    "InvalidText",
    "Magic",
    "SaveHeader",
    "SaveImageError",
    "TruncatedData",
    "TruncatedHeader",
    "UnsupportedFormat",
    "UnsupportedVersion",
    "XmlTooLarge",
    "build_data",
    "build_image_prefix",
    "parse_data",
    "rewrite_data",
    "stream_offset",
]
