"""Two in-process hosts on the simulator, and the invariant every migration test checks."""

from __future__ import annotations

import uuid

from cookies import generate_signing_key
from migrator.domain import Domain
from migrator.domain.devices import Devices
from migrator.domain.model import DomainType
from migrator.drivers.base import RunState, StartMode
from migrator.drivers.sim import SimDriver, SimWorld, Workload
from migrator.runtime.destination import DestinationSide
from migrator.runtime.host import Host
from migrator.runtime.protocol import run_migration
from migrator.runtime.source import SourceSide
from params import MigrationFlag

MiB = 1024 * 1024
#: Simulated reconnections happen at once or never: no need to wait long in real time.
RESUME_TIMEOUT_S = 0.005
LIVE_P2P = MigrationFlag.LIVE | MigrationFlag.PEER2PEER


def make_domain(name: str = "vm", *, memory_mib: int = 64) -> Domain:
    return Domain(
        type=DomainType.KVM,
        name=name,
        uuid=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        memory_kib=memory_mib * 1024,
        devices=Devices(),
    )


def sides_of(host: Host) -> tuple[SourceSide, DestinationSide]:
    """Fresh source and destination sides for ``host`` (as a starting daemon makes them)."""
    return SourceSide(host, resume_timeout=RESUME_TIMEOUT_S), DestinationSide(host)


class Cluster:
    """Host ``a`` and host ``b`` in one simulated world, trusting each other."""

    def __init__(self) -> None:
        self.world = SimWorld(record_trace=False)
        self.a = self._host("host-a")
        self.b = self._host("host-b")
        self.a.trust(self.b)
        self.sides = {
            "host-a": (
                SourceSide(self.a, resume_timeout=RESUME_TIMEOUT_S),
                DestinationSide(self.a),
            ),
            "host-b": (
                SourceSide(self.b, resume_timeout=RESUME_TIMEOUT_S),
                DestinationSide(self.b),
            ),
        }

    def _host(self, name: str) -> Host:
        return Host(
            name=name,
            uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            driver=SimDriver(self.world, name),
            signing_key=generate_signing_key(),
            incoming_address=name,
        )

    def source(self, host: Host) -> SourceSide:
        return self.sides[host.name][0]

    def destination(self, host: Host) -> DestinationSide:
        return self.sides[host.name][1]

    async def start(
        self, domain: Domain, *, on: Host | None = None, workload: Workload | None = None
    ) -> None:
        host = on or self.a
        if workload is not None:
            self.world.set_workload(domain.name, workload)
        host.define(domain)
        instance = await host.driver.start(domain, mode=StartMode.RUNNING)
        host.add_guest(domain, instance)

    async def migrate(
        self,
        name: str,
        *,
        source: Host | None = None,
        flags: MigrationFlag = LIVE_P2P,
        typed: dict[str, object] | None = None,
    ) -> None:
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
        hosts = []
        for host in (self.a, self.b):
            guest = self.world.guest(host.name, name)
            if guest is not None and guest.alive and guest.run_state is RunState.RUNNING:
                hosts.append(host.name)
        return hosts

    async def alive_on(self, name: str) -> list[str]:
        return [
            host.name
            for host in (self.a, self.b)
            if (guest := self.world.guest(host.name, name)) is not None and guest.alive
        ]
