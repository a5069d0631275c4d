"""Daemons as subprocesses (``python -m migrator daemon``), and the certificates they use.

A :class:`DaemonProcess` starts its daemon and waits for its ``ready`` line; it can be
stopped (SIGTERM), killed (SIGKILL) and started again on the same state directory. Its QEMU
processes outlive a killed daemon, as they would on a real host: :meth:`kill_guests` ends
whatever its run directory still names, so a test leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.drivers.qemu.rundir import running_qemus
from transport import certdir, pki

#: Seconds a daemon may take to print its ready line or to exit (a guard only).
GUARD_S = 30.0
LOOPBACK = "127.0.0.1"
#: The name on the certificate tests use as a client of the daemons.
ADMIN = "admin"


@dataclass(frozen=True)
class Certificates:
    """A cluster CA with host directories (``certdir`` layout) for each name given, plus
    ``rogue``: a certificate named ``admin`` from another CA."""

    root: Path

    def host(self, name: str) -> Path:
        return self.root / name

    @property
    def rogue(self) -> Path:
        return self.root / "rogue"


def make_certificates(root: Path, names: Sequence[str]) -> Certificates:
    certdir.create_ca(root)
    for name in (*names, ADMIN):
        certdir.issue(root, name=name, ips=[LOOPBACK])
    day = dt.timedelta(days=1)
    rogue_ca = pki.new_ca(name="rogue-ca", valid_for=day)
    rogue = pki.issue_host(rogue_ca, name=ADMIN, ips=[LOOPBACK], valid_for=day)
    ca = certdir.load_ca(root)
    # The rogue client trusts the cluster CA: only its own certificate is at fault.
    certdir.write_host_directory(root / "rogue", ca_certificate=ca.certificate, host=rogue)
    return Certificates(root)


@contextlib.contextmanager
def short_directory() -> Iterator[Path]:
    """A fresh directory with a short path (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="md", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class DaemonProcess:
    """``migrator daemon`` for host ``name`` with its state in ``state_dir``."""

    def __init__(
        self,
        name: str,
        state_dir: Path,
        *,
        driver: str = "qemu",
        tls_dir: Path | None = None,
        allow: Sequence[str] = (),
        extra: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.state_dir = state_dir
        self.driver = driver
        self.tls_dir = tls_dir
        self.allow = tuple(allow)
        self.extra = tuple(extra)
        self.log = state_dir.parent / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.uris: list[str] = []
        self._tls_port = 0

    @property
    def unix_uri(self) -> str:
        return self.uris[0]

    @property
    def tls_uri(self) -> str:
        return self.uris[1]

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    def config(self) -> DaemonConfig:
        listen = None if self.tls_dir is None else (LOOPBACK, self._tls_port)
        return DaemonConfig(
            state_dir=self.state_dir,
            listen=listen,
            tls_dir=self.tls_dir,
            host_name=self.name,
            driver=DriverKind(self.driver),
            allow_clients=frozenset(self.allow),
        )

    def argv(self) -> list[str]:
        # A restarted daemon listens on the port it had, so peers keep their URI.
        options = self.config().options()
        return [sys.executable, "-m", "migrator", "daemon", *options, *self.extra]

    def start(self) -> DaemonProcess:
        """Start the daemon and wait for its ready line.

        Raises:
            RuntimeError: it exited or said nothing in time (its log is in the message).
        """
        return self.spawn().wait_ready()

    def spawn(self) -> DaemonProcess:
        """Start the daemon (:meth:`wait_ready` waits for it)."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv(), stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
            )
        return self

    def wait_ready(self) -> DaemonProcess:
        """Wait for the ready line of the daemon :meth:`spawn` started.

        Raises:
            RuntimeError: it exited or said nothing in time (its log is in the message).
        """
        line = self._read_line()
        if not line.startswith("ready "):
            self.kill()
            raise RuntimeError(f"daemon {self.name} did not start: {line!r}\n{self.log_text()}")
        self.uris = line.split()[1:]
        if len(self.uris) > 1:
            self._tls_port = int(self.uris[1].rsplit(":", 1)[1])
        return self

    def stop(self) -> int:
        """SIGTERM; its exit status."""
        return self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the daemon dies at once; its QEMU processes run on."""
        self._end(signal.SIGKILL)

    def restart(self) -> DaemonProcess:
        self.stop()
        return self.start()

    def qemu_pids(self) -> dict[str, int]:
        """The QEMU processes its run directory names, by guest."""
        return running_qemus(self.run_dir)

    def kill_guests(self) -> None:
        """SIGKILL every QEMU its run directory names, and wait until they are gone."""
        for pid in self.qemu_pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.qemu_pids())

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def _end(self, signum: int) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signum)
        try:
            code = process.wait(GUARD_S)
        finally:
            if process.stdout is not None:
                process.stdout.close()
            self.process = None
        return code

    def _read_line(self) -> str:
        process = self.process
        assert process is not None and process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(GUARD_S):
                return "<nothing within the guard time>"
        return process.stdout.readline().decode(errors="replace").strip()


def wait_until(condition: Callable[[], bool], *, guard_s: float = GUARD_S) -> None:
    """Poll ``condition()`` until it holds (a guard against hanging, not a timing check)."""
    deadline = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{condition!r} did not hold within {guard_s} s")
        time.sleep(0.02)


@contextlib.contextmanager
def daemon_pair(certs: Certificates, root: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess]]:
    """Daemons ``host-a`` and ``host-b`` on QEMU with TLS listeners, each allowing the other
    and ``admin``, started at once; on the way out both are stopped (SIGTERM, then SIGKILL
    if need be) and every QEMU they leave is killed."""
    a = DaemonProcess("host-a", root / "a", tls_dir=certs.host("host-a"), allow=["host-b", ADMIN])
    b = DaemonProcess("host-b", root / "b", tls_dir=certs.host("host-b"), allow=["host-a", ADMIN])
    try:
        a.spawn()
        b.spawn()
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        for daemon in (a, b):
            daemon.stop()
            daemon.kill_guests()
