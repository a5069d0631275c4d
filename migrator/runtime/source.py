"""The source host's side of migrations: Begin, Perform, Confirm and their resume variants."""

from __future__ import annotations

import asyncio
import contextlib
import uuid as uuidlib
from dataclasses import dataclass
from functools import partial

import params
from cookies import CookiePhase
from migrator.domain import Domain, FormatFlag, check_abi_stability, format_domain, parse_domain
from migrator.drivers.base import (
    DriverError,
    EventKind,
    GraphicsEndpoint,
    Instance,
    TLSEndpoint,
)
from migrator.drivers.uri import tcp_address
from migrator.phases import PhaseError, Recovery, SourceJob, SourcePhase, recover_source
from migrator.phases.actions import (
    Action,
    ApplyParams,
    CancelMigration,
    ContinueMigration,
    CreateTLSCredentials,
    DeleteTLSCredentials,
    EmitCookie,
    KillGuest,
    PauseGuest,
    RelocateGraphics,
    RestoreParams,
    ResumeGuest,
    SaveOriginalParams,
    StartMigration,
    StartPostcopy,
    UndefineDefinition,
)
from migrator.phases.events import (
    Begin,
    BeginResume,
    Cancel,
    Confirm,
    ConfirmResume,
    PeerLost,
    Perform,
    PerformResume,
    StatusChanged,
    SwitchToPostcopy,
)
from migrator.runtime import cookiejar
from migrator.runtime.host import Host, HostError
from migrator.runtime.jobs import JobRunner, inspect, take_over
from migrator.runtime.params_apply import apply_params, restore_params, save_originals, with_tls
from migrator.runtime.records import JobRecord, JobSide
from migrator.runtime.stats import job_statistics
from migrator.status import MigrationStatus
from params import MigrationFlag, Param, ParamSet, Side

#: How often QEMU's migration status is read while waiting for something it may not report.
POLL_INTERVAL_S = 0.05

#: How long a cancelled migration may take to end before its parameters are restored anyway.
CANCEL_GRACE_S = 10.0

#: QEMU statuses that show a resumed post-copy migration is moving again.
_RESUMED = frozenset({MigrationStatus.POSTCOPY_ACTIVE, MigrationStatus.COMPLETED})

#: How a definition travels between hosts (libvirt: INACTIVE | SECURE | MIGRATABLE).
TRANSFER_FORMAT = FormatFlag.INACTIVE | FormatFlag.SECURE | FormatFlag.MIGRATABLE


class MigrationFailed(HostError):
    """The migration did not complete; the guest is where the job's phase says."""

    code = "migration-failed"


@dataclass(frozen=True)
class BeginResult:
    """What Begin hands to Prepare: the cookie and the migratable definition."""

    cookie: bytes
    xml: str


@dataclass
class _Outgoing:
    runner: JobRunner
    domain: Domain
    instance: Instance | None
    params: ParamSet
    originals: ParamSet | None = None
    uri: str = ""
    peer_graphics: GraphicsEndpoint | None = None
    cookie_out: bytes = b""
    remote_caps: frozenset[str] = frozenset()


def _destination_definition(domain: Domain, pset: ParamSet) -> str | None:
    """The ``destination_xml`` parameter in transfer form, once checked against ``domain``.

    Raises:
        DomainError: the XML is invalid or fails the ABI check.
    """
    text = pset.values.get(Param.DESTINATION_XML)
    if not isinstance(text, str):
        return None
    target = parse_domain(text)
    check_abi_stability(domain, target)
    return format_domain(target, flags=TRANSFER_FORMAT)


def _host_of(uri: str) -> str:
    """The host of a ``tcp:`` migration URI; "" for another kind."""
    address = tcp_address(uri)
    return address[0] if address else ""


