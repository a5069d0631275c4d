from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrator.client import Client
from migrator.daemon import StateDir
from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.daemon.service import Daemon
from migrator.drivers.sim import SimWorld
from tests.daemon.processes import short_directory


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDir]:
    with StateDir(tmp_path / "state") as opened:
        yield opened


def temp_files(directory: Path) -> list[Path]:
    """Every leftover temporary file under ``directory``."""
    return sorted(path for path in directory.rglob(".*.tmp"))


@dataclass
class SimPair:
    """Two in-process daemons on the sim driver in one simulated world, with a client
    connected to each over its unix socket."""

    world: SimWorld
    a: Daemon
    b: Daemon
    ca: Client
    cb: Client
    root: Path

    def daemon(self, name: str) -> Daemon:
        return self.a if name == "host-a" else self.b

    async def restart(self, daemon: Daemon) -> Daemon:
        """Stop ``daemon`` and start a new one on its state directory (in the same world);
        the new daemon. The client of that host is reconnected."""
        await daemon.stop()
        again = Daemon(daemon.config, sim_world=self.world)
        await again.start()
        if daemon is self.a:
            await self.ca.close()
            self.a, self.ca = again, await Client.connect(again.unix_uri)
        else:
            await self.cb.close()
            self.b, self.cb = again, await Client.connect(again.unix_uri)
        return again


def sim_config(root: Path, name: str) -> DaemonConfig:
    return DaemonConfig(state_dir=root / name, host_name=name, driver=DriverKind.SIM)


@pytest.fixture
async def sim_pair() -> AsyncIterator[SimPair]:
    world = SimWorld(record_trace=False)
    with short_directory() as root:
        a = Daemon(sim_config(root, "host-a"), sim_world=world)
        b = Daemon(sim_config(root, "host-b"), sim_world=world)
        await a.start()
        await b.start()
        pair = SimPair(
            world,
            a,
            b,
            await Client.connect(a.unix_uri),
            await Client.connect(b.unix_uri),
            root,
        )
        try:
            yield pair
        finally:
            await pair.ca.close()
            await pair.cb.close()
            await pair.a.stop()
            await pair.b.stop()
