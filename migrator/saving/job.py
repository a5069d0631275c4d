"""A save in progress as a job: its phase, its statistics (``domjobinfo``) and its abort
(``domjobabort``); and how the engine follows a migration into or out of a file."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from cookies import JobOperation, JobStatistics
from migrator.drivers.base import (
    DriverError,
    EventKind,
    Instance,
    InstanceEvent,
    MigrationProgress,
)
from migrator.runtime.stats import job_statistics
from migrator.saving.records import SaveJobKind


class SavePhase(enum.Enum):
    """Where a save is."""

    #: Checking the request, writing the image's header, pausing the guest.
    PREPARING = "preparing"
    #: QEMU streams the guest into the image.
    WRITING = "writing"
    #: Syncing the image and marking it complete.
    FINISHING = "finishing"


class SaveJob:
    """One save (``kind``: plain or managed) of guest ``domain`` into ``path``, run by its
    instance."""

    def __init__(
        self,
        *,
        domain: str,
        path: Path,
        instance: Instance,
        kind: SaveJobKind = SaveJobKind.SAVE,
    ) -> None:
        self.domain = domain
        self.path = path
        self.instance = instance
        self.kind = kind
        self.job_id = str(uuid.uuid4())
        self.phase = SavePhase.PREPARING
        #: Set by :meth:`abort`; the save checks it before it starts QEMU's migration.
        self.aborted = False
        #: QEMU's last word on the migration, once it ended.
        self.final_progress: MigrationProgress | None = None
        self._started = time.monotonic()
        self._started_ms = time.time_ns() // 1_000_000

    def __repr__(self) -> str:
        return f"<SaveJob domain={self.domain!r} phase={self.phase.value}>"

    async def statistics(self) -> JobStatistics:
        """The job's statistics: QEMU's progress while it writes (its final figures once it
        is done), the elapsed time always.

        Never raises: a QEMU that does not answer just leaves the progress out.
        """
        progress = JobStatistics()
        if self.final_progress is not None:
            progress = job_statistics(self.final_progress)
        elif self.phase is SavePhase.WRITING and self.instance.alive:
            with contextlib.suppress(DriverError):
                progress = job_statistics(await self.instance.query_migration())
        return dataclasses.replace(
            progress,
            operation=JobOperation.SAVE,
            started=self._started_ms,
            time_elapsed=round((time.monotonic() - self._started) * 1000),
        )

    async def abort(self) -> None:
        """Cancel the save: the guest keeps running as before and the partial image is
        removed. Once QEMU has finished writing, it is too late: the save completes.

        Raises:
            DriverError: QEMU refused to cancel its migration.
        """
        self.aborted = True
        if self.phase is SavePhase.WRITING:
            await self.instance.cancel_migration()


async def migration_end(events: AsyncIterator[InstanceEvent]) -> InstanceEvent:
    """The event that ends a migration into or out of a file: a ``MIGRATION`` event with a
    final status, or ``EXITED`` (also when the subscription ends without one)."""
    async for event in events:
        if event.kind is EventKind.EXITED:
            return event
        if event.kind is EventKind.MIGRATION and event.status is not None and event.status.finished:
            return event
    return InstanceEvent(EventKind.EXITED)
