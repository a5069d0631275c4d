"""Save, restore, managed save and save-image editing on one host: :class:`SaveOps`, what the
daemon's ``save``, ``restore``, ``managedsave*``, ``save-image-*`` and ``start`` call."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from dataclasses import dataclass
from pathlib import Path

from cookies import JobStatistics
from migrator.domain import (
    AbiMismatch,
    Domain,
    DomainError,
    FormatFlag,
    check_abi_stability,
    format_domain,
    parse_domain,
)
from migrator.drivers.base import Instance
from migrator.errors import MigratorError
from migrator.runtime.host import Host
from migrator.saveimage import ImageFormat
from migrator.saving.datapath import check_format
from migrator.saving.errors import (
    BadImage,
    DomainBusy,
    DomainStateError,
    HelperFailed,
    ImageIOError,
    NoManagedSave,
    RestoreFailed,
    SaveError,
    XmlRejected,
)
from migrator.saving.imagefile import (
    StoredImage,
    read_image,
    remove_image,
    rewrite_in_place,
    stored_xml,
)
from migrator.saving.job import SaveJob
from migrator.saving.records import (
    MemorySaveRecordStore,
    SaveJobKind,
    SaveRecord,
    SaveRecords,
    SaveRecordStore,
)
from migrator.saving.recovery import Recovered, recover_jobs
from migrator.saving.restore import restore_guest
from migrator.saving.save import SaveSettings, save_guest

log = logging.getLogger("migrator.save")

#: A managed-save image is ``NAME.save`` in the managed-save directory (libvirt's name).
MANAGED_SAVE_SUFFIX = ".save"
#: What a broken managed-save image does: the guest boots fresh instead.
_UNUSABLE_IMAGE = (BadImage, RestoreFailed, HelperFailed)


class ManagedStartOutcome(enum.Enum):
    """What starting a guest found in its managed-save image."""

    #: The guest runs (or waits paused) from its image, which is gone now.
    RESTORED = "restored"
    #: There was no image: boot the guest fresh.
    NO_IMAGE = "no-image"
    #: The image was partial, cut short or damaged; it was removed: boot the guest fresh.
    DISCARDED = "discarded"


@dataclass(frozen=True)
class ManagedStart:
    """The outcome of :meth:`SaveOps.start_with_managed_save`.

    Attributes:
        outcome: what happened.
        instance: the restored guest's instance (``RESTORED`` only).
        problem: why the image could not be used (``DISCARDED`` only).
    """

    outcome: ManagedStartOutcome
    instance: Instance | None = None
    problem: str | None = None

    @property
    def boot_fresh(self) -> bool:
        """Whether the caller must now start the guest from its definition."""
        return self.outcome is not ManagedStartOutcome.RESTORED


class SaveOps:
    """Saves and restores of the guests of ``host``, their managed-save images (kept in
    ``managed_save_dir``) and the XML inside save images.

    ``image_format`` is how new images store the stream unless a save says otherwise
    (qemu.conf's ``save_image_format``). Image paths must be absolute. A save is a job:
    :meth:`job` gives its statistics and its abort while it runs, :attr:`completed` the
    statistics of each guest's last save.

    Every save and restore is recorded in ``records`` (by default, in memory) while it runs;
    :meth:`detach` leaves interrupted jobs to the next start, whose :meth:`recover` resolves
    them.
    """

    def __init__(
        self,
        host: Host,
        *,
        managed_save_dir: Path,
        image_format: ImageFormat = ImageFormat.RAW,
        records: SaveRecordStore | None = None,
    ) -> None:
        self.host = host
        self.managed_save_dir = managed_save_dir
        self.image_format = image_format
        self.records = SaveRecords(MemorySaveRecordStore() if records is None else records)
        self._jobs: dict[str, SaveJob] = {}
        #: The statistics of each guest's last save, with ``success`` and ``errmsg``.
        self.completed: dict[str, JobStatistics] = {}

    def __repr__(self) -> str:
        return f"<SaveOps host={self.host.name!r} saving={sorted(self._jobs)}>"

    # -- save and restore ----------------------------------------------------------------

    def job(self, name: str) -> SaveJob:
        """The save of ``name`` in progress.

        Raises:
            SaveError: no save of that guest runs (code ``no-job``).
        """
        try:
            return self._jobs[name]
        except KeyError:
            raise SaveError(
                f"domain '{name}' is not being saved", domain=name, code="no-job"
            ) from None

    async def save(
        self,
        name: str,
        path: Path,
        *,
        running_after: bool | None = None,
        xml: str | None = None,
        bypass_cache: bool = False,
        compression: ImageFormat | None = None,
    ) -> JobStatistics:
        """Save running guest ``name`` into a new image at ``path`` and stop it (``virsh
        save``); its completed job statistics.

        ``running_after`` is the state a restore brings the guest into (``None``: the state
        it has now); ``xml`` replaces its definition in the image if it describes the same
        guest; ``compression`` overrides :attr:`image_format`.

        Raises:
            HostError: ``name`` is not running here.
            DomainBusy: it is being saved or migrated already.
            SaveError: ``path`` is not absolute.
            UnsupportedFormat: the compressor is not installed, or the format is ``sparse``.
            XmlRejected: ``xml`` is unreadable or describes another guest (``field``).
            SaveCancelled, SaveFailed, HelperFailed, ImageIOError, BypassCacheUnsupported,
                DriverError: the save did not complete; the guest runs as before and the
                file this save created is gone.
            MigratorError: the job's record cannot be written (nothing happened).
        """
        return await self._save(
            name,
            path,
            kind=SaveJobKind.SAVE,
            running_after=running_after,
            xml=xml,
            bypass_cache=bypass_cache,
            compression=compression,
        )

    async def _save(
        self,
        name: str,
        path: Path,
        *,
        kind: SaveJobKind,
        running_after: bool | None,
        xml: str | None = None,
        bypass_cache: bool,
        compression: ImageFormat | None = None,
    ) -> JobStatistics:
        """:meth:`save`, recorded as a job of ``kind``."""
        path = _absolute(path)
        guest = self.host.guest(name)
        self._check_idle(name)
        image_format = self.image_format if compression is None else compression
        check_format(image_format, decompress=False)
        domain = guest.domain if xml is None else _replacement(guest.domain, xml, path=path)
        job = SaveJob(domain=name, path=path, instance=guest.instance, kind=kind)
        self._jobs[name] = job
        settings = SaveSettings(
            xml=stored_xml(domain),
            running_after=running_after,
            image_format=image_format,
            bypass_cache=bypass_cache,
        )
        try:
            await save_guest(self.host, job, settings, records=self.records)
        except MigratorError as exc:
            statistics = await job.statistics()
            self.completed[name] = dataclasses.replace(statistics, success=False, errmsg=str(exc))
            raise
        finally:
            del self._jobs[name]
        self.completed[name] = dataclasses.replace(await job.statistics(), success=True)
        log.info("domain '%s' saved to %s", name, path)
        return self.completed[name]

    async def restore(
        self, path: Path, *, start_paused: bool | None = None, xml: str | None = None
    ) -> Instance:
        """Start the guest saved in ``path`` (``virsh restore``); the image stays.

        ``start_paused``: ``None`` follows the image, ``True`` leaves the guest paused,
        ``False`` runs it. ``xml`` replaces the saved definition if it describes the same
        guest.

        Raises:
            SaveError: ``path`` is not absolute.
            BadImage: the image is partial ("save image is incomplete"), not a save image,
                of an unsupported version, damaged or holds unreadable XML.
            ImageIOError: it cannot be read.
            XmlRejected: ``xml`` is unreadable or describes another guest.
            DomainStateError: the guest already runs, or another guest has its name.
            RestoreFailed, HelperFailed, UnsupportedFormat, DriverError: the guest could not
                be started from the image; nothing of it runs.
            MigratorError: the job's record cannot be written (nothing happened).
        """
        image = await asyncio.to_thread(read_image, _absolute(path))
        domain = image.domain()
        if xml is not None:
            domain = _replacement(domain, xml, path=image.path)
        self._check_can_start(domain)
        with self.records.job(_restore_record(SaveJobKind.RESTORE, image, domain)) as recorded:
            instance = await restore_guest(
                self.host, image, domain, start_paused=start_paused, recorded=recorded
            )
        log.info("domain '%s' restored from %s", domain.name, image.path)
        return instance

    # -- a stopping and a starting daemon -------------------------------------------------

    def detach(self) -> None:
        """From now on, a save or restore that is interrupted (the daemon stops) leaves its
        guest, its image and its record as they are, for :meth:`recover` at the next start."""
        self.records.detach()

    async def recover(self) -> list[Recovered]:
        """Resolve the jobs a previous daemon left recorded (call it once the host has found
        its guests again); what was done with each.

        Raises:
            MigratorError: a record cannot be read back.
        """
        return await recover_jobs(self.host, self.records)

    # -- managed save --------------------------------------------------------------------

    def managed_save_path(self, name: str) -> Path:
        """Where guest ``name``'s managed-save image is kept.

        Raises:
            SaveError: ``name`` cannot name a file.
        """
        if not name or name.startswith(".") or "/" in name or "\0" in name:
            raise SaveError(
                f"domain name {name!r} cannot name a managed save image",
                domain=name,
                code="bad-name",
            )
        return self.managed_save_dir / f"{name}{MANAGED_SAVE_SUFFIX}"

    def has_managed_save(self, name: str) -> bool:
        """Raises: SaveError: ``name`` cannot name a file."""
        return self.managed_save_path(name).exists()

    async def managed_save(
        self, name: str, *, running_after: bool | None = None, bypass_cache: bool = False
    ) -> JobStatistics:
        """Save persistent running guest ``name`` into its managed-save image and stop it
        (``virsh managedsave``); the next :meth:`start_with_managed_save` restores it.

        Raises:
            DomainStateError: the guest is transient.
            ImageIOError: the managed-save directory cannot be created.
            Otherwise as :meth:`save`.
        """
        if name not in self.host.definitions:
            raise DomainStateError(
                f"cannot do managed save for transient domain '{name}'", domain=name
            )
        path = self.managed_save_path(name)
        try:
            await asyncio.to_thread(path.parent.mkdir, mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ImageIOError("create the directory of", exc, path=path, domain=name) from None
        return await self._save(
            name,
            path,
            kind=SaveJobKind.MANAGED_SAVE,
            running_after=running_after,
            bypass_cache=bypass_cache,
        )

    async def managed_save_remove(self, name: str) -> bool:
        """Remove ``name``'s managed-save image (``virsh managedsave-remove``); whether there
        was one.

        Raises:
            SaveError: ``name`` cannot name a file.
            ImageIOError: the image cannot be removed.
        """
        path = self.managed_save_path(name)
        if not path.exists():
            return False
        await asyncio.to_thread(remove_image, path, domain=name)
        return True

    async def managed_save_xml(self, name: str, *, secure: bool = False) -> str:
        """The definition in ``name``'s managed-save image (``managedsave-dumpxml``).

        Raises:
            NoManagedSave: there is none.
            Otherwise as :meth:`image_xml`.
        """
        return await self.image_xml(self._existing_managed_save(name), secure=secure)

    async def managed_save_define(
        self, name: str, xml: str, *, running: bool | None = None
    ) -> bool:
        """Replace the definition in ``name``'s managed-save image (``managedsave-define``,
        ``managedsave-edit``); whether anything changed.

        Raises:
            NoManagedSave: there is none.
            Otherwise as :meth:`image_define`.
        """
        return await self.image_define(self._existing_managed_save(name), xml, running=running)

    async def start_with_managed_save(
        self, name: str, *, start_paused: bool | None = None
    ) -> ManagedStart:
        """Start guest ``name`` from its managed-save image if it has a usable one (the image
        is removed only once the guest runs from it); else report that it must boot fresh.

        An image that is partial, cut short or damaged is logged, removed and reported as
        ``DISCARDED``.

        Raises:
            SaveError: ``name`` cannot name a file.
            DomainStateError: the guest already runs, or another guest has its name.
            ImageIOError: the image cannot be read or removed.
            UnsupportedFormat, DriverError: the guest could not be started; the image stays.
        """
        path = self.managed_save_path(name)
        if not path.exists():
            return ManagedStart(ManagedStartOutcome.NO_IMAGE)
        try:
            image = await asyncio.to_thread(read_image, path)
            domain = image.domain()
            self._check_can_start(domain)
            record = _restore_record(SaveJobKind.MANAGED_RESTORE, image, domain)
            with self.records.job(record) as recorded:
                instance = await restore_guest(
                    self.host, image, domain, start_paused=start_paused, recorded=recorded
                )
                await asyncio.to_thread(remove_image, path, domain=name)
        except _UNUSABLE_IMAGE as exc:
            log.warning(
                "discarding the managed save image of domain '%s', it cannot be used: %s",
                name,
                exc,
            )
            await asyncio.to_thread(remove_image, path, domain=name)
            return ManagedStart(ManagedStartOutcome.DISCARDED, problem=str(exc))
        log.info("domain '%s' restored from its managed save image", name)
        return ManagedStart(ManagedStartOutcome.RESTORED, instance=instance)

    # -- the XML inside an image ---------------------------------------------------------

    async def image_xml(self, path: Path, *, secure: bool = False) -> str:
        """The definition saved in the image at ``path`` (``save-image-dumpxml``); with
        ``secure``, passwords included.

        Raises:
            SaveError: ``path`` is not absolute.
            BadImage, ImageIOError: as :meth:`restore`.
        """
        image = await asyncio.to_thread(read_image, _absolute(path))
        flags = FormatFlag.SECURE if secure else FormatFlag(0)
        return format_domain(image.domain(), flags=flags)

    async def image_define(self, path: Path, xml: str, *, running: bool | None = None) -> bool:
        """Replace the definition in the image at ``path`` (``save-image-define``,
        ``save-image-edit``) and, unless ``running`` is ``None``, the state a restore brings
        the guest into; whether anything changed. The magic and the stream stay untouched.

        Raises:
            SaveError: ``path`` is not absolute.
            BadImage, ImageIOError: as :meth:`restore`; BadImage also when the new XML does
                not fit in the image ("new xml too large to fit in file").
            XmlRejected: ``xml`` is unreadable or describes another guest (``field``).
        """
        image = await asyncio.to_thread(read_image, _absolute(path))
        new_xml = stored_xml(_replacement(image.domain(), xml, path=image.path))
        if new_xml == image.xml and running in (None, image.header.was_running):
            return False
        await asyncio.to_thread(rewrite_in_place, image, xml=new_xml, was_running=running)
        return True

    # -- checks --------------------------------------------------------------------------

    def _check_idle(self, name: str) -> None:
        """Raises: DomainBusy: ``name`` is being saved or has a migration job."""
        if name in self._jobs:
            raise DomainBusy(f"domain '{name}' is already being saved", domain=name)
        if self.host.status.load(name) is not None:
            raise DomainBusy(f"domain '{name}' has a migration job in progress", domain=name)

    def _check_can_start(self, domain: Domain) -> None:
        """Raises: DomainStateError: ``domain`` runs already, or clashes with another one."""
        name = domain.name
        if name in self.host.guests:
            raise DomainStateError(f"domain '{name}' is already running", domain=name)
        for guest in self.host.guests.values():
            if guest.domain.uuid == domain.uuid:
                raise DomainStateError(
                    f"domain with uuid {domain.uuid} is already running as '{guest.domain.name}'",
                    domain=name,
                )
        defined = self.host.definitions.get(name)
        if defined is not None and defined.uuid != domain.uuid:
            raise DomainStateError(
                f"domain '{name}' is already defined with uuid {defined.uuid}", domain=name
            )

    def _existing_managed_save(self, name: str) -> Path:
        """Raises: NoManagedSave, SaveError (a name that cannot name a file)."""
        path = self.managed_save_path(name)
        if not path.exists():
            raise NoManagedSave(name, path=path)
        return path


def _restore_record(kind: SaveJobKind, image: StoredImage, domain: Domain) -> SaveRecord:
    """The record of a restore of ``domain`` from ``image``."""
    return SaveRecord(
        kind=kind,
        domain=domain.name,
        path=image.path,
        definition=format_domain(domain, flags=FormatFlag.SECURE),
    )


def _absolute(path: Path) -> Path:
    """Raises: SaveError: ``path`` is relative."""
    if not path.is_absolute():
        raise SaveError(f"save image path {path} is not absolute", path=path, code="bad-path")
    return path


def _replacement(saved: Domain, xml: str, *, path: Path) -> Domain:
    """The definition ``xml`` describes, if it is the guest ``saved`` describes: both are
    compared in their canonical (migratable) form, as libvirt does since it compared
    differently parsed forms and refused a host-passthrough guest by mistake.

    Raises:
        XmlRejected: ``xml`` is unreadable, or an ABI field differs (``field``).
    """
    try:
        new = parse_domain(xml)
    except DomainError as exc:
        raise XmlRejected(
            f"new domain XML cannot be read: {exc}", field=None, domain=saved.name, path=path
        ) from None
    try:
        check_abi_stability(saved, new)
    except AbiMismatch as exc:
        raise XmlRejected(
            f"new domain XML does not describe the saved guest: {exc}",
            field=exc.field,
            domain=saved.name,
            path=path,
        ) from None
    return new
