"""The pieces a cluster of real daemons is made of: a daemon subprocess that can be killed
and started again on its state directory (on loopback, or inside a network-lab host's
namespace), and a TCP relay in front of a daemon's TLS port
whose connections can be cut (a dropped connection, as the peers see it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.drivers.qemu.rundir import running_qemus
from migrator.netlab import LabHost
from migrator.scenario.errors import ScenarioError

#: Seconds a daemon may take to print its ready line or to exit (a guard only).
DAEMON_GUARD_S = 30.0
LOOPBACK = "127.0.0.1"
#: Bytes relayed per read.
RELAY_CHUNK = 256 * 1024


class DaemonProcess:
    """``migrator daemon`` for host ``name``, with its state in ``state_dir``, listening
    with TLS on the loopback interface (or, with ``lab_host``, inside that host's namespace
    on its address, where it also awaits migration streams) and reporting fault points to
    ``points``."""

    def __init__(
        self,
        name: str,
        state_dir: Path,
        *,
        tls_dir: Path,
        allow: Sequence[str],
        points: Path,
        log: Path,
        host_uuid: str | None = None,
        lab_host: LabHost | None = None,
    ) -> None:
        self.name = name
        self.host_uuid = host_uuid
        self.state_dir = state_dir
        self.tls_dir = tls_dir
        self.allow = frozenset(allow)
        self.points = points
        self.log = log
        self.lab_host = lab_host
        self.process: asyncio.subprocess.Process | None = None
        self.unix_uri = ""
        self.tls_port = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def address(self) -> str:
        """The address its TLS listener (and its migration streams) are on."""
        return LOOPBACK if self.lab_host is None else self.lab_host.address

    def argv(self) -> list[str]:
        config = DaemonConfig(
            state_dir=self.state_dir,
            listen=(self.address, self.tls_port),
            tls_dir=self.tls_dir,
            host_name=self.name,
            host_uuid=self.host_uuid,
            driver=DriverKind.QEMU,
            allow_clients=self.allow,
            migration_address=self.address,
        )
        argv = [sys.executable, "-m", "migrator", "daemon", *config.options()]
        return argv if self.lab_host is None else self.lab_host.command(argv)

    async def start(self) -> None:
        """Start the daemon (on the TLS port it had, if it ran before) and wait until it
        listens.

        Raises:
            ScenarioError: it exited or said nothing in time.
        """
        env: Mapping[str, str] = {**os.environ, "MIGRATOR_FAULT_POINTS": str(self.points)}
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
            )
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(DAEMON_GUARD_S):
                line = (await self.process.stdout.readline()).decode(errors="replace").split()
        except TimeoutError:
            line = []
        if not line or line[0] != "ready":
            await self.kill()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise ScenarioError(
                f"the daemon on {self.name} did not start ({' '.join(line) or 'no ready line'},"
                f" exit status {self.process.returncode if self.process else None}):"
                f"\n{tail}"
            )
        self.unix_uri = line[1]
        self.tls_port = int(line[2].rsplit(":", 1)[1])

    async def kill(self) -> None:
        """SIGKILL: the daemon dies at once; its QEMU processes run on."""
        await self._end(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM, and SIGKILL if it does not exit in time."""
        try:
            async with asyncio.timeout(DAEMON_GUARD_S):
                await self._end(signal.SIGTERM)
        except TimeoutError:
            await self.kill()

    async def _end(self, signum: int) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signum)
        await process.wait()

    def qemu_pids(self) -> dict[str, int]:
        """The QEMU processes its run directory names, by guest."""
        return running_qemus(self.run_dir)


class Relay:
    """A TCP port on the loopback interface that relays every connection to ``port``;
    :meth:`cut` closes every connection relayed so far."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.listen_port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, LOOPBACK, 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    @property
    def uri(self) -> str:
        return f"migrator+tls://{LOOPBACK}:{self.listen_port}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(LOOPBACK, self.port)
        except OSError:
            writer.close()
            return
        pair = {writer, upstream_writer}
        self._writers |= pair
        try:
            await asyncio.gather(_pump(reader, upstream_writer), _pump(upstream_reader, writer))
        finally:
            self._writers -= pair
            for each in pair:
                each.close()

    def cut(self) -> None:
        """Reset every connection relayed so far."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, ConnectionError):
        while data := await reader.read(RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()
