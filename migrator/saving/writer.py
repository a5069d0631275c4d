"""Writing a new save image with libvirt's crash-safe protocol (``qemuSaveImageCreate``).

1. Create the file and write the header with the *partial* magic, the XML and the padding.
2. The stream goes in after them, written by QEMU (or a helper) through the descriptor.
3. Sync the file, then write the header again with the *complete* magic and sync again.
4. On failure, remove the file if this save created it.

A crash at any moment leaves either no file, a file with the partial magic (which restore
refuses and managed save discards), or a complete image. These methods block; the
operations run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
from pathlib import Path

from migrator.saveimage import HEADER_SIZE, Magic, SaveHeader
from migrator.saving.errors import BypassCacheUnsupported, ImageIOError
from migrator.saving.imagefile import sync_directory, write_all

#: Permissions of a new image: it holds the guest's memory.
IMAGE_MODE = 0o600


class ImageWriter:
    """A new image being written at ``path``; :attr:`fd` is positioned where the stream goes.

    Create one with :meth:`create`; end it with :meth:`finish`, :meth:`discard` or
    :meth:`release`.
    """

    def __init__(self, *, path: Path, fd: int, header: SaveHeader, created: bool) -> None:
        self.path = path
        self.fd = fd
        self._header = header
        #: Whether this save made the file (only then does a failure remove it).
        self.created = created
        self._open = True

    @classmethod
    def create(
        cls, path: Path, *, header: SaveHeader, data: bytes, bypass_cache: bool, domain: str
    ) -> ImageWriter:
        """Open ``path`` (created, or truncated if it exists) and write the partial header
        and the data section.

        Raises:
            BypassCacheUnsupported: ``bypass_cache`` on a filesystem that refuses O_DIRECT.
            ImageIOError: the file cannot be created or written (nothing is left behind).
        """
        partial = dataclasses.replace(header, magic=Magic.PARTIAL)
        flags = os.O_WRONLY | os.O_CLOEXEC
        try:
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, IMAGE_MODE)
                created = True
            except FileExistsError:
                fd = os.open(path, flags | os.O_TRUNC)
                created = False
        except OSError as exc:
            raise ImageIOError("create", exc, path=path, domain=domain) from None
        writer = cls(path=path, fd=fd, header=partial, created=created)
        try:
            if bypass_cache:
                writer._check_direct_io(domain)
            try:
                write_all(fd, partial.pack() + data)
            except OSError as exc:
                raise ImageIOError("write", exc, path=path, domain=domain) from None
        except BaseException:
            writer.discard()
            raise
        return writer

    def _check_direct_io(self, domain: str) -> None:
        """Raises: BypassCacheUnsupported, ImageIOError."""
        try:
            os.close(os.open(self.path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC))
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise BypassCacheUnsupported(path=self.path, domain=domain) from None
            raise ImageIOError("open", exc, path=self.path, domain=domain) from None

    @property
    def stream_offset(self) -> int:
        return HEADER_SIZE + self._header.data_len

    def finish(self, *, domain: str) -> None:
        """Make the image complete: sync the stream, write the complete magic, sync again.

        Raises:
            ImageIOError: a sync or the header write failed (the image stays partial; call
                :meth:`discard`).
        """
        complete = dataclasses.replace(self._header, magic=Magic.COMPLETE)
        try:
            os.fsync(self.fd)
            # A direct-I/O writer shares the file's open flags; the header write is unaligned.
            fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
            write_all(self.fd, complete.pack(), offset=0)
            os.fsync(self.fd)
            os.close(self.fd)
            self._open = False
            if self.created:
                sync_directory(self.path.parent)
        except OSError as exc:
            raise ImageIOError("finish", exc, path=self.path, domain=domain) from None

    def release(self) -> None:
        """Close the file and leave it as it is (a save left for the next start to resolve)."""
        if self._open:
            self._open = False
            with contextlib.suppress(OSError):
                os.close(self.fd)

    def discard(self) -> None:
        """Close the file and, if this save created it, remove it; never raises for a file
        already gone."""
        self.release()
        if self.created:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
                sync_directory(self.path.parent)
