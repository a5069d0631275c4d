"""Saving a running guest into an image and stopping it (libvirt's ``qemuDomainSaveInternal``).

The guest is paused first, so that QEMU writes one consistent pass; ``max-bandwidth`` is
lifted for the save and put back afterwards. On any failure (QEMU's migration fails or is
cancelled, a helper fails, the disk fills up) the file this save created is removed and a
guest that was running runs again; only a save that completed stops the guest.

The job is recorded (:mod:`migrator.saving.records`) before the image is created: a daemon
that dies mid-save leaves what the next one needs to undo it (:mod:`migrator.saving.recovery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

from cookies import Cookie, to_xml
from migrator.drivers.base import DriverError, EventKind, Instance, InstanceEvent
from migrator.runtime.host import Host
from migrator.saveimage import ImageFormat, Magic, build_data
from migrator.saving.datapath import DataPath
from migrator.saving.errors import SaveCancelled, SaveError, SaveFailed
from migrator.saving.job import SaveJob, SavePhase, migration_end
from migrator.saving.records import RecordedJob, SaveRecord, SaveRecords
from migrator.saving.writer import ImageWriter
from migrator.status import MigrationStatus
from params import TABLE, Param

log = logging.getLogger("migrator.save")

#: QEMU's parameter for the migration's bandwidth limit.
MAX_BANDWIDTH: Final = TABLE[Param.MAX_BANDWIDTH].qmp_name or "max-bandwidth"
#: The limit during a save: libvirt's ``QEMU_DOMAIN_MIG_BANDWIDTH_MAX`` (in whole MiB/s).
UNLIMITED_BANDWIDTH: Final = (2**63 - 1) // (1 << 20) * (1 << 20)
#: How long the helpers get to explain a failed save before they are stopped.
HELPER_GRACE_S: Final = 5.0


@dataclass(frozen=True, kw_only=True)
class SaveSettings:
    """What a save writes: the XML (already checked), the run state to restore into, the
    stream's format, and whether to bypass the page cache."""

    xml: str
    running_after: bool | None
    image_format: ImageFormat
    bypass_cache: bool


def save_cookie(host: Host, name: str) -> str:
    """The cookie libvirt writes into a save image: who the guest is and which host saved it
    (libvirt adds the guest CPU as first requested; the definitions here keep it as is)."""
    domain = host.guest(name).domain
    return to_xml(
        Cookie(name=domain.name, uuid=str(domain.uuid), hostname=host.name, hostuuid=host.uuid)
    )


async def save_guest(
    host: Host, job: SaveJob, settings: SaveSettings, *, records: SaveRecords
) -> None:
    """Write guest ``job.domain`` into ``job.path``, then stop it; the job is in ``records``
    while it runs.

    Raises:
        SaveCancelled: :meth:`SaveJob.abort` came before QEMU finished.
        SaveFailed: QEMU's migration failed, or QEMU exited.
        HelperFailed: the compressor or the direct writer failed.
        ImageIOError, BypassCacheUnsupported: the file could not be written.
        DriverError: QEMU refused to pause or to migrate.
        MigratorError: the job's record cannot be written.
        In each case the guest runs as before (unless QEMU itself is gone) and the file
        this save created is removed; unless the records were detached (the daemon is
        stopping): then all stays as it is, for the next start to resolve.
    """
    instance = job.instance
    was_running = (await instance.run_state()).cpus_running
    original = (await instance.query_parameters())[MAX_BANDWIDTH]
    header, data = build_data(
        xml=settings.xml,
        cookie=save_cookie(host, job.domain),
        was_running=was_running if settings.running_after is None else settings.running_after,
        format=settings.image_format,
        magic=Magic.PARTIAL,
    )
    record = SaveRecord(
        job_id=job.job_id,
        kind=job.kind,
        domain=job.domain,
        path=job.path,
        was_running=was_running,
        original_bandwidth=original if type(original) is int else None,
    )
    with records.job(record) as recorded:
        writer = await asyncio.to_thread(
            ImageWriter.create,
            job.path,
            header=header,
            data=data,
            bypass_cache=settings.bypass_cache,
            domain=job.domain,
        )
        try:
            if writer.created:
                recorded.update(created=True)
            if was_running:
                await instance.pause()
            async with _unlimited_bandwidth(instance, original, recorded=recorded):
                await _write_stream(job, writer, settings)
            job.phase = SavePhase.FINISHING
            await asyncio.to_thread(writer.finish, domain=job.domain)
        except BaseException:
            if recorded.detached:
                writer.release()
                raise
            await asyncio.to_thread(writer.discard)
            await _carry_on(host, job, was_running=was_running)
            raise
        await instance.kill()
        host.remove_guest(job.domain)


