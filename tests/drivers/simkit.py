"""Helpers for the sim driver's own tests: a two-host world, small domains, migrations."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

from migrator.domain import Domain
from migrator.domain.devices import Devices, Graphics
from migrator.domain.model import DomainType
from migrator.drivers.base import EventKind, MigrationProgress, MigrationStatus, StartMode
from migrator.drivers.sim import (
    DEFAULT_LINK,
    EventRecord,
    Link,
    SimDriver,
    SimInstance,
    SimWorld,
    TraceRecord,
    Workload,
)
from tests.drivers.contract import until_finished

MiB = 1024 * 1024
GiB = 1024 * MiB
SOURCE = "host-a"
DESTINATION = "host-b"


def certs(host: str) -> Path:
    """The certificate directory a simulated ``host`` names (nothing reads it)."""
    return Path("certs") / host


def domain(
    name: str = "vm", *, memory_bytes: int = 64 * MiB, graphics: Iterable[Graphics] = ()
) -> Domain:
    return Domain(
        type=DomainType.KVM,
        name=name,
        uuid=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        memory_kib=memory_bytes // 1024,
        devices=Devices(graphics=tuple(graphics)),
    )


class Pair:
    """A world with a source and a destination host; with ``tls`` each host has a
    certificate directory (``certs/HOST``)."""

    def __init__(self, *, link: Link = DEFAULT_LINK, tls: bool = False) -> None:
        self.world = SimWorld(default_link=link)
        self.source_driver = SimDriver(self.world, SOURCE, tls_dir=certs(SOURCE) if tls else None)
        self.destination_driver = SimDriver(
            self.world, DESTINATION, tls_dir=certs(DESTINATION) if tls else None
        )

    async def prepare(
        self,
        *,
        name: str = "vm",
        memory_bytes: int = 64 * MiB,
        workload: Workload | None = None,
        capabilities: Iterable[str] = (),
        source_capabilities: Iterable[str] = (),
        parameters: dict[str, object] | None = None,
    ) -> tuple[SimInstance, SimInstance, str]:
        """A running source and a listening destination; ``capabilities`` go on both sides,
        ``source_capabilities`` and ``parameters`` on the source only."""
        definition = domain(name, memory_bytes=memory_bytes)
        if workload is not None:
            self.world.set_workload(name, workload)
        source = await self.source_driver.start(definition, mode=StartMode.RUNNING)
        destination = await self.destination_driver.start(definition, mode=StartMode.INCOMING)
        both = [{"capability": c, "state": True} for c in capabilities]
        if both:
            await source.set_capabilities(both)
            await destination.set_capabilities(both)
        only = [{"capability": c, "state": True} for c in source_capabilities]
        if only:
            await source.set_capabilities(only)
        if parameters:
            await source.set_parameters(parameters)
        uri = await destination.start_incoming(f"tcp:{DESTINATION}:0")
        return source, destination, uri

    async def migrate(self, source: SimInstance, uri: str) -> MigrationProgress:
        """Migrate and wait for the final status; the source's statistics."""
        async with source.listen() as events:
            await source.migrate(uri)
            await until_finished(events)
        return await source.query_migration()

    def statuses(self, host: str, name: str = "vm") -> list[MigrationStatus]:
        """The MIGRATION statuses ``name`` emitted on ``host``, from the trace."""
        return self.statuses_in(self.world.trace, host=host, name=name)

    @staticmethod
    def statuses_in(trace: Iterable[TraceRecord], host: str, name: str) -> list[MigrationStatus]:
        return [
            record.event.status
            for record in trace
            if isinstance(record, EventRecord)
            and record.host == host
            and record.instance == name
            and record.event.kind is EventKind.MIGRATION
            and record.event.status is not None
        ]

    def kinds(self, host: str, name: str = "vm") -> list[EventKind]:
        return [
            record.event.kind
            for record in self.world.trace
            if isinstance(record, EventRecord) and record.host == host and record.instance == name
        ]
