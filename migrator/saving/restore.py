"""Starting a guest from a save image (libvirt's ``qemuSaveImageStartVM``).

QEMU starts paused, waiting for an incoming migration, and loads the stream from the image
(through the decompressor for a compressed one). Once the stream is loaded, the guest runs
if the image says it was running, unless the caller asks otherwise. If anything fails, the
QEMU just started is killed: no half-started guest is left. The caller records the job
(:mod:`migrator.saving.records`) before QEMU starts; once the records are detached (the
daemon is stopping), an interrupted restore leaves its QEMU to the next start instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Final

from migrator.domain import Domain
from migrator.drivers.base import EventKind, Instance, InstanceEvent, StartMode
from migrator.runtime.host import Host
from migrator.saving.datapath import DataPath, check_format
from migrator.saving.errors import ImageIOError, RestoreFailed
from migrator.saving.imagefile import StoredImage
from migrator.saving.job import migration_end
from migrator.saving.records import RecordedJob
from migrator.status import MigrationStatus

#: How long a QEMU that reported a failed load gets to exit and say why.
EXIT_GRACE_S: Final = 5.0


async def restore_guest(
    host: Host,
    image: StoredImage,
    domain: Domain,
    *,
    start_paused: bool | None,
    recorded: RecordedJob,
) -> Instance:
    """Start ``domain`` from ``image`` and record it as running on ``host``; ``recorded``
    is the job's record (marked ``loaded`` once QEMU has the stream).

    ``start_paused``: ``None`` follows the image, ``True`` leaves the guest paused, ``False``
    runs it.

    Raises:
        UnsupportedFormat: the decompressor is not installed.
        ImageIOError: the image cannot be opened.
        MigratorError: the job's record cannot be written.
        RestoreFailed: QEMU could not load the stream.
        HelperFailed: the decompressor failed.
        DriverError: QEMU could not be started or refused a command.
    """
    check_format(image.header.format, decompress=True)
    try:
        image_fd = os.open(image.path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ImageIOError("open", exc, path=image.path, domain=domain.name) from None
    try:
        try:
            os.lseek(image_fd, image.stream_offset, os.SEEK_SET)
        except OSError as exc:
            raise ImageIOError("read", exc, path=image.path, domain=domain.name) from None
        _read_ahead(image_fd, offset=image.stream_offset)
        path = await DataPath.for_restore(image_fd, image_format=image.header.format)
        try:
            instance = await _load(host, image, domain, path, recorded=recorded)
        finally:
            await path.stop()
    finally:
        os.close(image_fd)
    try:
        recorded.update(loaded=True)
        if image.header.was_running if start_paused is None else not start_paused:
            await instance.resume()
    except BaseException:
        await _abandon(instance, recorded)
        raise
    host.add_guest(domain, instance)
    return instance


async def _load(
    host: Host, image: StoredImage, domain: Domain, path: DataPath, *, recorded: RecordedJob
) -> Instance:
    """Start QEMU for ``domain`` and load the stream through ``path``; the paused guest.

    Raises:
        RestoreFailed, HelperFailed, DriverError: as :func:`restore_guest` (QEMU is gone).
    """
    instance = await host.driver.start(domain, mode=StartMode.INCOMING)
    try:
        async with instance.listen() as events:
            await instance.start_incoming_from_fd(path.qemu_fd)
            path.release_qemu_end()
            end = await migration_end(events)
            if end.status is not MigrationStatus.COMPLETED:
                detail = end.detail if end.kind is EventKind.EXITED else await _exit_detail(events)
                failure = await path.failure(grace_s=EXIT_GRACE_S)
                if failure is not None:
                    failure.domain, failure.path = domain.name, image.path
                    raise failure
                raise RestoreFailed(domain=domain.name, path=image.path, detail=detail)
        await path.wait()
    except BaseException:
        await _abandon(instance, recorded)
        raise
    return instance


async def _abandon(instance: Instance, recorded: RecordedJob) -> None:
    """Kill the QEMU of a restore that failed, unless the job is left for the next start."""
    if not recorded.detached:
        await instance.kill()


async def _exit_detail(events: AsyncIterator[InstanceEvent]) -> str:
    """How QEMU ended after it reported a failed load (it exits then), if it does so soon."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(EXIT_GRACE_S):
            async for event in events:
                if event.kind is EventKind.EXITED:
                    return event.detail
    return ""


def _read_ahead(fd: int, *, offset: int) -> None:
    """Ask the kernel to read the stream ahead while QEMU loads it: QEMU reads in small
    pieces, one after the other, and a cold page cache would make each one wait for the disk."""
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, offset, 0, os.POSIX_FADV_SEQUENTIAL)
        os.posix_fadvise(fd, offset, 0, os.POSIX_FADV_WILLNEED)
