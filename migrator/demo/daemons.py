"""The demo's hosts: ``migrator daemon`` subprocesses on loopback, each with its own state
directory (and so its own host UUID), certificate, TLS port and allow-list.

Each daemon runs in its own session, so that a Ctrl-C at the terminal reaches only the
demo, which then destroys the guest before it stops the daemons (a stopping daemon leaves
its guests running, by design). Should a QEMU outlive that (the guest could not be
destroyed), stopping the daemon kills what its run directory still names.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.daemon.service import RUN_DIR
from migrator.demo.errors import DemoError
from migrator.demo.guest import LOOPBACK
from migrator.drivers.qemu.rundir import RunPaths

#: Guards only: how long a daemon may take to start listening, and to stop on SIGTERM.
READY_GUARD_S = 60
STOP_GUARD_S = 30
#: The first word of the line a daemon prints once it listens; its URIs follow.
READY_WORD = "ready"
#: How much of a daemon's log a failure quotes.
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class DaemonSpec:
    """How to run the daemon of one demo host."""

    name: str
    directory: Path
    tls_dir: Path
    driver: str
    allowed_clients: tuple[str, ...]

    @property
    def state_dir(self) -> Path:
        return self.directory / "state"

    @property
    def log(self) -> Path:
        return self.directory / "daemon.log"

    def argv(self) -> list[str]:
        """The daemon's command line: a TLS listener on a free loopback port."""
        config = DaemonConfig(
            state_dir=self.state_dir,
            listen=(LOOPBACK, 0),
            tls_dir=self.tls_dir,
            host_name=self.name,
            driver=DriverKind(self.driver),
            allow_clients=frozenset(self.allowed_clients),
        )
        return [sys.executable, "-m", "migrator", "daemon", *config.options()]


class DaemonProcess:
    """A running ``migrator daemon``; :meth:`stop` sends SIGTERM and reaps it."""

    def __init__(self, spec: DaemonSpec, process: asyncio.subprocess.Process) -> None:
        self.spec = spec
        self._process = process
        self._drain: asyncio.Task[None] | None = None
        #: The URIs of the ready line: the unix socket's, then the TLS listener's.
        self.uris: list[str] = []

    @property
    def tls_uri(self) -> str:
        return self.uris[-1]

    @classmethod
    async def start(cls, spec: DaemonSpec) -> DaemonProcess:
        """Start the daemon of ``spec`` and wait for its ready line.

        Raises:
            DemoError: it exited, or did not get ready in time (its log is quoted); it has
                been stopped.
        """
        spec.directory.mkdir(parents=True, exist_ok=True)
        with spec.log.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *spec.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        daemon = cls(spec, process)
        try:
            async with asyncio.timeout(READY_GUARD_S):
                await daemon._wait_ready()
        except BaseException as exc:
            await daemon.stop()
            if isinstance(exc, TimeoutError):
                raise daemon._failure("did not get ready in time") from None
            raise
        return daemon

    async def _wait_ready(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        words = (await stdout.readline()).decode(errors="replace").split()
        if len(words) < 3 or words[0] != READY_WORD:
            await self._process.wait()
            raise self._failure(f"exited with status {self._process.returncode}")
        self.uris = words[1:]
        self._drain = asyncio.create_task(_drain(stdout))

    def _failure(self, reason: str) -> DemoError:
        try:
            lines = self.spec.log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            lines = []
        log = "".join(f"\n  {line}" for line in lines)
        return DemoError(f"the daemon {reason}{log}", step=f"start {self.spec.name}")

    async def stop(self) -> None:
        """SIGTERM the daemon and reap it (SIGKILL if it does not stop in time); then kill
        any QEMU it left running."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_GUARD_S):
                    await self._process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self._process.wait()
        if self._drain is not None:
            await self._drain
        self.kill_leftover_guests()

    def kill_leftover_guests(self) -> None:
        """SIGKILL every QEMU the daemon's run directory still names."""
        run_dir = self.spec.state_dir / RUN_DIR
        if not run_dir.is_dir():
            return
        for directory in run_dir.iterdir():
            pid = RunPaths(directory).running_pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


async def _drain(stream: asyncio.StreamReader) -> None:
    # Nobody reads the daemon's standard output after the ready line; keep the pipe empty.
    while await stream.read(1 << 16):
        pass