async def _until_cancelled(instance: Instance) -> None:
    """Wait while QEMU winds a cancelled migration down (for ``CANCEL_GRACE_S`` at most): it
    refuses capability changes until the migration has ended, and a restarted daemon cancels
    and restores at once."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(CANCEL_GRACE_S), instance.listen() as events:
            if (await instance.query_migration()).status is not MigrationStatus.CANCELLING:
                return
            async for event in events:
                if event.kind is EventKind.MIGRATION and (
                    event.status is not MigrationStatus.CANCELLING
                ):
                    return


class SourceSide:
    """Outgoing migrations from one host, one job per guest."""

    def __init__(self, host: Host, *, resume_timeout: float = 10.0) -> None:
        self.host = host
        #: Seconds a post-copy reconnection may take before it counts as failed.
        self.resume_timeout = resume_timeout
        self._jobs: dict[str, _Outgoing] = {}
        #: The last finished outgoing job of each guest (``domjobinfo --completed``).
        self.completed: dict[str, JobRecord] = {}

    def job(self, name: str) -> SourceJob:
        """The machine of ``name``'s outgoing job.

        Raises:
            HostError: no outgoing migration of that guest runs here.
        """
        job = self._outgoing(name).runner.job
        assert isinstance(job, SourceJob)
        return job

    # -- Begin ---------------------------------------------------------------------------

    async def begin(
        self, name: str, *, flags: MigrationFlag, typed: dict[str, object]
    ) -> BeginResult:
        """Start an outgoing job and return the Begin cookie and migratable XML.

        With the ``destination_xml`` parameter, that definition is sent instead, once it
        passed the ABI check against the guest's.

        Raises:
            HostError: the guest is unknown, not running, or busy with another job.
            ParamsError: the typed parameters are invalid for these flags.
            DomainError: ``destination_xml`` is invalid, or describes another guest
                (:class:`~migrator.domain.AbiMismatch` names the field).
        """
        if name in self._jobs:
            raise HostError(
                f"domain '{name}' is busy with an outgoing migration", domain=name, code="busy"
            )
        instance: Instance | None = None
        if MigrationFlag.OFFLINE in flags:
            domain = self._definition(name)
            running = False
        else:
            guest = self.host.guest(name)
            domain, instance = guest.domain, guest.instance
            running = (await instance.run_state()).cpus_running
        pset = params.from_typed(typed, flags=flags, side=Side.SOURCE)
        xml = format_domain(domain, flags=TRANSFER_FORMAT)
        sent = _destination_definition(domain, pset) or xml
        job = SourceJob(flags=flags)
        record = JobRecord(
            job_id=str(uuidlib.uuid4()),
            side=JobSide.SOURCE,
            domain=name,
            phase=job.phase,
            flags=int(flags),
            params=params.to_wire(pset),
            was_running=running,
            definition=xml,
        )
        runner = JobRunner(
            host=self.host,
            job=job,
            record=record,
            execute=partial(self._carry_out, name),
            on_done=self._close,
        )
        outgoing = _Outgoing(runner=runner, domain=domain, instance=instance, params=pset)
        self._jobs[name] = outgoing
        await outgoing.runner.feed(Begin(running=running))
        return BeginResult(cookie=outgoing.cookie_out, xml=sent)

    # -- Perform -------------------------------------------------------------------------

    async def perform(self, name: str, *, cookie: bytes, uri: str) -> bytes:
        """Send the guest to ``uri``; returns the Perform cookie once QEMU completed (or the
        migration switched to post-copy).

        Raises:
            MigrationFailed: the migration failed or was cancelled; Confirm rolls back.
            CookieError: the Prepare cookie is invalid.
        """
        outgoing = self._outgoing(name)
        received = cookiejar.read(
            self.host, cookie, domain=outgoing.domain, consumer=CookiePhase.PERFORM
        )
        outgoing.peer_graphics = cookiejar.graphics_endpoint(received)
        outgoing.remote_caps = cookiejar.capability_names(received)
        outgoing.uri = uri
        runner = outgoing.runner
        await runner.watch(self._instance(outgoing))
        await runner.feed(Perform(graphics=outgoing.peer_graphics is not None))
        await runner.wait_until(lambda: runner.job.state is not SourcePhase.PERFORM3)
        if runner.job.state is not SourcePhase.PERFORM3_DONE:
            why = self._why(outgoing, "migration did not complete")
            reason = await self._qemu_error(outgoing)
            raise MigrationFailed(f"{why}: {reason}" if reason else why, domain=name)
        return outgoing.cookie_out

    async def switch_to_postcopy(self, name: str) -> None:
        """Switch the running migration of ``name`` to post-copy."""
        await self._outgoing(name).runner.feed(SwitchToPostcopy())

    async def cancel(self, name: str) -> None:
        """Abort the outgoing job of ``name`` (``domjobabort``)."""
        runner = self._outgoing(name).runner
        await runner.feed(Cancel())
        await self._close(runner)

    async def peer_lost(self, name: str) -> None:
        """The destination or the controlling client went away in the middle of the job."""
        runner = self._outgoing(name).runner
        if not runner.job.done:
            await runner.feed(PeerLost())
        await self._close(runner)

    async def destination_lost(self, name: str) -> None:
        """The destination went away while Perform runs (peer-to-peer): the migration is
        cancelled. Once Perform is over nothing happens here: Finish and Confirm decide."""
        runner = self._outgoing(name).runner
        await runner.feed_if(PeerLost(), when=lambda: runner.job.state is SourcePhase.PERFORM3)
        await self._close(runner)

    # -- Confirm -------------------------------------------------------------------------

    async def confirm(self, name: str, *, cookie: bytes | None, cancelled: bool) -> None:
        """End the job: on success kill the source, else roll back (resume the guest)."""
        outgoing = self._outgoing(name)
        if cookie:
            cookiejar.read(self.host, cookie, domain=outgoing.domain, consumer=CookiePhase.CONFIRM)
        await outgoing.runner.feed(Confirm(cancelled=cancelled))
        await self._close(outgoing.runner)

    # -- post-copy resume ------------------------------------------------------------------

    async def begin_resume(self, name: str) -> bytes:
        outgoing = self._outgoing(name)
        status = (await self._instance(outgoing).query_migration()).status
        await outgoing.runner.feed(BeginResume(status=status))
        return outgoing.cookie_out

    async def perform_resume(self, name: str, *, uri: str) -> None:
        """Reconnect the paused post-copy stream to ``uri``; returns once QEMU runs the
        migration in post-copy again (or completed it).

        QEMU reports nothing when the reconnection fails (it stays ``postcopy-paused``), so
        the status is polled; not moving again after ``resume_timeout`` counts as failed.

        Raises:
            MigrationFailed: the stream did not come back; the job is post-copy-failed again
                (or the guest was lost).
        """
        outgoing = self._outgoing(name)
        outgoing.uri = uri
        runner = outgoing.runner
        job = self.job(name)
        await runner.feed(PerformResume())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.resume_timeout
        while job.state is SourcePhase.PERFORM_RESUME and job.last_status not in _RESUMED:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    runner.wait_until(lambda: job.last_status in _RESUMED),
                    min(POLL_INTERVAL_S, self.resume_timeout),
                )
            status = (await self._instance(outgoing).query_migration()).status
            with contextlib.suppress(PhaseError):
                if loop.time() > deadline:
                    await runner.feed(PeerLost())
                elif status is not job.last_status:
                    await runner.feed(StatusChanged(status))
        if job.state is not SourcePhase.PERFORM_RESUME:
            raise MigrationFailed(self._why(outgoing, "post-copy resume failed"), domain=name)

    async def confirm_resume(self, name: str) -> None:
        outgoing = self._outgoing(name)
        await outgoing.runner.feed(ConfirmResume())
        await self._close(outgoing.runner)

    # -- after a restart -------------------------------------------------------------------

    async def detach(self) -> None:
        """Forget every job without touching a guest: what a daemon that stops leaves
        behind (the records stay in the status store for the next start)."""
        for outgoing in self._jobs.values():
            await outgoing.runner.close()
        self._jobs.clear()

    async def adopt(self, record: JobRecord) -> Recovery:
        """Resolve an outgoing job found in the status store after a daemon restart, with
        libvirt's recovery table; a job that must stay open (post-copy) is taken over.

        Raises:
            DomainError: the stored definition is unreadable.
        """
        found = await inspect(self.host, record)
        decision = recover_source(
            SourcePhase(record.phase),
            flags=found.flags,
            postcopy=record.postcopy_started,
            status=found.status,
            run_state=found.run_state,
            was_running=record.was_running,
        )
        phase = decision.phase if isinstance(decision.phase, SourcePhase) else None
        job = SourceJob(
            flags=found.flags,
            phase=phase or SourcePhase(record.phase),
            was_running=record.was_running,
            postcopy_started=record.postcopy_started,
            last_status=found.status,
        )
        name = record.domain
        runner = JobRunner(
            host=self.host,
            job=job,
            record=record,
            execute=partial(self._carry_out, name),
            on_done=self._close,
        )
        self._jobs[name] = _Outgoing(
            runner=runner,
            domain=found.domain,
            instance=found.instance,
            params=found.params,
            originals=found.originals,
        )
        await take_over(
            runner,
            found,
            actions=decision.actions,
            keep=phase is not None,
            end=partial(self._finish, name),
        )
        return decision

    # -- carrying out actions ------------------------------------------------------------

    async def _carry_out(self, name: str, action: Action) -> None:
        outgoing = self._jobs[name]
        if isinstance(action, EmitCookie):
            outgoing.cookie_out = await self._emit(outgoing, action.phase)
        elif isinstance(action, UndefineDefinition):
            self.host.undefine(name)
        else:
            await self._on_instance(outgoing, self._instance(outgoing), action)

    async def _on_instance(self, outgoing: _Outgoing, instance: Instance, action: Action) -> None:
        match action:
            case SaveOriginalParams():
                outgoing.originals = await save_originals(instance)
                outgoing.runner.update_record(originals=params.to_wire(outgoing.originals))
            case CreateTLSCredentials():
                await instance.add_tls_credentials(TLSEndpoint.CLIENT)
            case ApplyParams(tls=tls, postcopy_resume=resume):
                pset = outgoing.params
                if not resume:
                    pset = with_tls(pset, enabled=tls, destination_host=_host_of(outgoing.uri))
                await apply_params(
                    instance,
                    pset,
                    side=Side.SOURCE,
                    remote_caps=outgoing.remote_caps,
                    postcopy_resume=resume,
                )
            case RestoreParams():
                if outgoing.originals is not None and instance.alive:
                    await _until_cancelled(instance)
                    await restore_params(instance, outgoing.originals)
            case DeleteTLSCredentials():
                if instance.alive:
                    await instance.delete_tls_credentials()
            case RelocateGraphics():
                if outgoing.peer_graphics is not None:
                    await instance.relocate_graphics_clients(outgoing.peer_graphics)
            case PauseGuest():
                await instance.pause()
            case ResumeGuest():
                await instance.resume()
            case StartMigration(resume=resume, own_connection=own_connection):
                await instance.migrate(outgoing.uri, resume=resume, own_connection=own_connection)
            case ContinueMigration():
                await instance.continue_migration()
            case CancelMigration():
                await instance.cancel_migration()
            case StartPostcopy():
                await instance.start_postcopy()
            case KillGuest():
                await instance.kill()
                self.host.remove_guest(outgoing.domain.name)
            case _:
                raise TypeError(f"source cannot carry out {action.name}")

    async def _emit(self, outgoing: _Outgoing, phase: CookiePhase) -> bytes:
        domain = outgoing.domain
        flags = outgoing.runner.job.flags
        if phase is CookiePhase.PERFORM:
            progress = await self._instance(outgoing).query_migration()
            persistent = None
            if MigrationFlag.PERSIST_DEST in flags:
                definition = self.host.definitions.get(domain.name, domain)
                persistent = format_domain(definition, flags=TRANSFER_FORMAT)
            return cookiejar.write(
                self.host,
                domain=domain,
                statistics=job_statistics(progress),
                persistent=persistent,
            )
        caps = (
            frozenset()
            if outgoing.instance is None
            else await outgoing.instance.supported_capabilities()
        )
        return cookiejar.write(self.host, domain=domain, capabilities=caps, side=Side.SOURCE)

    # -- helpers ---------------------------------------------------------------------------

    def _outgoing(self, name: str) -> _Outgoing:
        try:
            return self._jobs[name]
        except KeyError:
            raise HostError(
                f"domain '{name}' has no outgoing migration on {self.host.name}",
                domain=name,
                code="no-job",
            ) from None

    def _instance(self, outgoing: _Outgoing) -> Instance:
        if outgoing.instance is None:
            raise HostError(
                f"domain '{outgoing.domain.name}' is not running", domain=outgoing.domain.name
            )
        return outgoing.instance

    def _definition(self, name: str) -> Domain:
        try:
            return self.host.definitions[name]
        except KeyError:
            raise HostError(f"domain '{name}' is not defined", domain=name) from None

    async def _close(self, runner: JobRunner) -> None:
        """End ``runner``'s job if it is over and still open: a job may end through a phase
        request and through QEMU's events at once, and is closed only once."""
        name = runner.record.domain
        outgoing = self._jobs.get(name)
        if outgoing is not None and outgoing.runner is runner and runner.job.done:
            await self._finish(name)

    async def _finish(self, name: str) -> None:
        outgoing = self._jobs.pop(name)
        await outgoing.runner.close()
        self.completed[name] = outgoing.runner.record
        self.host.status.delete(name)

    @staticmethod
    async def _qemu_error(outgoing: _Outgoing) -> str | None:
        """Why QEMU says the outgoing migration failed, while it can still say."""
        instance = outgoing.instance
        if instance is None or not instance.alive:
            return None
        try:
            return (await instance.query_migration()).error_desc
        except DriverError:
            return None

    @staticmethod
    def _why(outgoing: _Outgoing, default: str) -> str:
        job = outgoing.runner.job
        if outgoing.runner.failure:
            return outgoing.runner.failure
        if job.stream_cancelled:
            return "migration was cancelled"
        return f"{default} (phase {job.phase}, QEMU status {job.last_status.value})"
