"""The two sides of a migration behind a daemon connection, for
:func:`migrator.runtime.protocol.run_migration` and
:func:`~migrator.runtime.protocol.resume_postcopy`: a source daemon driving its destination
(peer-to-peer), or a client driving both (managed-direct).

Every failure is a :class:`~migrator.client.errors.ClientError` (a ``MigratorError``), so the
protocol's rollback steps treat a lost daemon like any other failed step.
"""

from __future__ import annotations

from migrator.client import phasewire as wire
from migrator.client.session import Session
from migrator.runtime.destination import PrepareResult
from migrator.runtime.source import BeginResult
from params import MigrationFlag


class RemoteSource:
    """The source side on the daemon behind ``session`` (``SourceAPI`` and
    ``SourceResumeAPI``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def begin(
        self, name: str, *, flags: MigrationFlag, typed: dict[str, object]
    ) -> BeginResult:
        request = wire.BeginRequest(name=name, flags=flags, typed=typed)
        answer = await self.session.call("migration.begin", request.to_wire())
        return wire.begin_result_from_wire(answer)

    async def perform(self, name: str, *, cookie: bytes, uri: str) -> bytes:
        request = wire.PerformRequest(name=name, uri=uri, cookie=cookie)
        answer = await self.session.call("migration.perform", request.to_wire())
        return wire.cookie_from_wire(answer, method="migration.perform")

    async def confirm(self, name: str, *, cookie: bytes | None, cancelled: bool) -> None:
        request = wire.EndRequest(name=name, cookie=cookie, cancelled=cancelled)
        await self.session.call("migration.confirm", request.to_wire())

    async def begin_resume(self, name: str) -> bytes:
        answer = await self.session.call("migration.begin_resume", wire.name_request(name))
        return wire.cookie_from_wire(answer, method="migration.begin_resume")

    async def perform_resume(self, name: str, *, uri: str) -> None:
        request = wire.PerformRequest(name=name, uri=uri)
        await self.session.call("migration.perform_resume", request.to_wire())

    async def confirm_resume(self, name: str) -> None:
        await self.session.call("migration.confirm_resume", wire.name_request(name))


class RemoteDestination:
    """The destination side on the daemon behind ``session`` (``DestinationAPI`` and
    ``DestinationResumeAPI``)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    async def prepare(
        self, *, cookie: bytes, xml: str, flags: MigrationFlag, typed: dict[str, object]
    ) -> PrepareResult:
        request = wire.PrepareRequest(cookie=cookie, xml=xml, flags=flags, typed=typed)
        answer = await self.session.call("migration.prepare", request.to_wire())
        return wire.prepare_result_from_wire(answer)

    async def finish(self, name: str, *, cookie: bytes | None, cancelled: bool) -> bytes:
        request = wire.EndRequest(name=name, cookie=cookie, cancelled=cancelled)
        answer = await self.session.call("migration.finish", request.to_wire())
        return wire.cookie_from_wire(answer, method="migration.finish")

    async def prepare_resume(self, name: str) -> str:
        answer = await self.session.call("migration.prepare_resume", wire.name_request(name))
        return wire.uri_from_wire(answer, method="migration.prepare_resume")

    async def finish_resume(self, name: str) -> None:
        await self.session.call("migration.finish_resume", wire.name_request(name))

    async def abandon(self, name: str) -> None:
        await self.session.call("migration.abandon", wire.name_request(name))
