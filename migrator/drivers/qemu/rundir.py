"""The files of one guest in the driver's run directory: its QMP socket and QEMU's pidfile.

A restarted daemon finds its guests again through them: the pidfile names the process, and
the process is QEMU of that guest only if its command line names that pidfile.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from migrator.drivers.base import DriverError

#: The longest path a unix socket can be bound to (``sun_path`` less its terminating NUL).
UNIX_PATH_MAX = 107


@dataclass(frozen=True)
class RunPaths:
    """``RUN_DIR/NAME/``: ``qmp.sock`` and ``qemu.pid``."""

    directory: Path

    @classmethod
    def of(cls, run_dir: Path, name: str) -> RunPaths:
        """Raises: DriverError: ``name`` cannot name a directory, or the socket path would be
        too long for a unix socket."""
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise DriverError(f"domain name {name!r} cannot name a run directory", instance=name)
        paths = cls(run_dir / name)
        if len(os.fsencode(paths.monitor)) > UNIX_PATH_MAX:
            raise DriverError(
                f"QMP socket path {paths.monitor} is longer than {UNIX_PATH_MAX} bytes",
                instance=name,
            )
        return paths

    @property
    def monitor(self) -> Path:
        return self.directory / "qmp.sock"

    @property
    def pidfile(self) -> Path:
        return self.directory / "qemu.pid"

    def running_pid(self) -> int | None:
        """The process id in the pidfile if that process runs and is QEMU of this guest."""
        try:
            pid = int(self.pidfile.read_text().strip())
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if os.fsencode(self.pidfile) in arguments else None

    def bind_monitor(self) -> socket.socket:
        """Create the directory (private to this user) and a listening QMP socket in it,
        replacing stale files.

        Raises:
            DriverError: the directory or the socket cannot be created.
        """
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.monitor.unlink(missing_ok=True)
            self.pidfile.unlink(missing_ok=True)
            listener.bind(str(self.monitor))
            listener.listen()
        except OSError as err:
            listener.close()
            raise DriverError(f"cannot listen on {self.monitor}: {err.strerror or err}") from err
        return listener

    def remove(self) -> None:
        """Remove the socket, the pidfile and the directory (if nothing else is in it)."""
        self.monitor.unlink(missing_ok=True)
        self.pidfile.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()


def running_qemus(run_dir: Path) -> dict[str, int]:
    """The QEMU processes that run for the guests of ``run_dir``, by guest name."""
    pids = {}
    if run_dir.is_dir():
        for directory in run_dir.iterdir():
            pid = RunPaths(directory).running_pid()
            if pid is not None:
                pids[directory.name] = pid
    return pids
