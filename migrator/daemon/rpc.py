"""The daemon's RPC method table: each method reads its parameter map, calls the domain or
migration requests, and returns plain msgpack values. Every failure reaches the caller as a
transport ``RemoteError`` whose code is one of the API's (see ``docs/api.md``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from cookies import CookieError
from migrator.client import phasewire as wire
from migrator.client.errors import (
    BUSY,
    INVALID_ARGUMENT,
    INVALID_STATE,
    MIGRATION_FAILED,
    NO_DOMAIN,
    ClientError,
)
from migrator.client.fields import Fields
from migrator.client.types import HostInfo
from migrator.daemon.domains import Domains
from migrator.daemon.errors import RequestError
from migrator.daemon.events import EventHub
from migrator.daemon.migration import Migrations
from migrator.daemon.saves import Saves, save_error_details
from migrator.domain import DomainError
from migrator.drivers.base import DriverError
from migrator.errors import MigratorError
from migrator.phases import PhaseError
from migrator.runtime.host import HostError
from migrator.runtime.source import MigrationFailed
from migrator.saving import SaveError
from params import ParamsError
from transport import Connection, MethodHandler, RemoteError

log = logging.getLogger("migrator.daemon.rpc")

Handler = Callable[[Fields, Connection], Awaitable[Any]]

#: Runtime error codes as the API names them.
_HOST_CODES = {"no-domain": NO_DOMAIN, "busy": BUSY, "no-job": INVALID_STATE}


def to_remote(exc: Exception) -> RemoteError:
    """The error a caller receives for ``exc``."""
    match exc:
        case RequestError() | ClientError():
            return RemoteError(exc.message, code=exc.code, details=exc.details)
        case MigrationFailed():
            return RemoteError(exc.message, code=MIGRATION_FAILED, details={"domain": exc.domain})
        case HostError():
            code = _HOST_CODES.get(exc.code, INVALID_STATE)
            return RemoteError(exc.message, code=code, details={"domain": exc.domain})
        case PhaseError():
            return RemoteError(exc.message, code=INVALID_STATE, details={"phase": exc.state})
        case ParamsError() | DomainError():
            return RemoteError(str(exc), code=INVALID_ARGUMENT)
        case CookieError():
            return RemoteError(str(exc), code=MIGRATION_FAILED)
        case DriverError():
            return RemoteError(exc.message, code="operation-failed", details={"detail": exc.detail})
        case SaveError():
            code, details = save_error_details(exc)
            return RemoteError(exc.message, code=code, details=details)
        case MigratorError():
            return RemoteError(exc.message, code=exc.code)
    raise TypeError(f"not an expected error: {exc!r}")


_EXPECTED = (MigratorError, ParamsError, CookieError)


def _running(p: Fields) -> bool | None:
    """The optional ``running`` field: the state a restore brings the guest into (nil:
    as it was saved)."""
    return None if p.data.get("running") is None else p.flag("running")


def _method(name: str, handler: Handler) -> MethodHandler:
    @functools.wraps(handler)
    async def serve(params: Any, connection: Connection) -> Any:
        try:
            fields = Fields(
                {} if params is None else params,
                what=f"{name} parameters",
                error=lambda message: RequestError(message, code=INVALID_ARGUMENT),
            )
            return await handler(fields, connection)
        except _EXPECTED as exc:
            error = to_remote(exc)
            log.info("%s refused: %s (%s)", name, error.message, error.code)
            raise error from None

    return serve


def method_table(
    *,
    host_info: Callable[[], HostInfo],
    domains: Domains,
    migrations: Migrations,
    saves: Saves,
    hub: EventHub,
) -> dict[str, MethodHandler]:
    """Every method the daemon serves, on its unix socket and its TLS listener."""

    async def info(_: Fields, __: Connection) -> Any:
        return host_info().to_json()

    async def define(p: Fields, _: Connection) -> Any:
        return domains.define(p.text("xml")).to_json()

    async def undefine(p: Fields, _: Connection) -> Any:
        domains.undefine(p.text("name"))

    async def start(p: Fields, _: Connection) -> Any:
        await domains.start(p.text("name"), paused=p.flag("paused", False))

    async def shutdown(p: Fields, _: Connection) -> Any:
        await domains.shutdown(p.text("name"))

    async def destroy(p: Fields, _: Connection) -> Any:
        await domains.destroy(p.text("name"))

    async def suspend(p: Fields, _: Connection) -> Any:
        await domains.suspend(p.text("name"))

    async def resume(p: Fields, _: Connection) -> Any:
        await domains.resume(p.text("name"))

    async def listing(p: Fields, _: Connection) -> Any:
        summaries = await domains.list(include_inactive=p.flag("include_inactive", False))
        return [summary.to_json() for summary in summaries]

    async def dominfo(p: Fields, _: Connection) -> Any:
        return (await domains.info(p.text("name"))).to_json()

    async def xml(p: Fields, _: Connection) -> Any:
        return domains.xml(
            p.text("name"),
            inactive=p.flag("inactive", False),
            migratable=p.flag("migratable", False),
            security_info=p.flag("security_info", False),
        )

    async def migrate(p: Fields, _: Connection) -> Any:
        result = await migrations.migrate(
            p.text("name"),
            p.text("dest_uri"),
            flags=wire.read_flags(p),
            typed=p.mapping("typed", {}),
        )
        return result.to_json()

    async def job_info(p: Fields, _: Connection) -> Any:
        name, completed = p.text("name"), p.flag("completed", False)
        if not completed and saves.saving(name):
            return (await saves.job_info(name)).to_json()
        return (await migrations.job_info(name, completed=completed)).to_json()

    async def job_abort(p: Fields, _: Connection) -> Any:
        name = p.text("name")
        if saves.saving(name):
            await saves.abort(name)
        else:
            await migrations.abort(name)

    # -- save and restore --------------------------------------------------------------------

    async def save(p: Fields, _: Connection) -> Any:
        info = await saves.save(
            p.text("name"),
            Path(p.text("path")),
            running=_running(p),
            xml=p.optional_text("xml"),
            bypass_cache=p.flag("bypass_cache", False),
        )
        return info.to_json()

    async def restore(p: Fields, _: Connection) -> Any:
        summary = await saves.restore(
            Path(p.text("path")), running=_running(p), xml=p.optional_text("xml")
        )
        return summary.to_json()

    async def managed_save(p: Fields, _: Connection) -> Any:
        info = await saves.managed_save(
            p.text("name"), running=_running(p), bypass_cache=p.flag("bypass_cache", False)
        )
        return info.to_json()

    async def managed_save_remove(p: Fields, _: Connection) -> Any:
        return await saves.managed_save_remove(p.text("name"))

    async def managed_save_xml(p: Fields, _: Connection) -> Any:
        security_info = p.flag("security_info", False)
        return await saves.managed_save_xml(p.text("name"), security_info=security_info)

    async def managed_save_define(p: Fields, _: Connection) -> Any:
        return await saves.managed_save_define(p.text("name"), p.text("xml"), running=_running(p))

    async def image_xml(p: Fields, _: Connection) -> Any:
        security_info = p.flag("security_info", False)
        return await saves.image_xml(Path(p.text("path")), security_info=security_info)

    async def image_define(p: Fields, _: Connection) -> Any:
        return await saves.image_define(Path(p.text("path")), p.text("xml"), running=_running(p))

    async def set_speed(p: Fields, _: Connection) -> Any:
        await migrations.set_speed(p.text("name"), p.integer("bandwidth", minimum=0))

    async def get_speed(p: Fields, _: Connection) -> Any:
        return await migrations.get_speed(p.text("name"))

    async def set_max_downtime(p: Fields, _: Connection) -> Any:
        await migrations.set_max_downtime(p.text("name"), p.integer("downtime", minimum=0))

    async def postcopy(p: Fields, _: Connection) -> Any:
        await migrations.postcopy(p.text("name"))

    async def subscribe(_: Fields, connection: Connection) -> Any:
        hub.subscribe(connection)

    # -- the phases --------------------------------------------------------------------------

    async def begin(p: Fields, connection: Connection) -> Any:
        result = await migrations.begin(wire.BeginRequest.from_wire(p.data), connection)
        return wire.begin_result_to_wire(result)

    async def prepare(p: Fields, connection: Connection) -> Any:
        result = await migrations.prepare(wire.PrepareRequest.from_wire(p.data), connection)
        return wire.prepare_result_to_wire(result)

    async def perform(p: Fields, _: Connection) -> Any:
        return wire.cookie_to_wire(await migrations.perform(wire.PerformRequest.from_wire(p.data)))

    async def finish(p: Fields, _: Connection) -> Any:
        request = wire.EndRequest.from_wire(p.data, method="migration.finish")
        return wire.cookie_to_wire(await migrations.finish(request))

    async def confirm(p: Fields, _: Connection) -> Any:
        await migrations.confirm(wire.EndRequest.from_wire(p.data, method="migration.confirm"))

    async def begin_resume(p: Fields, connection: Connection) -> Any:
        return wire.cookie_to_wire(await migrations.begin_resume(p.text("name"), connection))

    async def prepare_resume(p: Fields, connection: Connection) -> Any:
        return wire.uri_to_wire(await migrations.prepare_resume(p.text("name"), connection))

    async def perform_resume(p: Fields, _: Connection) -> Any:
        request = wire.PerformRequest.from_wire(p.data, method="migration.perform_resume")
        await migrations.perform_resume(request)

    async def finish_resume(p: Fields, _: Connection) -> Any:
        await migrations.finish_resume(p.text("name"))

    async def confirm_resume(p: Fields, _: Connection) -> Any:
        await migrations.confirm_resume(p.text("name"))

    async def abandon(p: Fields, _: Connection) -> Any:
        await migrations.abandon(p.text("name"))

    async def trust(p: Fields, connection: Connection) -> Any:
        return await migrations.trust(p.data, connection)

    handlers: Mapping[str, Handler] = {
        "host.info": info,
        "domain.define": define,
        "domain.undefine": undefine,
        "domain.start": start,
        "domain.shutdown": shutdown,
        "domain.destroy": destroy,
        "domain.suspend": suspend,
        "domain.resume": resume,
        "domain.list": listing,
        "domain.info": dominfo,
        "domain.xml": xml,
        "migration.migrate": migrate,
        "job.info": job_info,
        "job.abort": job_abort,
        "migration.set_speed": set_speed,
        "migration.get_speed": get_speed,
        "migration.set_max_downtime": set_max_downtime,
        "migration.postcopy": postcopy,
        "domain.save": save,
        "domain.restore": restore,
        "domain.managed_save": managed_save,
        "domain.managed_save_remove": managed_save_remove,
        "domain.managed_save_xml": managed_save_xml,
        "domain.managed_save_define": managed_save_define,
        "image.xml": image_xml,
        "image.define": image_define,
        "events.subscribe": subscribe,
        "migration.begin": begin,
        "migration.prepare": prepare,
        "migration.perform": perform,
        "migration.finish": finish,
        "migration.confirm": confirm,
        "migration.begin_resume": begin_resume,
        "migration.prepare_resume": prepare_resume,
        "migration.perform_resume": perform_resume,
        "migration.finish_resume": finish_resume,
        "migration.confirm_resume": confirm_resume,
        "migration.abandon": abandon,
        "host.trust": trust,
    }
    return {name: _method(name, handler) for name, handler in handlers.items()}
