"""What stands between QEMU and the image file: nothing, or external programs on pipes.

QEMU reads and writes the stream itself through a passed descriptor; no byte goes through
Python. A raw save hands QEMU the image file, positioned after the data section. Otherwise
QEMU writes into a pipe and external programs carry the stream on to the file:

* compression: ``gzip -c``, ``zstd -c``, ``xz -c -3``, ... (libvirt's commands), writing the
  file;
* bypassing the cache: ``dd`` with ``oflag=direct``. O_DIRECT needs writes aligned to the
  block size, and the stream starts right after the data section, so a first ``dd`` writes
  the bytes up to the next boundary through the cache and a second one the rest directly
  (GNU dd writes a final partial block without O_DIRECT).

A restore of a compressed image puts the decompressor between the file and QEMU.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
from collections.abc import Sequence
from typing import Final

from migrator.saveimage import ImageFormat
from migrator.saving.errors import HelperFailed, SaveError, UnsupportedFormat

#: The block size a direct write must be aligned to (the largest logical block size in use).
DIRECT_ALIGNMENT: Final = 4096
#: The direct writer's block: large, for throughput.
DIRECT_BLOCK: Final = 1 << 20
#: What each pipe holds (Linux's default is 64 KiB); failing to grow it only costs speed.
PIPE_BYTES: Final = 1 << 20
#: How much of a helper's standard error an error keeps.
STDERR_TAIL: Final = 2000


def check_format(image_format: ImageFormat, *, decompress: bool) -> None:
    """Check that this host can write (or, with ``decompress``, read) ``image_format``.

    Raises:
        UnsupportedFormat: the mapped-ram ``sparse`` format, or a program not installed.
    """
    if image_format is ImageFormat.SPARSE:
        raise UnsupportedFormat(
            image_format.name.lower(), reason="it needs QEMU's mapped-ram (QEMU 9.0 or later)"
        )
    command = image_format.decompress_command if decompress else image_format.compress_command
    if command is not None and shutil.which(command[0]) is None:
        raise UnsupportedFormat(
            image_format.name.lower(), reason=f"'{command[0]}' is not installed"
        )


def direct_writer_command(offset: int) -> tuple[str, ...]:
    """A command copying stdin to stdout (the image, at ``offset``) with O_DIRECT."""
    head = -offset % DIRECT_ALIGNMENT
    direct = f"exec dd bs={DIRECT_BLOCK} iflag=fullblock oflag=direct status=none"
    if head:
        direct = f"dd bs={head} count=1 iflag=fullblock status=none && {direct}"
    return ("sh", "-c", direct)


class Helper:
    """One external program of a data path, with its standard error kept for errors."""

    def __init__(self, command: tuple[str, ...], process: asyncio.subprocess.Process) -> None:
        self.command = command
        self._process = process
        self._outcome = asyncio.ensure_future(process.communicate())

    @classmethod
    async def spawn(cls, command: Sequence[str], *, stdin: int, stdout: int) -> Helper:
        """Start ``command`` reading ``stdin`` and writing ``stdout`` (both stay open here).

        Raises:
            HelperFailed: the program cannot be started.
        """
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=stdin, stdout=stdout, stderr=asyncio.subprocess.PIPE
            )
        except OSError as exc:
            raise HelperFailed(tuple(command), returncode=None, stderr=str(exc)) from None
        return cls(tuple(command), process)

    async def wait(self) -> None:
        """Wait for the program to exit.

        Raises:
            HelperFailed: it exited with an error.
        """
        _stdout, stderr = await asyncio.shield(self._outcome)
        returncode = self._process.returncode
        assert returncode is not None
        if returncode != 0:
            text = stderr.decode("utf-8", "replace").strip()[-STDERR_TAIL:]
            raise HelperFailed(self.command, returncode=returncode, stderr=text)

    async def stop(self) -> None:
        """End the program now if it still runs, and reap it."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(self._outcome)


