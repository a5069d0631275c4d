"""Two ``sim`` daemons sharing one simulated world, served from a background thread's event
loop, so that the command line can run (in the test's thread) against real daemons over
unix sockets and mutual TLS."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from migrator.cli import main
from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.daemon.service import Daemon
from migrator.demo.certificates import CLIENT_NAME, create_certificates
from migrator.demo.guest import definition_xml, guest_definition
from migrator.drivers.sim import SimWorld, Workload

#: Guard only: how long a call into the background loop may take.
GUARD_S = 60
HOSTS = ("host-a", "host-b")
MiB = 1 << 20

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running in its own thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(GUARD_S)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(GUARD_S)
        self.loop.close()


@dataclass
class SimHosts:
    """The two hosts: their daemons, URIs, the world they share, and the CLI against them."""

    directory: Path
    world: SimWorld
    daemons: dict[str, Daemon]
    client_tls_dir: Path
    background: BackgroundLoop

    def unix_uri(self, host: str) -> str:
        return self.daemons[host].unix_uri

    def tls_uri(self, host: str) -> str:
        uri = self.daemons[host].tls_uri
        assert uri is not None
        return uri

    def cli(
        self,
        *arguments: str,
        host: str = "host-a",
        tls: bool = False,
        env: dict[str, str] | None = None,
    ) -> Result:
        """Run ``migrator -c URI ARGUMENTS`` against ``host`` (over TLS with ``tls``), with
        ``env`` added to the environment."""
        uri = self.tls_uri(host) if tls else self.unix_uri(host)
        options = ["-c", uri, "--tls-dir", str(self.client_tls_dir)]
        return CliRunner(env=env).invoke(main, [*options, *arguments])

    def define(self, name: str, *, memory_mib: int = 128, workload: Workload | None = None) -> Path:
        """Write a definition of guest ``name`` and define it on host-a through the CLI."""
        if workload is not None:
            self.world.set_workload(name, workload)
        domain = guest_definition(name, kernel=None, memory_mib=memory_mib, serial_port=4555)
        path = self.directory / f"{name}.xml"
        path.write_text(definition_xml(domain))
        result = self.cli("define", str(path))
        assert result.exit_code == 0, result.output
        return path


@pytest.fixture(scope="module")
def sim_hosts() -> Iterator[SimHosts]:
    directory = Path(tempfile.mkdtemp(prefix="mc", dir="/tmp"))
    certificates = create_certificates(directory / "pki", hosts=HOSTS)
    background = BackgroundLoop()
    world = SimWorld(record_trace=False)
    stack = contextlib.AsyncExitStack()

    async def start() -> dict[str, Daemon]:
        daemons = {}
        for name in HOSTS:
            others = {other for other in HOSTS if other != name}
            config = DaemonConfig(
                state_dir=directory / name,
                listen=("127.0.0.1", 0),
                tls_dir=certificates.hosts[name],
                host_name=name,
                driver=DriverKind.SIM,
                allow_clients=frozenset({*others, CLIENT_NAME}),
            )
            daemons[name] = await stack.enter_async_context(Daemon(config, sim_world=world))
        return daemons

    try:
        daemons = background.run(start())
        yield SimHosts(directory, world, daemons, certificates.client, background)
    finally:
        background.run(stack.aclose())
        background.close()
        shutil.rmtree(directory, ignore_errors=True)
