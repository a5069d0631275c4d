"""The records of save and restore jobs: what a restarted daemon needs to resolve one that its
predecessor left half done (libvirt resolves those as async jobs of the domain: a save is
cancelled and the guest resumed; an unfinished incoming QEMU is killed).

A job's record is written before its first side effect (before the image is created and the
guest paused; before the incoming QEMU starts), rewritten when recovery would decide
differently (the save created the file; the restore loaded the stream), and removed when the
job ends, on every path. The one exception: once :meth:`SaveRecords.detach` was called (the
daemon is stopping), a job that is interrupted leaves its record, its guest and its image as
they are, for the next start to resolve, as a daemon that was killed would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from migrator.errors import MigratorError
from migrator.runtime.host import MemoryRecordStore
from migrator.runtime.records import RecordError

log = logging.getLogger("migrator.save")


class SaveJobKind(enum.Enum):
    """What a recorded job does."""

    #: ``save``: the guest into a file of the caller's.
    SAVE = "save"
    #: ``managedsave``: the guest into its managed-save image.
    MANAGED_SAVE = "managed-save"
    #: ``restore``: a guest from a file of the caller's (the file stays).
    RESTORE = "restore"
    #: ``start`` of a guest from its managed-save image (removed once the guest runs).
    MANAGED_RESTORE = "managed-restore"

    @property
    def saving(self) -> bool:
        return self in (SaveJobKind.SAVE, SaveJobKind.MANAGED_SAVE)


@dataclass(frozen=True, kw_only=True)
class SaveRecord:
    """One save or restore job of guest ``domain`` with image ``path``.

    A save records whether the guest was running before it paused it, QEMU's bandwidth limit
    before it lifted it (``None``: not read yet) and whether it created the image (only
    then may recovery remove it). A restore records the definition its QEMU runs (to find
    that QEMU again) and whether the stream was loaded.
    """

    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    kind: SaveJobKind
    domain: str
    path: Path
    was_running: bool = False
    original_bandwidth: int | None = None
    created: bool = False
    definition: str = ""
    loaded: bool = False

    def to_wire(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "kind": self.kind.value,
            "domain": self.domain,
            "path": str(self.path),
            "was_running": self.was_running,
            "original_bandwidth": self.original_bandwidth,
            "created": self.created,
            "definition": self.definition,
            "loaded": self.loaded,
        }

    @classmethod
    def from_wire(cls, data: object) -> SaveRecord:
        """Rebuild a record from :meth:`to_wire` output.

        Raises:
            RecordError: a field is missing or has the wrong type.
        """
        if not isinstance(data, dict):
            raise RecordError("save job record is not a mapping")
        try:
            bandwidth = data["original_bandwidth"]
            if not (bandwidth is None or type(bandwidth) is int):
                raise TypeError("original_bandwidth")
            return cls(
                job_id=str(data["job_id"]),
                kind=SaveJobKind(data["kind"]),
                domain=str(data["domain"]),
                path=Path(str(data["path"])),
                was_running=bool(data["was_running"]),
                original_bandwidth=bandwidth,
                created=bool(data["created"]),
                definition=str(data["definition"]),
                loaded=bool(data["loaded"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"save job record field is missing or invalid: {exc}") from None


class SaveRecordStore(Protocol):
    """Where a host keeps the record of each guest's save or restore job.

    ``save`` and ``delete`` raise a :class:`~migrator.errors.MigratorError` when the record
    cannot be written or removed; ``load`` when it cannot be read back.
    """

    def save(self, name: str, record: SaveRecord) -> None: ...

    def load(self, name: str) -> SaveRecord | None: ...

    def delete(self, name: str) -> None: ...

    def names(self) -> list[str]: ...


#: A save record store that lives as long as the process (a host without a state directory).
MemorySaveRecordStore = MemoryRecordStore[SaveRecord]


class RecordedJob:
    """One job's record in its store (see :meth:`SaveRecords.job`)."""

    def __init__(self, records: SaveRecords, record: SaveRecord) -> None:
        self._records = records
        self.record = record

    @property
    def detached(self) -> bool:
        """Whether an interruption now leaves the job for the next start."""
        return self._records.detached

    def update(self, **changes: object) -> None:
        """Change fields of the record and write it out.

        Raises:
            MigratorError: the store cannot write it.
        """
        self.record = dataclasses.replace(self.record, **changes)  # type: ignore[arg-type]
        self._records.store.save(self.record.domain, self.record)

    def end(self) -> None:
        """Remove the record; never raises (a record left behind is resolved, harmlessly,
        at the next start)."""
        name = self.record.domain
        try:
            self._records.store.delete(name)
        except MigratorError as exc:
            log.warning(
                "the record of the %s job of '%s' stays: %s", self.record.kind.value, name, exc
            )


class SaveRecords:
    """The save and restore jobs of one host, recorded in ``store``."""

    def __init__(self, store: SaveRecordStore) -> None:
        self.store = store
        #: Set by :meth:`detach`: interrupted jobs leave everything for the next start.
        self.detached = False

    def detach(self) -> None:
        """From now on, a job that is interrupted (the daemon is stopping) leaves its guest,
        its image and its record as they are: the next start resolves it."""
        self.detached = True

    @contextlib.contextmanager
    def job(self, record: SaveRecord) -> Iterator[RecordedJob]:
        """Write ``record``, run the block, remove the record: when the block ends, or when
        it fails before :meth:`detach`.

        Raises:
            MigratorError: the record cannot be written (the block does not run).
        """
        self.store.save(record.domain, record)
        recorded = RecordedJob(self, record)
        try:
            yield recorded
        except BaseException:
            if not self.detached:
                recorded.end()
            raise
        recorded.end()
