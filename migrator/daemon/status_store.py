"""Job records on disk: the runtime's ``StatusStore`` on a directory of msgpack files."""

from __future__ import annotations

from pathlib import Path

import msgpack

from migrator.daemon.atomic import atomic_write, remove_file
from migrator.daemon.errors import StateDirError
from migrator.daemon.names import named_files, named_path
from migrator.runtime.records import JobRecord, RecordError

SUFFIX = ".msgpack"


class FileStatusStore:
    """One ``NAME.msgpack`` file per guest with a job, holding ``JobRecord.to_wire()``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(self, name: str, record: JobRecord) -> None:
        """Write ``name``'s job record atomically.

        Raises:
            StateDirError: the name cannot name a file, or the file cannot be written.
        """
        atomic_write(self._path(name), msgpack.packb(record.to_wire(), use_bin_type=True))

    def load(self, name: str) -> JobRecord | None:
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
            return JobRecord.from_wire(msgpack.unpackb(data, raw=False))
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
        return sorted(named_files(self.directory, suffix=SUFFIX))

    def _path(self, name: str) -> Path:
        return named_path(self.directory, name, suffix=SUFFIX)
