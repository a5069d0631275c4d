"""Crash-safe file replacement: the one way the daemon writes its state files.

A file is written to a temporary sibling, flushed and fsynced, renamed onto its target and
the directory fsynced, so after a crash the target holds either the old or the new content.
Temporary files are named ``.<target>.<random>.tmp``; one left by a crash is removed by
:func:`remove_stale_temp_files`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from migrator.daemon.errors import StateDirError

TEMP_SUFFIX = ".tmp"


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` (permissions ``mode``) atomically and durably.

    On failure the old file is intact and no temporary file is left behind.

    Raises:
        StateDirError: the file cannot be written.
    """
    try:
        fd, temp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX
        )
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as temp:
            os.fchmod(temp.fileno(), mode)
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException as exc:
        Path(temp_name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from None
        raise
    sync_directory(path.parent)


def remove_file(path: Path) -> None:
    """Remove ``path`` (if it exists) durably.

    Raises:
        StateDirError: the file cannot be removed.
    """
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise StateDirError(f"cannot remove {path}: {exc.strerror or exc}", path=path) from None
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Make the renames and removals in ``directory`` durable.

    Raises:
        StateDirError: the directory cannot be opened or synced.
    """
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StateDirError(
            f"cannot sync directory {directory}: {exc.strerror or exc}", path=directory
        ) from None


def remove_stale_temp_files(directory: Path) -> list[Path]:
    """Remove the temporary files that an interrupted :func:`atomic_write` left in
    ``directory``; returns them.

    Raises:
        StateDirError: a file cannot be removed.
    """
    stale = sorted(directory.glob(f".*{TEMP_SUFFIX}"))
    for path in stale:
        remove_file(path)
    return stale


def _write_error(path: Path, exc: OSError) -> StateDirError:
    return StateDirError(f"cannot write {path}: {exc.strerror or exc}", path=path)
