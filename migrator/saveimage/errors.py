"""Errors of the save-image codec: one root, :class:`SaveImageError`, under ``MigratorError``.

The messages follow libvirt's (``src/qemu/qemu_saveimage.c``) so that people who know
``virsh restore`` recognise them.

Error tree::

    SaveImageError              anything wrong with a save image or with what is put into one
    +-- TruncatedHeader         fewer than 92 bytes: "failed to read qemu header"
    +-- BadMagic                not a save image: "image magic is incorrect"
    +-- IncompleteImage         partial magic: "save image is incomplete"
    +-- UnsupportedVersion      "image version is not supported (3 > 2)"
    +-- UnsupportedFormat       "unsupported save image format: 9"
    +-- InvalidDataLength       "invalid header data length": zero, or XML/cookie that don't fit
    +-- TruncatedData           the data section is shorter than the header says
    +-- InvalidText             XML or cookie text that cannot be stored or read back
    +-- XmlTooLarge             "new xml too large to fit in file" (rewrite in place)
"""

from __future__ import annotations

import enum

from migrator.errors import MigratorError


class DataPart(enum.Enum):
    """The two texts stored in the data section, named as messages name them."""

    DOMAIN_XML = "domain XML"
    COOKIE = "cookie"


class SaveImageError(MigratorError):
    """Root of all errors raised by :mod:`migrator.saveimage`."""

    code = "save-image-error"


class TruncatedHeader(SaveImageError):
    """The input ends before the fixed header does.

    Attributes:
        length: how many bytes there were.
        expected: the header size.
    """

    code = "truncated-header"

    def __init__(self, length: int, *, expected: int) -> None:
        super().__init__(f"failed to read qemu header: {length} of {expected} bytes")
        self.length = length
        self.expected = expected


class BadMagic(SaveImageError):
    """The file does not start with either save-image magic.

    Attributes:
        magic: the first 16 bytes as found.
    """

    code = "bad-magic"

    def __init__(self, magic: bytes) -> None:
        super().__init__(f"not a save image: image magic is incorrect ({magic!r})")
        self.magic = magic


class IncompleteImage(SaveImageError):
    """The image still carries the partial magic: the save never finished.

    A managed-save image in this state is discarded and the guest boots fresh; a user
    ``restore`` fails with this error.
    """

    code = "incomplete-image"

    def __init__(self) -> None:
        super().__init__("save image is incomplete")


class UnsupportedVersion(SaveImageError):
    """The header's version is newer than this codec reads (in either byte order).

    Attributes:
        version: the version found.
        supported: the newest version this codec reads.
    """

    code = "unsupported-version"

    def __init__(self, version: int, *, supported: int) -> None:
        relation = f"{version} > {supported}" if version > supported else f"{version}"
        super().__init__(f"image version is not supported ({relation})")
        self.version = version
        self.supported = supported


class UnsupportedFormat(SaveImageError):
    """The header names a compression format number that libvirt never assigned.

    Attributes:
        format_number: the number found.
    """

    code = "unsupported-format"

    def __init__(self, format_number: int) -> None:
        super().__init__(f"unsupported save image format: {format_number}")
        self.format_number = format_number


class InvalidDataLength(SaveImageError):
    """The data length is zero or out of range, or the texts do not fit in the data section.

    Attributes:
        data_len: the header's data length.
        reason: what does not fit, in words, or ``None`` when the length itself is wrong.
    """

    code = "invalid-data-length"

    def __init__(self, data_len: int, *, reason: str | None = None) -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(f"invalid header data length: {data_len}{detail}")
        self.data_len = data_len
        self.reason = reason


class TruncatedData(SaveImageError):
    """The data section ends before the header's data length.

    Attributes:
        part: the text that could not be read whole.
        expected: the data length the header announces.
        actual: how many bytes of data section there were.
    """

    code = "truncated-data"

    def __init__(self, part: DataPart, *, expected: int, actual: int) -> None:
        super().__init__(f"failed to read {part.value}: {actual} of {expected} bytes")
        self.part = part
        self.expected = expected
        self.actual = actual


class InvalidText(SaveImageError):
    """A text cannot be stored as a NUL-terminated UTF-8 string, or read back as one.

    Attributes:
        part: which text.
    """

    code = "invalid-text"

    def __init__(self, part: DataPart, *, problem: str) -> None:
        super().__init__(f"{part.value} in save image {problem}")
        self.part = part


class XmlTooLarge(SaveImageError):
    """The new XML and cookie need more room than the image's data section has.

    Attributes:
        needed: bytes the new XML and cookie take, terminators included.
        available: the image's data length, fixed when it was first written.
    """

    code = "xml-too-large"

    def __init__(self, *, needed: int, available: int) -> None:
        super().__init__(
            f"new xml too large to fit in file ({needed} bytes needed, {available} available)"
        )
        self.needed = needed
        self.available = available
