"""Taps between an in-process daemon and what it drives: its hypervisor driver and its
status store. They pass everything through unchanged and tell a :class:`Sink` what went by:
each QMP command the engine sends (with the arguments worth comparing between runs), each
instance started, and each job record written, so that faults fire at those points and the
trace shows them. They work the same on any driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from migrator.domain import Domain
from migrator.drivers.base import (
    Driver,
    GraphicsEndpoint,
    Instance,
    InstanceEvent,
    MigrationProgress,
    StartMode,
    TLSEndpoint,
)
from migrator.runtime.host import StatusStore
from migrator.runtime.records import JobRecord
from migrator.status import RunState


class Sink(Protocol):
    """Where the taps report."""

    async def command(self, host: str, command: str, detail: str) -> None:
        """``host``'s daemon is about to send ``command``; a fault may fire first."""

    async def started(self, host: str, name: str, instance: Instance) -> None:
        """``host``'s daemon has an instance of ``name`` (started or found again)."""

    def saved(self, host: str, record: JobRecord) -> None:
        """``host``'s daemon wrote ``record``."""

    def deleted(self, host: str, record: JobRecord) -> None:
        """``host``'s daemon removed ``record``: the job ended."""


class TappedDriver(Driver):
    """``inner``, with every instance it gives out tapped."""

    def __init__(self, inner: Driver, *, host: str, sink: Sink) -> None:
        self.name = inner.name
        self.tls_dir = inner.tls_dir
        self.inner = inner
        self.host = host
        self._sink = sink

    async def start(self, domain: Domain, *, mode: StartMode) -> Instance:
        await self._sink.command(self.host, "launch", mode.value)
        return await self._tapped(domain.name, await self.inner.start(domain, mode=mode))

    async def attach(self, domain: Domain) -> Instance | None:
        instance = await self.inner.attach(domain)
        return None if instance is None else await self._tapped(domain.name, instance)

    async def close(self) -> None:
        await self.inner.close()

    async def _tapped(self, name: str, instance: Instance) -> Instance:
        tapped = TappedInstance(instance, host=self.host, sink=self._sink)
        await self._sink.started(self.host, name, tapped)
        return tapped


class TappedInstance(Instance):
    """One instance; commands are reported before they are sent, queries are not."""

    def __init__(self, inner: Instance, *, host: str, sink: Sink) -> None:
        self.inner = inner
        self.host = host
        self._sink = sink

    def __repr__(self) -> str:
        return f"<TappedInstance {self.inner!r}>"

    async def _send(self, command: str, detail: str = "") -> None:
        await self._sink.command(self.host, command, detail)

    def listen(self) -> AbstractAsyncContextManager[AsyncIterator[InstanceEvent]]:
        return self.inner.listen()

    @property
    def alive(self) -> bool:
        return self.inner.alive

    async def run_state(self) -> RunState:
        return await self.inner.run_state()

    async def pause(self) -> None:
        await self._send("stop")
        await self.inner.pause()

    async def resume(self) -> None:
        await self._send("cont")
        await self.inner.resume()

    async def shutdown(self) -> None:
        await self._send("system_powerdown")
        await self.inner.shutdown()

    async def kill(self) -> None:
        await self._send("kill")
        await self.inner.kill()

    async def capability_states(self) -> Mapping[str, bool]:
        return await self.inner.capability_states()

    async def query_parameters(self) -> Mapping[str, object]:
        return await self.inner.query_parameters()

    async def set_capabilities(self, capabilities: list[dict[str, object]]) -> None:
        enabled = sorted(str(cap["capability"]) for cap in capabilities if cap.get("state"))
        await self._send("migrate-set-capabilities", ",".join(enabled) or "none")
        await self.inner.set_capabilities(capabilities)

    async def set_parameters(self, parameters: Mapping[str, object]) -> None:
        await self._send(
            "migrate-set-parameters", " ".join(f"{k}={v}" for k, v in sorted(parameters.items()))
        )
        await self.inner.set_parameters(parameters)

    async def add_tls_credentials(self, endpoint: TLSEndpoint) -> None:
        await self._send("object-add", f"tls-creds-x509 {endpoint.value}")
        await self.inner.add_tls_credentials(endpoint)

    async def delete_tls_credentials(self) -> None:
        await self._send("object-del")
        await self.inner.delete_tls_credentials()

    async def start_incoming(self, uri: str) -> str:
        await self._send("migrate-incoming")
        return await self.inner.start_incoming(uri)

    async def migrate(
        self, uri: str, *, resume: bool = False, own_connection: bool = False
    ) -> None:
        await self._send("migrate", "resume" if resume else "")
        await self.inner.migrate(uri, resume=resume, own_connection=own_connection)

    async def migrate_to_fd(self, fd: int) -> None:
        await self._send("migrate", "fd")
        await self.inner.migrate_to_fd(fd)

    async def start_incoming_from_fd(self, fd: int) -> None:
        await self._send("migrate-incoming", "fd")
        await self.inner.start_incoming_from_fd(fd)

    async def cancel_migration(self) -> None:
        await self._send("migrate_cancel")
        await self.inner.cancel_migration()

    async def continue_migration(self) -> None:
        await self._send("migrate-continue")
        await self.inner.continue_migration()

    async def start_postcopy(self) -> None:
        await self._send("migrate-start-postcopy")
        await self.inner.start_postcopy()

    async def pause_postcopy(self) -> None:
        await self._send("migrate-pause")
        await self.inner.pause_postcopy()

    async def recover_postcopy(self, uri: str) -> str:
        await self._send("migrate-recover")
        return await self.inner.recover_postcopy(uri)

    async def query_migration(self) -> MigrationProgress:
        return await self.inner.query_migration()

    async def graphics(self) -> list[GraphicsEndpoint]:
        return await self.inner.graphics()

    async def relocate_graphics_clients(self, endpoint: GraphicsEndpoint) -> None:
        await self._send("client_migrate_info")
        await self.inner.relocate_graphics_clients(endpoint)


class TappedStatusStore:
    """A host's status store, reporting each record written and removed."""

    def __init__(self, inner: StatusStore, *, host: str, sink: Sink) -> None:
        self.inner = inner
        self.host = host
        self._sink = sink

    def save(self, name: str, record: JobRecord) -> None:
        self.inner.save(name, record)
        self._sink.saved(self.host, record)

    def load(self, name: str) -> JobRecord | None:
        return self.inner.load(name)

    def delete(self, name: str) -> None:
        record = self.inner.load(name)
        self.inner.delete(name)
        if record is not None:
            self._sink.deleted(self.host, record)

    def names(self) -> list[str]:
        return self.inner.names()
