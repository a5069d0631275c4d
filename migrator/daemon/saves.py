"""The save requests of the daemon's API: ``save``, ``restore``, managed save, and the XML
inside save images, over :class:`~migrator.saving.SaveOps`.

A save is a job of its domain: it claims the domain (a second job is refused ``busy``),
``domjobinfo`` shows its progress and ``domjobabort`` cancels it (the guest keeps running,
the partial file is removed). When it ends, its outcome is the domain's last completed job.
Managed-save images live in the state directory (``save/NAME.save``).

Saves and restores are recorded in the state directory while they run (``status/NAME.save-job``).
A daemon that stops leaves an interrupted one as it is; the next start resolves it (the save
cancelled, its guest resumed, its partial image removed; the restore's QEMU killed) and makes
that the domain's last completed job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from cookies import JobOperation, JobStatistics
from migrator.client.errors import BUSY, INVALID_ARGUMENT, INVALID_STATE, NO_DOMAIN
from migrator.client.types import DomainState, DomainSummary, JobInfo, JobType, LifecycleKind
from migrator.client.types import operation_label as label_of
from migrator.daemon.claims import DomainJobs
from migrator.daemon.errors import RequestError
from migrator.daemon.events import EventHub
from migrator.daemon.host import DaemonHost
from migrator.daemon.progress import JobReporter
from migrator.domain import parse_domain
from migrator.drivers.base import DriverError
from migrator.saving import (
    DomainBusy,
    DomainStateError,
    ManagedStartOutcome,
    NoManagedSave,
    SaveCancelled,
    SaveError,
    SaveOps,
    XmlRejected,
)

log = logging.getLogger("migrator.daemon.saves")

#: The state directory's folder of managed-save images.
MANAGED_SAVE_DIR = "save"
#: ``SaveError`` codes as the API names them; the others reach the caller as they are
#: (``incomplete-image``, ``bad-magic``, ``image-io``, ``save-failed``, ``restore-failed``, ...).
_SAVE_CODES = {
    "busy": BUSY,
    "domain-state": INVALID_STATE,
    "no-managed-save": INVALID_STATE,
    "no-job": INVALID_STATE,
    "xml-rejected": INVALID_ARGUMENT,
    "bad-path": INVALID_ARGUMENT,
    "bad-name": INVALID_ARGUMENT,
}
_SAVE = label_of(JobOperation.SAVE)


def save_error_details(exc: SaveError) -> tuple[str, dict[str, Any]]:
    """The API's code and the details a caller receives for ``exc``."""
    details: dict[str, Any] = {}
    if exc.domain is not None:
        details["domain"] = exc.domain
    if exc.path is not None:
        details["path"] = str(exc.path)
    if isinstance(exc, XmlRejected) and exc.field is not None:
        details["field"] = exc.field
    return _SAVE_CODES.get(exc.code, exc.code), details


