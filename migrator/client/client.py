"""The asynchronous client of a migrator daemon: :class:`Client`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from migrator.client import phasewire
from migrator.client.errors import INVALID_ARGUMENT, UNREACHABLE, ClientError
from migrator.client.remote import RemoteDestination, RemoteSource
from migrator.client.session import Session, open_session
from migrator.client.types import (
    DomainInfo,
    DomainSummary,
    Event,
    HostInfo,
    JobEvent,
    JobInfo,
    LifecycleEvent,
    bad_answer,
)
from migrator.client.uri import parse_uri, resolve_tls_dir, resolve_uri
from migrator.runtime.protocol import resume_postcopy, run_migration
from params import MigrationFlag, ParamsError
from transport import Connection

#: Events received and not yet taken from :meth:`Client.events`; past it they are dropped
#: and the iteration fails, rather than letting the backlog grow.
MAX_PENDING_EVENTS = 4096

#: The notification methods a subscribed connection receives.
LIFECYCLE_NOTIFICATION = "event.lifecycle"
JOB_NOTIFICATION = "event.job"


class Client:
    """A connection to one daemon; see the module :mod:`migrator.client` for the URIs.

    Use as an async context manager, or call :meth:`close`. Every method raises
    :class:`ClientError` on failure, with the daemon's code (``no-domain``, ``busy``,
    ``invalid-state``, ``invalid-argument``, ``migration-failed``) or ``unreachable``.
    """

    def __init__(self, session: Session, *, tls_dir: Path | None) -> None:
        """Use :meth:`connect`."""
        self._session = session
        self._tls_dir = tls_dir
        self._events: asyncio.Queue[Event | ClientError | None] = asyncio.Queue()
        self._pending_events = 0
        self._subscribed = False
        self._closing = False
        self._watcher = asyncio.create_task(self._watch_connection())

    @classmethod
    async def connect(cls, uri: str | None, *, tls_dir: Path | str | None = None) -> Client:
        """Connect to the daemon at ``uri`` (None: ``$MIGRATOR_DEFAULT_URI``). A TLS URI
        uses the certificates in ``tls_dir`` (None: ``$MIGRATOR_TLS_DIR``).

        Raises:
            ClientError: no URI, a malformed one, or the daemon cannot be reached (the
                message names the URI and the reason).
        """
        parsed = resolve_uri(uri)
        certificates = resolve_tls_dir(tls_dir)
        client: Client | None = None

        async def deliver(params: Any, _: Connection) -> None:
            if client is not None:
                client._deliver(params)

        methods = {LIFECYCLE_NOTIFICATION: deliver, JOB_NOTIFICATION: deliver}
        session = await open_session(parsed, tls_dir=certificates, methods=methods)
        client = cls(session, tls_dir=certificates)
        return client

    @property
    def uri(self) -> str:
        """The URI of the daemon this client is connected to."""
        return str(self._session.uri)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection; a running :meth:`events` iteration ends. Never raises."""
        self._closing = True
        await self._session.close()
        await self._watcher

    # -- the host and its domains -------------------------------------------------------------

    async def host_info(self) -> HostInfo:
        return HostInfo.from_wire(await self._call("host.info"))

    async def define(self, xml: str) -> DomainSummary:
        """Define (or redefine) a persistent domain from its XML."""
        return DomainSummary.from_wire(await self._call("domain.define", xml=xml))

    async def undefine(self, name: str) -> None:
        await self._call("domain.undefine", name=name)

    async def start(self, name: str, *, paused: bool = False) -> None:
        await self._call("domain.start", name=name, paused=paused)

    async def shutdown(self, name: str) -> None:
        """Ask the guest to power off; returns at once."""
        await self._call("domain.shutdown", name=name)

    async def destroy(self, name: str) -> None:
        await self._call("domain.destroy", name=name)

    async def suspend(self, name: str) -> None:
        await self._call("domain.suspend", name=name)

    async def resume(self, name: str) -> None:
        await self._call("domain.resume", name=name)

    async def list_domains(self, *, include_inactive: bool = False) -> list[DomainSummary]:
        answer = await self._call("domain.list", include_inactive=include_inactive)
        if not isinstance(answer, list):
            raise bad_answer("domain.list must return a list")
        return [DomainSummary.from_wire(item) for item in answer]

    async def dominfo(self, name: str) -> DomainInfo:
        return DomainInfo.from_wire(await self._call("domain.info", name=name))

    async def dumpxml(
        self,
        name: str,
        *,
        inactive: bool = False,
        migratable: bool = False,
        security_info: bool = False,
    ) -> str:
        answer = await self._call(
            "domain.xml",
            name=name,
            inactive=inactive,
            migratable=migratable,
            security_info=security_info,
        )
        return _text(answer, "domain.xml")

    # -- save and restore ---------------------------------------------------------------------

    async def save(
        self,
        name: str,
        path: Path | str,
        *,
        running: bool | None = None,
        xml: str | None = None,
        bypass_cache: bool = False,
    ) -> JobInfo:
        """Save running ``name`` into the file ``path`` (on the daemon's host, absolute) and
        stop it; the completed job. ``running``: the state a restore brings it into (None:
        the state it has now); ``xml``: its definition in the image instead.

        Raises:
            ClientError: ``no-domain``, ``invalid-state``, ``busy``, ``invalid-argument``,
                or the save failed (``save-failed``, ``save-cancelled``, ``image-io``, ...;
                the guest runs on).
        """
        answer = await self._call(
            "domain.save",
            name=name,
            path=str(path),
            running=running,
            xml=xml,
            bypass_cache=bypass_cache,
        )
        return JobInfo.from_wire(answer)

    async def restore(
        self, path: Path | str, *, running: bool | None = None, xml: str | None = None
    ) -> DomainSummary:
        """Start the guest saved in ``path``; its summary. The image stays.

        Raises:
            ClientError: ``incomplete-image`` ("save image is incomplete"), ``bad-magic``,
                ``invalid-state`` (it runs already), ``invalid-argument``, ``restore-failed``,
                ``image-io``, ...
        """
        answer = await self._call("domain.restore", path=str(path), running=running, xml=xml)
        return DomainSummary.from_wire(answer)

    async def managed_save(
        self, name: str, *, running: bool | None = None, bypass_cache: bool = False
    ) -> JobInfo:
        """Save persistent running ``name`` into its managed-save image (its next
        :meth:`start` restores it); the completed job."""
        answer = await self._call(
            "domain.managed_save", name=name, running=running, bypass_cache=bypass_cache
        )
        return JobInfo.from_wire(answer)

    async def managed_save_remove(self, name: str) -> bool:
        """Remove ``name``'s managed-save image; whether there was one."""
        return _boolean(await self._call("domain.managed_save_remove", name=name))

    async def managed_save_dumpxml(self, name: str, *, security_info: bool = False) -> str:
        """The definition in ``name``'s managed-save image."""
        answer = await self._call("domain.managed_save_xml", name=name, security_info=security_info)
        return _text(answer, "domain.managed_save_xml")

    async def managed_save_define(
        self, name: str, xml: str, *, running: bool | None = None
    ) -> bool:
        """Replace the definition in ``name``'s managed-save image (and, unless None, the
        state its restore brings it into); whether anything changed."""
        answer = await self._call("domain.managed_save_define", name=name, xml=xml, running=running)
        return _boolean(answer)

    async def save_image_dumpxml(self, path: Path | str, *, security_info: bool = False) -> str:
        """The definition in the save image ``path``."""
        answer = await self._call("image.xml", path=str(path), security_info=security_info)
        return _text(answer, "image.xml")

    async def save_image_define(
        self, path: Path | str, xml: str, *, running: bool | None = None
    ) -> bool:
        """Replace the definition in the save image ``path`` (and, unless None, the state its
        restore brings the guest into); whether anything changed."""
        answer = await self._call("image.define", path=str(path), xml=xml, running=running)
        return _boolean(answer)

    # -- migration ----------------------------------------------------------------------------

    async def migrate(
        self,
        name: str,
        dest_uri: str,
        *,
        flags: MigrationFlag,
        typed: Mapping[str, object] | None = None,
        direct: bool = False,
    ) -> JobInfo:
        """Migrate ``name`` to the daemon at ``dest_uri``; the completed job's info.

        With ``PEER2PEER`` in ``flags`` the daemon this client is connected to drives the
        migration and calls the destination itself. Otherwise (``direct``: managed-direct)
        this client connects to ``dest_uri`` too and calls each phase on each daemon.

        Raises:
            ClientError: ``invalid-argument`` (bad flags, parameters or URI), ``no-domain``,
                ``invalid-state``, ``busy``, ``unreachable``, ``migration-failed``.
        """
        typed = dict(typed or {})
        if direct and MigrationFlag.PEER2PEER in flags:
            raise ClientError(
                "a managed-direct migration (direct) cannot have the PEER2PEER flag",
                code=INVALID_ARGUMENT,
            )
        if MigrationFlag.PEER2PEER in flags:
            answer = await self._call(
                "migration.migrate", name=name, dest_uri=dest_uri, flags=int(flags), typed=typed
            )
            return JobInfo.from_wire(answer)
        await self._migrate_direct(name, dest_uri, flags=flags, typed=typed)
        return await self.domjobinfo(name, completed=True)

    async def _migrate_direct(
        self, name: str, dest_uri: str, *, flags: MigrationFlag, typed: dict[str, object]
    ) -> None:
        try:
            destination_typed = phasewire.destination_typed(flags, typed)
        except ParamsError as exc:
            raise ClientError(str(exc), code=INVALID_ARGUMENT) from None
        destination = await open_session(parse_uri(dest_uri), tls_dir=self._tls_dir)
        try:
            await self._call("host.trust", peer=dest_uri)
            source, target = RemoteSource(self._session), RemoteDestination(destination)
            if MigrationFlag.POSTCOPY_RESUME in flags:
                await resume_postcopy(source, target, name)
            else:
                await run_migration(
                    source,
                    target,
                    name,
                    flags=flags,
                    typed=typed,
                    destination_typed=destination_typed,
                )
        finally:
            await destination.close()

    async def domjobinfo(self, name: str, *, completed: bool = False) -> JobInfo:
        """The job in progress on ``name``, or with ``completed`` the last one that ended."""
        return JobInfo.from_wire(await self._call("job.info", name=name, completed=completed))

    async def domjobabort(self, name: str) -> None:
        await self._call("job.abort", name=name)

    async def migrate_setspeed(self, name: str, bandwidth_mib_s: int) -> None:
        await self._call("migration.set_speed", name=name, bandwidth=bandwidth_mib_s)

    async def migrate_getspeed(self, name: str) -> int:
        """The migration bandwidth limit of ``name``, in MiB/s."""
        answer = await self._call("migration.get_speed", name=name)
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise bad_answer("migration.get_speed must return an integer")
        return answer

    async def migrate_setmaxdowntime(self, name: str, downtime_ms: int) -> None:
        await self._call("migration.set_max_downtime", name=name, downtime=downtime_ms)

    async def migrate_postcopy(self, name: str) -> None:
        """Switch the running migration of ``name`` to post-copy."""
        await self._call("migration.postcopy", name=name)

    # -- events -------------------------------------------------------------------------------

    async def subscribe(self) -> None:
        """Ask the daemon for its events now: every event from here on is kept for
        :meth:`events`, even before its iteration starts (call this before an operation
        whose events must not be missed). Again: nothing happens."""
        if not self._subscribed:
            await self._call("events.subscribe")
            self._subscribed = True

    async def events(self) -> AsyncGenerator[Event, None]:
        """Lifecycle and job events from the daemon, in the order they happened (from the
        moment of :meth:`subscribe`, which the first iteration calls if need be). Ends when
        the client is closed.

        Raises:
            ClientError: the connection broke (``unreachable``), or more than
                :data:`MAX_PENDING_EVENTS` were waiting and some were dropped.
        """
        await self.subscribe()
        while True:
            item = await self._events.get()
            if item is None:
                return
            if isinstance(item, ClientError):
                raise item
            self._pending_events -= 1
            yield item

    def _deliver(self, params: Any) -> None:
        """A notification came: queue the event it carries."""
        if self._pending_events >= MAX_PENDING_EVENTS:
            self._fail_events(
                ClientError(
                    f"more than {MAX_PENDING_EVENTS} events were waiting; events were lost",
                    code="events-lost",
                )
            )
            return
        event: Event
        if isinstance(params, dict) and "job_id" in params:
            event = JobEvent.from_wire(params)
        else:
            event = LifecycleEvent.from_wire(params)
        self._pending_events += 1
        self._events.put_nowait(event)

    def _fail_events(self, error: ClientError | None) -> None:
        while not self._events.empty():
            self._events.get_nowait()
        self._pending_events = 0
        self._events.put_nowait(error)

    async def _watch_connection(self) -> None:
        reason = await self._session.wait_closed()
        if self._closing:
            self._fail_events(None)
        else:
            self._fail_events(
                ClientError(
                    f"{self.uri}: the connection to the daemon closed: {reason}",
                    code=UNREACHABLE,
                    details={"uri": self.uri},
                )
            )

    async def _call(self, method: str, **params: Any) -> Any:
        return await self._session.call(method, params)


def _text(answer: object, method: str) -> str:
    if not isinstance(answer, str):
        raise bad_answer(f"{method} must return text")
    return answer


def _boolean(answer: object) -> bool:
    if not isinstance(answer, bool):
        raise bad_answer("a boolean was expected")
    return answer
