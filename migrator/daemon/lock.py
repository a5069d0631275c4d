"""The lock that keeps two daemons from sharing one state directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from migrator.daemon.errors import StateDirError

LOCK_FILE = "state-dir.lock"


class StateDirLock:
    """An exclusive ``flock`` on ``<root>/state-dir.lock``, holding the owner's pid.

    The lock lasts until :meth:`release` or until the process dies; the file itself stays,
    since removing it would let a third process lock a fresh file while the second still
    holds the old one.
    """

    def __init__(self, root: Path) -> None:
        """Take the lock.

        Raises:
            StateDirError: another process holds it, or the lock file cannot be opened.
        """
        self.path = root / LOCK_FILE
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateDirError(
                f"cannot open lock file {self.path}: {exc.strerror or exc}", path=self.path
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_pid(fd)
            os.close(fd)
            raise StateDirError(
                f"state directory {root} is in use by another daemon (pid {owner})",
                path=root,
                code="state-dir-busy",
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StateDirError(
                f"cannot lock {self.path}: {exc.strerror or exc}", path=self.path
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the lock up (again: nothing happens)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_pid(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return text if text.isdigit() else "unknown"
