"""Save images on disk: reading one's header and data section, and editing them in place.

These functions block (they read, write and fsync a file); the operations run them in a
worker thread.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from migrator.domain import Domain, DomainError, FormatFlag, format_domain, parse_domain
from migrator.saveimage import (
    HEADER_SIZE,
    SaveHeader,
    SaveImageError,
    parse_data,
    rewrite_data,
    stream_offset,
)
from migrator.saving.errors import BadImage, ImageIOError

#: The form of the domain XML stored in an image (libvirt: INACTIVE | SECURE | MIGRATABLE).
IMAGE_XML_FLAGS = FormatFlag.INACTIVE | FormatFlag.SECURE | FormatFlag.MIGRATABLE


@dataclass(frozen=True)
class StoredImage:
    """A complete image's header and texts, as read from ``path``."""

    path: Path
    header: SaveHeader
    xml: str
    cookie: str | None

    @property
    def stream_offset(self) -> int:
        return stream_offset(self.header)

    def domain(self) -> Domain:
        """The definition of the saved guest.

        Raises:
            BadImage: the XML in the image cannot be read as a domain.
        """
        try:
            return parse_domain(self.xml)
        except DomainError as exc:
            raise BadImage(exc, path=self.path, what="domain XML in save image: ") from None


def read_image(path: Path) -> StoredImage:
    """Read the header, domain XML and cookie of the complete image at ``path``.

    Raises:
        BadImage: the file is partial, not a save image, of an unsupported version or
            format, or its data section is damaged (``problem`` says which).
        ImageIOError: the file cannot be read.
    """
    try:
        with path.open("rb") as file:
            header = SaveHeader.unpack(file.read(HEADER_SIZE))
            xml, cookie = parse_data(header, file.read(header.data_len))
    except SaveImageError as exc:
        raise BadImage(exc, path=path) from None
    except OSError as exc:
        raise ImageIOError("read", exc, path=path) from None
    return StoredImage(path=path, header=header, xml=xml, cookie=cookie)


def stored_xml(domain: Domain) -> str:
    """``domain`` in the form an image stores it."""
    return format_domain(domain, flags=IMAGE_XML_FLAGS)


def rewrite_in_place(image: StoredImage, *, xml: str, was_running: bool | None) -> StoredImage:
    """Store new XML (and, unless ``None``, a new run state) in ``image`` in place and sync
    it; the magic, the format and the stream stay as they are.

    Raises:
        BadImage: the new XML does not fit in the image's data section, or cannot be stored.
        ImageIOError: the file cannot be written or synced.
    """
    try:
        header, data = rewrite_data(
            image.header, xml=xml, cookie=image.cookie, was_running=was_running
        )
    except SaveImageError as exc:
        raise BadImage(exc, path=image.path) from None
    try:
        fd = os.open(image.path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            write_all(fd, header.pack() + data, offset=0)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ImageIOError("rewrite", exc, path=image.path) from None
    return StoredImage(path=image.path, header=header, xml=xml, cookie=image.cookie)


def write_all(fd: int, data: bytes, *, offset: int | None = None) -> None:
    """Write all of ``data`` to ``fd``, at ``offset`` (without moving the file position)
    or, with ``None``, at the position.

    Raises:
        OSError: a write failed.
    """
    view = memoryview(data)
    while view:
        if offset is None:
            written = os.write(fd, view)
        else:
            written = os.pwrite(fd, view, offset)
            offset += written
        view = view[written:]


def remove_image(path: Path, *, domain: str) -> None:
    """Remove an image durably (one already gone is fine).

    Raises:
        ImageIOError: it cannot be removed.
    """
    try:
        path.unlink(missing_ok=True)
        sync_directory(path.parent)
    except OSError as exc:
        raise ImageIOError("remove", exc, path=path, domain=domain) from None


def sync_directory(directory: Path) -> None:
    """Make a new or removed name in ``directory`` durable.

    Raises:
        OSError: the directory cannot be opened or synced.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