class Saves:
    """Save requests on one host."""

    def __init__(
        self,
        host: DaemonHost,
        *,
        jobs: DomainJobs,
        hub: EventHub,
        reporter: JobReporter,
    ) -> None:
        self.host = host
        self.jobs = jobs
        self.hub = hub
        self.reporter = reporter
        self.ops = SaveOps(
            host,
            managed_save_dir=host.state.path / MANAGED_SAVE_DIR,
            records=host.state.status.save_jobs,
        )

    # -- a stopping and a starting daemon ------------------------------------------------------

    def quiesce(self) -> None:
        """From now on, a save or restore that the daemon's stop interrupts is left as it is,
        for the next start to resolve."""
        self.ops.detach()

    async def recover(self) -> list[str]:
        """Resolve the saves and restores a previous daemon left half done (once the host has
        found its guests again); each is logged and becomes its domain's last completed job.
        The domains concerned.

        Raises:
            MigratorError: a job record cannot be read back.
        """
        names = []
        for recovered in await self.ops.recover():
            name = recovered.record.domain
            log.warning("%s", recovered.summary(), extra={"domain": name})
            operation = JobOperation.SAVE if recovered.record.kind.saving else JobOperation.RESTORE
            error = None if recovered.kept else recovered.error
            statistics = JobStatistics(operation=operation, success=error is None, errmsg=error)
            self.reporter.completed[name] = JobInfo(
                JobType.FAILED if error else JobType.COMPLETED,
                label_of(operation),
                None,
                statistics,
                error,
            )
            names.append(name)
        return names

    # -- save and restore ----------------------------------------------------------------------

    async def save(
        self,
        name: str,
        path: Path,
        *,
        running: bool | None,
        xml: str | None,
        bypass_cache: bool,
    ) -> JobInfo:
        """``virsh save``: write running guest ``name`` into ``path`` and stop it; the
        completed job.

        Raises:
            RequestError: ``no-domain``, ``invalid-state`` (not running), ``busy``.
            SaveError, DriverError: as :meth:`SaveOps.save` (the guest runs on).
        """
        self._check_running(name)
        with self.jobs.claim(name, JobOperation.SAVE):
            return await self._saving(
                name,
                self.ops.save(
                    name, path, running_after=running, xml=xml, bypass_cache=bypass_cache
                ),
            )

    async def managed_save(self, name: str, *, running: bool | None, bypass_cache: bool) -> JobInfo:
        """``virsh managedsave``: save ``name`` into its managed-save image; the next
        ``start`` restores it.

        Raises:
            RequestError: ``no-domain``, ``invalid-state`` (not running), ``busy``.
            SaveError, DriverError: as :meth:`SaveOps.managed_save`.
        """
        self._check_running(name)
        with self.jobs.claim(name, JobOperation.SAVE):
            return await self._saving(
                name, self.ops.managed_save(name, running_after=running, bypass_cache=bypass_cache)
            )

    async def restore(self, path: Path, *, running: bool | None, xml: str | None) -> DomainSummary:
        """``virsh restore``: start the guest saved in ``path``; its summary.

        Raises:
            RequestError: ``busy`` (a job runs on the guest's name).
            SaveError, DriverError: as :meth:`SaveOps.restore`.
        """
        name = parse_domain(await self.ops.image_xml(path)).name
        with self.jobs.claim(name, JobOperation.RESTORE):
            start_paused = None if running is None else not running
            instance = await self.ops.restore(path, start_paused=start_paused, xml=xml)
            guest = self.host.guests[name]
        self.hub.lifecycle(name, LifecycleKind.STARTED, "restored")
        paused = not (await instance.run_state()).cpus_running
        return DomainSummary(
            name,
            str(guest.domain.uuid),
            DomainState.PAUSED if paused else DomainState.RUNNING,
            persistent=name in self.host.definitions,
        )

    async def start_from_managed_save(self, name: str, *, paused: bool) -> bool:
        """Start ``name`` from its managed-save image if it has a usable one (for ``start``,
        which holds the domain); whether it did. A broken image is discarded (logged): the
        guest must then boot fresh.

        Raises:
            RequestError: (``start-failed``) the image is fine but the guest could not be
                started from it; the image stays.
        """
        try:
            outcome = await self.ops.start_with_managed_save(
                name, start_paused=True if paused else None
            )
        except (SaveError, DriverError) as exc:
            raise RequestError(
                f"cannot start domain '{name}' from its managed save image: {exc}",
                code="start-failed",
            ) from None
        if outcome.outcome is ManagedStartOutcome.DISCARDED:
            log.warning(
                "domain '%s' boots fresh: its managed save image was discarded (%s)",
                name,
                outcome.problem,
            )
        return not outcome.boot_fresh

    # -- managed-save images and the XML in images ---------------------------------------------

    def has_managed_save(self, name: str) -> bool:
        """Whether ``name`` has a managed-save image (a name that cannot have one has not)."""
        try:
            return self.ops.has_managed_save(name)
        except SaveError:
            return False

    async def managed_save_remove(self, name: str) -> bool:
        """``managedsave-remove``; whether there was an image.

        Raises:
            RequestError: ``no-domain``, ``busy``.
            SaveError: the image cannot be removed.
        """
        self._check_known(name)
        with self.jobs.claim(name, label="managedsave-remove"):
            return await self.ops.managed_save_remove(name)

    async def managed_save_xml(self, name: str, *, security_info: bool) -> str:
        """``managedsave-dumpxml``.

        Raises:
            RequestError: ``no-domain``.
            SaveError: no image (``invalid-state``), or it cannot be read.
        """
        self._check_known(name)
        return await self.ops.managed_save_xml(name, secure=security_info)

    async def managed_save_define(self, name: str, xml: str, *, running: bool | None) -> bool:
        """``managedsave-define``, ``managedsave-edit``; whether anything changed.

        Raises:
            RequestError: ``no-domain``, ``busy``.
            SaveError: no image, it cannot be read or rewritten, or ``xml`` is refused.
        """
        self._check_known(name)
        with self.jobs.claim(name, label="managedsave-define"):
            return await self.ops.managed_save_define(name, xml, running=running)

    async def image_xml(self, path: Path, *, security_info: bool) -> str:
        """``save-image-dumpxml``.

        Raises:
            SaveError: as :meth:`SaveOps.image_xml`.
        """
        return await self.ops.image_xml(path, secure=security_info)

    async def image_define(self, path: Path, xml: str, *, running: bool | None) -> bool:
        """``save-image-define``, ``save-image-edit``; whether anything changed.

        Raises:
            SaveError: as :meth:`SaveOps.image_define`.
        """
        return await self.ops.image_define(path, xml, running=running)

    # -- the job -------------------------------------------------------------------------------

    def saving(self, name: str) -> bool:
        """Whether a save of ``name`` runs."""
        try:
            self.ops.job(name)
        except SaveError:
            return False
        return True

    async def job_info(self, name: str) -> JobInfo:
        """``domjobinfo`` of the save of ``name`` in progress.

        Raises:
            SaveError: (``invalid-state``) no save of ``name`` runs.
        """
        job = self.ops.job(name)
        return JobInfo(JobType.UNBOUNDED, _SAVE, job.phase.value, await job.statistics())

    async def abort(self, name: str) -> None:
        """``domjobabort`` of the save of ``name``: it ends cancelled, the guest runs on and
        the partial image is removed.

        Raises:
            SaveError: (``invalid-state``) no save of ``name`` runs.
            DriverError: QEMU refused to cancel.
        """
        await self.ops.job(name).abort()

    # -- helpers -------------------------------------------------------------------------------

    async def _saving(self, name: str, save: Awaitable[JobStatistics]) -> JobInfo:
        """Await ``save`` (a save of :class:`SaveOps`); record its outcome as the
        domain's last job and report the stopped guest."""
        try:
            statistics = await save
        except SaveError as exc:
            kind = JobType.CANCELLED if isinstance(exc, SaveCancelled) else JobType.FAILED
            self._record(name, kind, exc)
            raise
        except DriverError as exc:
            self._record(name, JobType.FAILED, exc)
            raise
        info = JobInfo(JobType.COMPLETED, _SAVE, statistics=statistics)
        self.reporter.completed[name] = info
        self.hub.lifecycle(name, LifecycleKind.STOPPED, "saved")
        return info

    def _record(self, name: str, kind: JobType, exc: Exception) -> None:
        if isinstance(exc, DomainBusy | DomainStateError | NoManagedSave):
            return  # refused before it began: no job ran
        # The statistics of this very save, if it ran far enough to have any.
        statistics = self.ops.completed.get(name, JobStatistics())
        if statistics.errmsg != str(exc):
            statistics = JobStatistics()
        self.reporter.completed[name] = JobInfo(kind, _SAVE, None, statistics, str(exc))

    def _check_known(self, name: str) -> None:
        if name not in self.host.definitions and name not in self.host.guests:
            raise RequestError(
                f"failed to get domain '{name}'", code=NO_DOMAIN, details={"domain": name}
            )

    def _check_running(self, name: str) -> None:
        self._check_known(name)
        if name not in self.host.guests:
            raise RequestError(f"domain '{name}' is not running", code=INVALID_STATE)
