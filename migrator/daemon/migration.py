"""The migration requests of the daemon's API.

- ``migration.migrate`` (peer-to-peer): this daemon is the source and drives the five phases
  itself, calling the destination daemon over a connection it opens (mutual TLS with its own
  certificate), after exchanging cookie-signing keys with it (:mod:`migrator.daemon.peers`).
  The migration runs in a task of the daemon: a client that goes away does not stop it.
- The phase methods (``migration.begin`` ... ``migration.abandon``): a source daemon or a
  managed-direct client calls them. The connection that began (or prepared) a job controls
  it: if that connection closes while the job runs, the source side is told its peer is lost
  and the destination side abandons the incoming guest (libvirt's auto-destroy).
- Job control: abort, bandwidth, downtime limit, the switch to post-copy, job info.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import params
from cookies import CookieError, JobOperation
from migrator.client import phasewire as wire
from migrator.client.errors import (
    BUSY,
    INVALID_ARGUMENT,
    INVALID_STATE,
    MIGRATION_FAILED,
    NO_DOMAIN,
    UNREACHABLE,
    ClientError,
)
from migrator.client.remote import RemoteDestination
from migrator.client.session import Session
from migrator.client.types import JobInfo
from migrator.daemon.claims import Claim, DomainJobs
from migrator.daemon.errors import RequestError
from migrator.daemon.guests import GuestWatcher
from migrator.daemon.host import DaemonHost
from migrator.daemon.peers import Identity, Peers, identity_of
from migrator.daemon.progress import JobReporter
from migrator.domain import AbiMismatch, DomainError, parse_domain
from migrator.drivers.base import Instance
from migrator.errors import MigratorError
from migrator.phases import PhaseError
from migrator.phases.machine import PhaseJob
from migrator.runtime.destination import DestinationSide, PrepareResult
from migrator.runtime.host import HostError
from migrator.runtime.protocol import resume_postcopy, run_migration
from migrator.runtime.records import JobSide
from migrator.runtime.source import BeginResult, SourceSide
from migrator.status import RunState
from params import MigrationFlag, Param, ParamsError, ParamSet, Side
from transport import Connection

log = logging.getLogger("migrator.daemon.migration")

T = TypeVar("T")

#: A job a connection controls: its side, its guest, and the job itself.
_Controlled = tuple[JobSide, str, PhaseJob]

#: The errors a migration step reports on purpose; anything else is a bug.
STEP_ERRORS = (MigratorError, ParamsError, CookieError)

#: Flags that ask for what this engine does not do.
_UNSUPPORTED = {
    MigrationFlag.TUNNELLED: "tunnelled migration is not supported",
    MigrationFlag.NON_SHARED_DISK: "copying disk images (non-shared storage) is not supported",
    MigrationFlag.NON_SHARED_INC: "copying disk images (non-shared storage) is not supported",
}


def check_flags(flags: MigrationFlag) -> None:
    """libvirt's checks of a flag combination, with its messages.

    Raises:
        RequestError: (``invalid-argument``) a combination libvirt refuses, or a flag this
            engine does not carry out.
    """
    for flag, message in _UNSUPPORTED.items():
        if flag in flags:
            raise RequestError(message, code=INVALID_ARGUMENT, details={"flag": flag.name})
    if MigrationFlag.OFFLINE in flags and MigrationFlag.PERSIST_DEST not in flags:
        raise RequestError(
            "offline migration must be specified with the persistent flag set",
            code=INVALID_ARGUMENT,
        )
    if MigrationFlag.POSTCOPY in flags and (
        MigrationFlag.LIVE not in flags or MigrationFlag.PAUSED in flags
    ):
        raise RequestError(
            "post-copy migration is not supported with non-live or paused migration",
            code=INVALID_ARGUMENT,
        )
    if MigrationFlag.POSTCOPY_RESUME in flags and MigrationFlag.POSTCOPY not in flags:
        raise RequestError(
            "resuming failed post-copy migration requires post-copy to be enabled",
            code=INVALID_ARGUMENT,
        )


class Migrations:
    """Migration requests on one host."""

    def __init__(
        self,
        *,
        host: DaemonHost,
        source: SourceSide,
        destination: DestinationSide,
        jobs: DomainJobs,
        reporter: JobReporter,
        watcher: GuestWatcher,
        peers: Peers,
    ) -> None:
        self.host = host
        self.source = source
        self.destination = destination
        self.jobs = jobs
        self.reporter = reporter
        self.watcher = watcher
        self.peers = peers
        self._tasks: set[asyncio.Task[Any]] = set()
        self._controlled: dict[Connection, list[_Controlled]] = {}
        self._stopping = False

    def quiesce(self) -> None:
        """From now on, a controlling connection that closes leaves its jobs alone (the
        daemon is stopping; the jobs are resolved when it starts again)."""
        self._stopping = True

    async def close(self) -> None:
        """Stop driving: cancel every migration step still running (the jobs stay in the
        status store, for the next start) and stop following controlling connections."""
        self.quiesce()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.peers.close()

    # -- peer-to-peer --------------------------------------------------------------------------

    async def migrate(
        self, name: str, dest_uri: str, *, flags: MigrationFlag, typed: dict[str, object]
    ) -> JobInfo:
        """Migrate ``name`` to the daemon at ``dest_uri``, driving every phase from here;
        the completed job's info.

        Raises:
            RequestError: ``invalid-argument``, ``no-domain``, ``invalid-state``, ``busy``
                (at once), ``unreachable``, ``migration-failed``.
        """
        check_flags(flags)
        self._check_tls(flags)
        claim: Claim | None = None
        if MigrationFlag.POSTCOPY_RESUME not in flags:  # a resume goes on with its job
            self._check_migratable(name, flags)
            claim = self.jobs.claim(name, JobOperation.MIGRATION_OUT)
        return await self._detached(
            self._peer_to_peer(claim, name, dest_uri, flags=flags, typed=typed)
        )

    async def _peer_to_peer(
        self,
        claim: Claim | None,
        name: str,
        dest_uri: str,
        *,
        flags: MigrationFlag,
        typed: dict[str, object],
    ) -> JobInfo:
        lost: list[str] = []
        try:
            with claim or contextlib.nullcontext():
                if MigrationFlag.OFFLINE not in flags and await self._paused(name):
                    flags |= MigrationFlag.PAUSED  # as libvirt's peer-to-peer does
                session = await self.peers.session_to(dest_uri)
                destination = RemoteDestination(session)
                if MigrationFlag.POSTCOPY_RESUME in flags:
                    await resume_postcopy(self.source, destination, name)
                else:
                    migration = run_migration(
                        self.source,
                        destination,
                        name,
                        flags=flags,
                        typed=typed,
                        destination_typed=wire.destination_typed(flags, typed),
                    )
                    await self._watching_destination(session, name, migration, lost=lost)
        except STEP_ERRORS as exc:
            error = _migration_error(name, dest_uri, exc, lost=lost)
            self.reporter.note_failure(name, error.message)
            raise error from None
        finally:
            self.watcher.settle(name)
        log.info("migrated %s to %s", name, dest_uri, extra={"domain": name})
        return await self.reporter.job_info(name, completed=True)

    async def _watching_destination(
        self, session: Session, name: str, migration: Awaitable[None], *, lost: list[str]
    ) -> None:
        """Run ``migration``; if the destination's connection closes meanwhile, cancel a
        migration still in Perform (Finish and Confirm handle the rest)."""

        async def on_loss() -> None:
            reason = await session.wait_closed()
            lost.append(str(reason))
            log.warning("lost the destination of %s: %s", name, reason, extra={"domain": name})
            with contextlib.suppress(HostError, PhaseError):
                await self.source.destination_lost(name)

        watch = asyncio.create_task(on_loss())
        try:
            await migration
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    # -- the phases, for a source daemon or a managed-direct client ------------------------------

    async def begin(self, request: wire.BeginRequest, connection: Connection) -> BeginResult:
        """Begin: start the outgoing job, controlled by ``connection``.

        Raises:
            RequestError: as :meth:`migrate` before any step.
            HostError, ParamsError, DomainError: Begin refused the migration.
        """
        name, flags = request.name, request.flags
        check_flags(flags)
        self._check_tls(flags)
        self._check_migratable(name, flags)
        with self.jobs.claim(name, JobOperation.MIGRATION_OUT):
            begun = self.source.begin(name, flags=flags, typed=request.typed)
            return await self._detached(
                self._then_control(begun, connection=connection, side=JobSide.SOURCE, name=name)
            )

    async def prepare(self, request: wire.PrepareRequest, connection: Connection) -> PrepareResult:
        """Prepare: start the incoming QEMU, the job controlled by ``connection``.

        Raises:
            RequestError: (``invalid-argument``) the XML is invalid, or TLS is asked for and
                this host has no certificates for it; (``busy``) a job runs on the domain here.
            HostError, CookieError, MigrationFailed: Prepare refused or failed.
        """
        self._check_tls(request.flags)
        try:
            name = parse_domain(request.xml).name
        except DomainError as exc:
            raise RequestError(str(exc), code=INVALID_ARGUMENT) from None
        with self.jobs.claim(name, JobOperation.MIGRATION_IN):
            prepared = self.destination.prepare(
                cookie=request.cookie, xml=request.xml, flags=request.flags, typed=request.typed
            )
            return await self._detached(
                self._then_control(
                    prepared, connection=connection, side=JobSide.DESTINATION, name=name
                )
            )

    async def perform(self, request: wire.PerformRequest) -> bytes:
        return await self._detached(
            self.source.perform(request.name, cookie=request.cookie, uri=request.uri)
        )

    async def finish(self, request: wire.EndRequest) -> bytes:
        try:
            return await self._detached(
                self.destination.finish(
                    request.name, cookie=request.cookie, cancelled=request.cancelled
                )
            )
        finally:
            self.watcher.settle(request.name)

    async def confirm(self, request: wire.EndRequest) -> None:
        try:
            await self._detached(
                self.source.confirm(
                    request.name, cookie=request.cookie, cancelled=request.cancelled
                )
            )
        finally:
            self.watcher.settle(request.name)

    async def begin_resume(self, name: str, connection: Connection) -> bytes:
        self._control(connection, JobSide.SOURCE, name)
        return await self._detached(self.source.begin_resume(name))

    async def prepare_resume(self, name: str, connection: Connection) -> str:
        self._control(connection, JobSide.DESTINATION, name)
        return await self._detached(self.destination.prepare_resume(name))

    async def perform_resume(self, request: wire.PerformRequest) -> None:
        await self._detached(self.source.perform_resume(request.name, uri=request.uri))

    async def finish_resume(self, name: str) -> None:
        await self._detached(self.destination.finish_resume(name))

    async def confirm_resume(self, name: str) -> None:
        try:
            await self._detached(self.source.confirm_resume(name))
        finally:
            self.watcher.settle(name)

    async def abandon(self, name: str) -> None:
        try:
            await self._detached(self.destination.abandon(name))
        finally:
            self.watcher.settle(name)

    async def trust(self, data: object, connection: Connection) -> dict[str, Any]:
        """``host.trust``: a daemon presents its identity (answered with this host's), or a
        client asks this daemon to introduce itself to the daemon at ``peer`` (answered with
        that daemon's identity). See :mod:`migrator.daemon.peers` for the rule.

        Raises:
            RequestError: a malformed or refused identity.
            ClientError: the daemon at ``peer`` cannot be reached or refused.
        """
        fields = wire.request_fields(data, method="host.trust")
        if "peer" in fields.data:
            peer = await self._detached(self.peers.introduce_to(fields.text("peer")))
            return peer.to_wire()
        self.peers.learn(Identity.from_wire(fields), presented_by=connection.peer_name)
        return identity_of(self.host).to_wire()

    # -- job control ---------------------------------------------------------------------------

    async def job_info(self, name: str, *, completed: bool) -> JobInfo:
        """``domjobinfo``.

        Raises:
            RequestError: (``no-domain``) the domain is unknown here.
        """
        known = (
            name in self.host.definitions
            or name in self.host.guests
            or name in self.reporter.incoming()
            or name in self.reporter.completed
        )
        if not known:
            raise RequestError(f"failed to get domain '{name}'", code=NO_DOMAIN)
        return await self.reporter.job_info(
            name, completed=completed, claimed=self.jobs.operation(name)
        )

    async def abort(self, name: str) -> None:
        """``domjobabort``: cancel the outgoing migration of ``name``.

        Raises:
            RequestError: (``invalid-state``) no outgoing job, an incoming one, or a
                migration in post-copy.
        """
        operation = self.jobs.operation(name)
        if operation is JobOperation.MIGRATION_IN:
            raise RequestError(
                "cannot abort incoming migration; abort it on the source or destroy the domain",
                code=INVALID_STATE,
            )
        self.reporter.note_abort(name)
        try:
            await self.source.cancel(name)
        except HostError:
            raise RequestError("no job is active on the domain", code=INVALID_STATE) from None
        finally:
            self.watcher.settle(name)

    async def set_speed(self, name: str, bandwidth_mib_s: int) -> None:
        """Set the migration bandwidth limit of ``name`` (now, and for later migrations).

        Raises:
            RequestError: ``no-domain``, ``invalid-state`` (not running), or an out-of-range
                value (``invalid-argument``).
        """
        pset = _checked(
            lambda: params.from_typed(
                {"bandwidth": bandwidth_mib_s}, flags=MigrationFlag(0), side=Side.SOURCE
            )
        )
        await self._instance(name).set_parameters(params.to_qmp_parameters(pset))

    async def get_speed(self, name: str) -> int:
        """The migration bandwidth limit of ``name`` in MiB/s."""
        reply = await self._instance(name).query_parameters()
        typed, _ = params.to_typed(params.from_qmp_query(reply), side=Side.SOURCE)
        bandwidth = typed.get("bandwidth", 0)
        return bandwidth if isinstance(bandwidth, int) else 0

    async def set_max_downtime(self, name: str, downtime_ms: int) -> None:
        """Set the longest pause QEMU may take at the switchover, in milliseconds."""
        pset = _checked(lambda: ParamSet.validated({Param.DOWNTIME_LIMIT: downtime_ms}))
        await self._instance(name).set_parameters(params.to_qmp_parameters(pset))

    async def postcopy(self, name: str) -> None:
        """Switch the outgoing migration of ``name`` to post-copy."""
        try:
            await self.source.switch_to_postcopy(name)
        except HostError:
            raise RequestError(
                f"domain '{name}' has no outgoing migration", code=INVALID_STATE
            ) from None

    # -- helpers -------------------------------------------------------------------------------

    async def _detached(self, step: Coroutine[Any, Any, T]) -> T:
        """Run ``step`` in a task of its own: a caller that goes away (its connection
        closed) cancels its wait, not the step."""
        task = asyncio.create_task(step)
        self._tasks.add(task)
        task.add_done_callback(self._step_done)
        return await asyncio.shield(task)

    def _step_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned step's failure is no loose end

    async def _then_control(
        self, step: Awaitable[T], *, connection: Connection, side: JobSide, name: str
    ) -> T:
        """Run the step that creates ``side``'s job of ``name``; ``connection`` controls it
        from then on (even if that connection is already gone)."""
        result = await step
        self._control(connection, side, name)
        return result

    def _control(self, connection: Connection, side: JobSide, name: str) -> None:
        """``connection`` controls ``side``'s current job of ``name`` from now on."""
        job = self._job_of(side, name)
        if job is None:
            return
        controlled = self._controlled.get(connection)
        if controlled is None:
            controlled = self._controlled[connection] = []
            watch = asyncio.create_task(self._follow_controller(connection))
            self._tasks.add(watch)
            watch.add_done_callback(self._tasks.discard)
        # A connection kept open for many migrations controls only those still open.
        controlled[:] = [
            entry for entry in controlled if self._job_of(entry[0], entry[1]) is entry[2]
        ]
        controlled.append((side, name, job))

    def _job_of(self, side: JobSide, name: str) -> PhaseJob | None:
        owner: SourceSide | DestinationSide = (
            self.source if side is JobSide.SOURCE else self.destination
        )
        try:
            return owner.job(name)
        except HostError:
            return None

    async def _follow_controller(self, connection: Connection) -> None:
        reason = await connection.wait_closed()
        controlled = self._controlled.pop(connection, [])
        if self._stopping:
            return
        for side, name, job in controlled:
            # Only the very job this connection controlled: a later job of the same guest
            # has a controller of its own. A job that ended by itself meanwhile (its QEMU
            # died) still waits for the phase request that closes it: close it now.
            if self._job_of(side, name) is not job:
                continue
            log.warning("the controller of %s went away: %s", name, reason)
            with contextlib.suppress(*STEP_ERRORS):
                if side is JobSide.SOURCE:
                    await self.source.peer_lost(name)
                else:
                    await self.destination.abandon(name)
            self.watcher.settle(name)

    def _check_tls(self, flags: MigrationFlag) -> None:
        """An encrypted migration stream needs this host's certificates, for QEMU.

        Raises:
            RequestError: (``invalid-argument``) TLS is asked for and the daemon was started
                without a certificate directory.
        """
        if MigrationFlag.TLS in flags and self.host.driver.tls_dir is None:
            raise RequestError(
                f"a migration with TLS needs a certificate directory on {self.host.name}: "
                "start its daemon with --tls-dir",
                code=INVALID_ARGUMENT,
                details={"flag": MigrationFlag.TLS.name, "host": self.host.name},
            )

    def _check_migratable(self, name: str, flags: MigrationFlag) -> None:
        if MigrationFlag.OFFLINE in flags:
            if name not in self.host.definitions:
                self._unknown_or(name, "offline migration needs a persistent domain")
            return
        if name not in self.host.guests:
            self._unknown_or(name, f"domain '{name}' is not running")

    def _unknown_or(self, name: str, message: str) -> NoReturn:
        if name in self.host.definitions or name in self.host.guests:
            raise RequestError(message, code=INVALID_STATE)
        raise RequestError(f"failed to get domain '{name}'", code=NO_DOMAIN)

    async def _paused(self, name: str) -> bool:
        guest = self.host.guests.get(name)
        return guest is not None and await guest.instance.run_state() is RunState.PAUSED

    def _instance(self, name: str) -> Instance:
        guest = self.host.guests.get(name)
        if guest is None:
            self._unknown_or(name, f"domain '{name}' is not running")
        return guest.instance


def _checked(build: Callable[[], ParamSet]) -> ParamSet:
    try:
        return build()
    except ParamsError as exc:
        raise RequestError(str(exc), code=INVALID_ARGUMENT) from None


def _migration_error(
    name: str, dest_uri: str, exc: BaseException, *, lost: list[str]
) -> RequestError:
    """The error a client sees for a failed peer-to-peer migration."""
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, AbiMismatch):
        return RequestError(
            f"destination_xml does not describe the running guest: {exc}",
            code=INVALID_ARGUMENT,
            details={"param": "destination_xml", "field": exc.field},
        )
    if isinstance(exc, DomainError):
        return RequestError(
            f"invalid destination_xml: {exc}",
            code=INVALID_ARGUMENT,
            details={"param": "destination_xml"},
        )
    if isinstance(exc, ParamsError):
        return RequestError(str(exc), code=INVALID_ARGUMENT)
    if isinstance(exc, ClientError) and exc.code in (UNREACHABLE, INVALID_ARGUMENT) and not lost:
        return RequestError(str(exc), code=exc.code, details=exc.details)
    if isinstance(exc, HostError) and exc.code in (NO_DOMAIN, BUSY):
        return RequestError(str(exc), code=exc.code)
    reason = str(exc)
    if lost:
        reason = f"the connection to the destination daemon was lost ({lost[0]})"
    return RequestError(
        f"migration of '{name}' to {dest_uri} failed: {reason}",
        code=MIGRATION_FAILED,
        details={"domain": name, "destination": dest_uri},
    )