class DataPath:
    """The pipes and programs of one save or restore; :attr:`qemu_fd` is what QEMU gets.

    Build one with :meth:`for_save` or :meth:`for_restore`; after QEMU has its copy of
    :attr:`qemu_fd`, call :meth:`release_qemu_end`, so that the programs see the stream end
    when QEMU closes it. End it with :meth:`wait` (success) or :meth:`stop`.
    """

    def __init__(self, qemu_fd: int) -> None:
        self.qemu_fd = qemu_fd
        self.helpers: list[Helper] = []
        #: Pipe ends this process still holds (closed at the latest by :meth:`stop`).
        self._own: list[int] = []

    @classmethod
    async def for_save(
        cls, image_fd: int, *, offset: int, image_format: ImageFormat, bypass_cache: bool
    ) -> DataPath:
        """The path from QEMU into ``image_fd`` (positioned at ``offset``).

        Raises:
            HelperFailed: a program could not be started (nothing is left running).
            SaveError: no pipe could be made.
        """
        stages: list[tuple[str, ...]] = []
        compress = image_format.compress_command
        if compress is not None:
            stages.append(compress)
        if bypass_cache:
            stages.append(direct_writer_command(offset))
        path = cls(image_fd)
        try:
            for command in reversed(stages):
                read_end, write_end = _pipe()
                path._own += [read_end, write_end]
                path.helpers.append(
                    await Helper.spawn(command, stdin=read_end, stdout=path.qemu_fd)
                )
                path._close(read_end)
                if path.qemu_fd != image_fd:
                    path._close(path.qemu_fd)
                path.qemu_fd = write_end
        except BaseException:
            await path.stop()
            raise
        return path

    @classmethod
    async def for_restore(cls, image_fd: int, *, image_format: ImageFormat) -> DataPath:
        """The path from ``image_fd`` (positioned at the stream) into QEMU.

        Raises:
            HelperFailed: the decompressor could not be started.
            SaveError: no pipe could be made.
        """
        decompress = image_format.decompress_command
        if decompress is None:
            return cls(image_fd)
        read_end, write_end = _pipe()
        path = cls(read_end)
        path._own += [read_end, write_end]
        try:
            path.helpers.append(await Helper.spawn(decompress, stdin=image_fd, stdout=write_end))
            path._close(write_end)
        except BaseException:
            await path.stop()
            raise
        return path

    def release_qemu_end(self) -> None:
        """Close this process's copy of the pipe end QEMU now holds (the image file itself
        stays open: its owner closes it)."""
        if self.qemu_fd in self._own:
            self._close(self.qemu_fd)

    async def wait(self) -> None:
        """Wait for every program to finish its part of the stream.

        Raises:
            HelperFailed: the first program that exited with an error.
        """
        try:
            for helper in self.helpers:
                await helper.wait()
        finally:
            self._close_all()

    async def stop(self) -> None:
        """End every program still running and close the pipes."""
        self._close_all()
        for helper in self.helpers:
            await helper.stop()

    async def failure(self, *, grace_s: float) -> HelperFailed | None:
        """After QEMU gave up: the error of a program that failed (a full disk seen by the
        compressor explains QEMU's broken pipe), waiting up to ``grace_s`` for them to end;
        the rest are stopped."""
        try:
            async with asyncio.timeout(grace_s):
                await self.wait()
        except HelperFailed as exc:
            return exc
        except TimeoutError:
            pass
        finally:
            await self.stop()
        return None

    def _close(self, fd: int) -> None:
        self._own.remove(fd)
        os.close(fd)

    def _close_all(self) -> None:
        for fd in list(self._own):
            self._close(fd)


def _pipe() -> tuple[int, int]:
    """Raises: SaveError: the system has no pipe to give."""
    try:
        read_end, write_end = os.pipe()
    except OSError as exc:
        raise SaveError(
            f"cannot create a pipe for the stream: {exc.strerror or exc}", code="no-pipe"
        ) from None
    with contextlib.suppress(OSError):
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return read_end, write_end