async def _write_stream(job: SaveJob, writer: ImageWriter, settings: SaveSettings) -> None:
    """Let QEMU write the stream through the data path; return once it is all on disk.

    Raises:
        SaveCancelled, SaveFailed, HelperFailed, DriverError: as :func:`save_guest`.
    """
    instance = job.instance
    path = await DataPath.for_save(
        writer.fd,
        offset=writer.stream_offset,
        image_format=settings.image_format,
        bypass_cache=settings.bypass_cache,
    )
    try:
        async with instance.listen() as events:
            if job.aborted:
                raise _cancelled(job)
            job.phase = SavePhase.WRITING
            await instance.migrate_to_fd(path.qemu_fd)
            path.release_qemu_end()
            await _cancel_if_aborted(job)
            end = await migration_end(events)
        with contextlib.suppress(DriverError):
            job.final_progress = await instance.query_migration()
        if end.status is not MigrationStatus.COMPLETED:
            raise await _why(job, end, path)
        await path.wait()
    finally:
        await path.stop()


async def _why(job: SaveJob, end: InstanceEvent, path: DataPath) -> SaveError:
    """The error for a migration that ended without completing: a helper's own failure
    explains QEMU's broken pipe best."""
    if end.status is MigrationStatus.CANCELLED:
        return _cancelled(job)
    helper_failure = await path.failure(grace_s=HELPER_GRACE_S)
    if helper_failure is not None:
        helper_failure.domain, helper_failure.path = job.domain, job.path
        return helper_failure
    if end.kind is EventKind.EXITED:
        detail = end.detail
    else:
        final = job.final_progress
        detail = (final.error_desc if final is not None else None) or ""
    return SaveFailed(
        f"saving domain '{job.domain}' to {job.path} failed" + (f": {detail}" if detail else ""),
        domain=job.domain,
        path=job.path,
        detail=detail,
    )


async def _cancel_if_aborted(job: SaveJob) -> None:
    """An abort that came while QEMU's migration was being started cancels it now."""
    if job.aborted:
        await job.instance.cancel_migration()


def _cancelled(job: SaveJob) -> SaveCancelled:
    return SaveCancelled(
        f"saving domain '{job.domain}' to {job.path} was cancelled",
        domain=job.domain,
        path=job.path,
    )


async def _carry_on(host: Host, job: SaveJob, *, was_running: bool) -> None:
    """After a failed save: a guest that was running runs again; one whose QEMU is gone is
    no longer on this host."""
    instance = job.instance
    if not instance.alive:
        host.remove_guest(job.domain)
        return
    if was_running:
        try:
            await instance.resume()
        except DriverError as exc:
            log.warning(
                "domain '%s' could not be resumed after its save failed: %s", job.domain, exc
            )


@contextlib.asynccontextmanager
async def _unlimited_bandwidth(
    instance: Instance, original: object, *, recorded: RecordedJob
) -> AsyncIterator[None]:
    """Lift QEMU's bandwidth limit for the block and put ``original`` back (libvirt's
    ``qemuMigrationSrcToFile``); a detached job leaves that to the next start.

    Raises:
        DriverError: QEMU refused the change (nothing was changed).
    """
    await instance.set_parameters({MAX_BANDWIDTH: UNLIMITED_BANDWIDTH})
    try:
        yield
    finally:
        if instance.alive and not recorded.detached:
            try:
                await instance.set_parameters({MAX_BANDWIDTH: original})
            except DriverError as exc:
                log.warning("the bandwidth limit of '%s' stays lifted: %s", instance.name, exc)
