"""Two in-process hosts on the simulator, as the runtime tests use them: a view of
:class:`migrator.scenario.SimCluster` (daemons in-process, one simulated world) with the
hosts as ``a`` and ``b`` and each host's current runtime sides."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from migrator.domain import Domain
from migrator.drivers.sim import Workload
from migrator.runtime.destination import DestinationSide
from migrator.runtime.host import Host
from migrator.runtime.protocol import run_migration
from migrator.runtime.source import SourceSide
from migrator.scenario import SimCluster
from migrator.scenario.inprocess import InProcessDaemon
from migrator.scenario.inprocess import sides_of as daemon_sides
from migrator.scenario.simcluster import MiB, make_domain
from migrator.scenario.taps import TappedDriver
from params import MigrationFlag

__all__ = ["LIVE_P2P", "RESUME_TIMEOUT_S", "Cluster", "MiB", "make_domain", "sides_of"]

#: Simulated reconnections happen at once or never: no need to wait long in real time.
RESUME_TIMEOUT_S = 0.005
LIVE_P2P = MigrationFlag.LIVE | MigrationFlag.PEER2PEER


def sides_of(host: Host) -> tuple[SourceSide, DestinationSide]:
    """Fresh source and destination sides for ``host`` (as a starting daemon makes them)."""
    return daemon_sides(host, resume_timeout=RESUME_TIMEOUT_S)


class Sides:
    """Each host's current (source, destination) sides, by host name; assigning a pair
    replaces the daemon's sides (as a restarted daemon has new ones)."""

    def __init__(self, daemons: dict[str, InProcessDaemon]) -> None:
        self._daemons = daemons

    def __getitem__(self, name: str) -> tuple[SourceSide, DestinationSide]:
        daemon = self._daemons[name]
        return daemon.source, daemon.destination

    def __setitem__(self, name: str, sides: tuple[SourceSide, DestinationSide]) -> None:
        daemon = self._daemons[name]
        daemon.source, daemon.destination = sides

    def values(self) -> Iterator[tuple[SourceSide, DestinationSide]]:
        return (self[name] for name in self._daemons)


class Cluster:
    """Host ``a`` and host ``b`` in one simulated world, trusting each other; the hosts
    named in ``certified`` have a certificate directory (``certs/HOST``) for TLS."""

    def __init__(self, *, certified: tuple[str, ...] = ()) -> None:
        self.sim = SimCluster(resume_timeout=RESUME_TIMEOUT_S)
        self.world = self.sim.world
        self.a = self.sim.host("host-a")
        self.b = self.sim.host("host-b")
        self.sides = Sides(self.sim.daemons)
        for name in certified:
            driver = self.sim.host(name).driver
            assert isinstance(driver, TappedDriver)
            driver.tls_dir = driver.inner.tls_dir = Path("certs") / name

    def source(self, host: Host) -> SourceSide:
        return self.sides[host.name][0]

    def destination(self, host: Host) -> DestinationSide:
        return self.sides[host.name][1]

    async def start(
        self, domain: Domain, *, on: Host | None = None, workload: Workload | None = None
    ) -> None:
        await self.sim.start(domain, host=(on or self.a).name, workload=workload)

    async def migrate(
        self,
        name: str,
        *,
        source: Host | None = None,
        flags: MigrationFlag = LIVE_P2P,
        typed: dict[str, object] | None = None,
    ) -> None:
        """Migrate ``name`` from ``source`` (host ``a``) to the other host, calling both
        sides directly from this task (the scenarios' cluster serves each call in a task of
        its daemon instead, which changes how the calls interleave with QEMU's events)."""
        src = source or self.a
        dst = self.b if src is self.a else self.a
        await run_migration(
            self.source(src),
            self.destination(dst),
            name,
            flags=flags,
            typed=typed or {},
            destination_typed={},
        )

    async def running_on(self, name: str) -> list[str]:
        """The hosts whose instance of ``name`` has running CPUs."""
        return self.sim.running_on(name)

    async def alive_on(self, name: str) -> list[str]:
        return self.sim.alive_on(name)
