"""Job records on disk, one msgpack file per guest with a job, written atomically:
``NAME.msgpack`` holds a migration job's record (the runtime's ``StatusStore``),
``NAME.save-job`` a save or restore job's (the ``SaveRecordStore`` of
:mod:`migrator.saving`), both in the same directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import msgpack

from migrator.daemon.atomic import atomic_write, remove_file
from migrator.daemon.errors import StateDirError
from migrator.daemon.names import named_files, named_path
from migrator.runtime.records import JobRecord, RecordError
from migrator.saving.records import SaveRecord

SUFFIX = ".msgpack"
SAVE_JOB_SUFFIX = ".save-job"


class _Record(Protocol):
    def to_wire(self) -> dict[str, object]: ...


R = TypeVar("R", bound=_Record)


class _RecordFiles(Generic[R]):
    """One ``NAME`` + ``suffix`` file per guest, holding ``record.to_wire()``; ``decode`` reads
    one back (raising ``RecordError``)."""

    def __init__(self, directory: Path, *, suffix: str, decode: Callable[[object], R]) -> None:
        self.directory = directory
        self._suffix = suffix
        self._decode = decode

    def save(self, name: str, record: R) -> None:
        """Write ``name``'s job record atomically.

        Raises:
            StateDirError: the name cannot name a file, or the file cannot be written.
        """
        atomic_write(self._path(name), msgpack.packb(record.to_wire(), use_bin_type=True))

    def load(self, name: str) -> R | None:
        """``name``'s job record, or ``None`` when it has none.

        Raises:
            StateDirError: the name cannot name a file, or the file cannot be read or does
                not hold a job record.
        """
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateDirError(f"cannot read {path}: {exc.strerror or exc}", path=path) from None
        try:
            return self._decode(msgpack.unpackb(data, raw=False))
        except (ValueError, TypeError, RecordError) as exc:
            raise StateDirError(f"{path} is not a valid job record: {exc}", path=path) from None

    def delete(self, name: str) -> None:
        """Remove ``name``'s job record, if there is one.

        Raises:
            StateDirError: the name cannot name a file, or the file cannot be removed.
        """
        remove_file(self._path(name))

    def names(self) -> list[str]:
        """The guests that have a job record, sorted."""
        return sorted(named_files(self.directory, suffix=self._suffix))

    def _path(self, name: str) -> Path:
        return named_path(self.directory, name, suffix=self._suffix)


class FileStatusStore(_RecordFiles[JobRecord]):
    """The migration job records: ``NAME.msgpack`` files; :attr:`save_jobs` are the save and
    restore job records next to them."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, suffix=SUFFIX, decode=JobRecord.from_wire)
        self.save_jobs = FileSaveJobStore(directory)


class FileSaveJobStore(_RecordFiles[SaveRecord]):
    """The save and restore job records: ``NAME.save-job`` files."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, suffix=SAVE_JOB_SUFFIX, decode=SaveRecord.from_wire)
