"""The destination host's side of migrations: Prepare, Finish and their resume variants."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import params
from cookies import CookiePhase
from migrator.domain import Domain, parse_domain
from migrator.drivers.base import Instance, StartMode, TLSEndpoint
from migrator.phases import DestinationJob, DestinationPhase, Recovery, recover_destination
from migrator.phases.actions import (
    Action,
    ApplyParams,
    CreateTLSCredentials,
    DeleteTLSCredentials,
    EmitCookie,
    KillGuest,
    PersistDefinition,
    RecoverPostcopy,
    RestoreParams,
    ResumeGuest,
    SaveOriginalParams,
    StartIncoming,
)
from migrator.phases.events import Finish, FinishResume, PeerLost, Prepare, PrepareResume
from migrator.runtime import cookiejar
from migrator.runtime.host import Host, HostError
from migrator.runtime.jobs import JobRunner, inspect, take_over
from migrator.runtime.params_apply import apply_params, restore_params, save_originals, with_tls
from migrator.runtime.records import JobRecord, JobSide
from migrator.runtime.source import MigrationFailed
from migrator.runtime.stats import job_statistics
from params import MigrationFlag, ParamSet, Side

#: Finish is over once the job leaves these phases (in post-copy, once every page is here).
_ARRIVING = frozenset(
    {DestinationPhase.PREPARE, DestinationPhase.FINISH3, DestinationPhase.FINISH3_POSTCOPY}
)


@dataclass(frozen=True)
class PrepareResult:
    """What Prepare hands back to the source: its cookie and where to send the stream."""

    cookie: bytes
    uri: str


@dataclass
class _Incoming:
    runner: JobRunner
    domain: Domain
    params: ParamSet
    persistent: str | None = None
    instance: Instance | None = None
    originals: ParamSet | None = None
    uri: str = ""
    remote_caps: frozenset[str] = frozenset()
    cookie_out: bytes = b""


class DestinationSide:
    """Incoming migrations to one host, one job per guest."""

    def __init__(self, host: Host, *, listen_uri: str | Callable[[], str] | None = None) -> None:
        """``listen_uri`` is where incoming streams are awaited (``tcp:HOST:PORT``, port 0
        for any), or a function that picks one for each incoming QEMU."""
        self.host = host
        self._listen_uri = listen_uri or f"tcp:{host.incoming_address}:0"
        self._jobs: dict[str, _Incoming] = {}
        #: The last finished incoming job of each guest (``domjobinfo --completed``).
        self.completed: dict[str, JobRecord] = {}

    @property
    def listen_uri(self) -> str:
        """Where the next incoming stream is awaited."""
        uri = self._listen_uri
        return uri if isinstance(uri, str) else uri()

    def job(self, name: str) -> DestinationJob:
        """The machine of ``name``'s incoming job.

        Raises:
            HostError: no incoming migration of that guest runs here.
        """
        job = self._incoming(name).runner.job
        assert isinstance(job, DestinationJob)
        return job

    async def prepare(
        self, *, cookie: bytes, xml: str, flags: MigrationFlag, typed: dict[str, object]
    ) -> PrepareResult:
        """Get ready to receive the guest described by ``xml``.

        Raises:
            CookieError: the Begin cookie is invalid, tampered with, or from this host.
            DomainError: the definition is invalid.
            HostError: the guest already runs here or is busy.
            MigrationFailed: the incoming QEMU could not be started.
        """
        domain = parse_domain(xml)
        received = cookiejar.read(self.host, cookie, domain=domain, consumer=CookiePhase.PREPARE)
        if domain.name in self._jobs or domain.name in self.host.guests:
            raise HostError(
                f"domain '{domain.name}' already runs on {self.host.name}",
                domain=domain.name,
                code="busy",
            )
        pset = params.from_typed(typed, flags=flags, side=Side.DESTINATION)
        job = DestinationJob(flags=flags)
        record = JobRecord(
            job_id=str(uuidlib.uuid4()),
            side=JobSide.DESTINATION,
            domain=domain.name,
            phase=job.phase,
            flags=int(flags),
            params=params.to_wire(pset),
            definition=xml,
        )
        runner = JobRunner(
            host=self.host,
            job=job,
            record=record,
            execute=partial(self._carry_out, domain.name),
            on_done=self._close,
        )
        incoming = _Incoming(
            runner=runner,
            domain=domain,
            params=pset,
            remote_caps=cookiejar.capability_names(received),
        )
        self._jobs[domain.name] = incoming
        await runner.feed(Prepare())
        if job.done:
            await self._close(runner)
            raise MigrationFailed(
                runner.failure or "could not start the incoming guest", domain=domain.name
            )
        return PrepareResult(cookie=incoming.cookie_out, uri=incoming.uri)

    async def finish(self, name: str, *, cookie: bytes | None, cancelled: bool) -> bytes:
        """Complete (or, when ``cancelled``, abandon) the incoming guest.

        Returns the Finish cookie once the guest runs here (or is paused, as asked).

        Raises:
            MigrationFailed: the guest did not arrive; it was killed here.
        """
        incoming = self._incoming(name)
        if cookie:
            received = cookiejar.read(
                self.host, cookie, domain=incoming.domain, consumer=CookiePhase.FINISH
            )
            incoming.persistent = received.persistent
        runner = incoming.runner
        job = self.job(name)
        await runner.feed(Finish(cancelled=cancelled))
        await runner.wait_until(lambda: job.state not in _ARRIVING)
        state = job.state
        result = incoming.cookie_out
        await self._close(runner)
        if state is not DestinationPhase.COMPLETED:
            raise MigrationFailed(
                runner.failure or f"the guest did not arrive (phase {state.value})", domain=name
            )
        return result

    async def abandon(self, name: str) -> None:
        """The source or the controlling client went away (auto-destroy)."""
        incoming = self._jobs.get(name)
        if incoming is None:
            return
        if not incoming.runner.job.done:
            await incoming.runner.feed(PeerLost())
        await self._close(incoming.runner)

    async def prepare_resume(self, name: str) -> str:
        incoming = self._incoming(name)
        await incoming.runner.feed(PrepareResume())
        return incoming.uri

    async def finish_resume(self, name: str) -> None:
        incoming = self._incoming(name)
        runner = incoming.runner
        await runner.feed(FinishResume())
        await runner.wait_until(lambda: runner.job.state is not DestinationPhase.FINISH_RESUME)
        if runner.job.state is not DestinationPhase.COMPLETED:
            raise MigrationFailed("post-copy resume did not complete", domain=name)
        await self._close(runner)

    # -- after a restart -------------------------------------------------------------------

    async def detach(self) -> None:
        """Forget every job without touching a guest: what a daemon that stops leaves
        behind (the records stay in the status store for the next start)."""
        for incoming in self._jobs.values():
            await incoming.runner.close()
        self._jobs.clear()

    async def adopt(self, record: JobRecord) -> Recovery:
        """Resolve an incoming job found in the status store after a daemon restart, with
        libvirt's recovery table; a job that must stay open (post-copy) is taken over.

        Raises:
            DomainError: the stored definition is unreadable.
        """
        found = await inspect(self.host, record)
        decision = recover_destination(
            DestinationPhase(record.phase),
            flags=found.flags,
            status=found.status,
            run_state=found.run_state,
            postcopy=record.postcopy_started,
        )
        phase = decision.phase if isinstance(decision.phase, DestinationPhase) else None
        job = DestinationJob(
            flags=found.flags,
            phase=phase or DestinationPhase(record.phase),
            last_status=found.status,
            postcopy_started=record.postcopy_started,
        )
        name = record.domain
        runner = JobRunner(
            host=self.host,
            job=job,
            record=record,
            execute=partial(self._carry_out, name),
            on_done=self._close,
        )
        self._jobs[name] = _Incoming(
            runner=runner,
            domain=found.domain,
            params=found.params,
            instance=found.instance,
            originals=found.originals,
        )
        await take_over(
            runner,
            found,
            actions=decision.actions,
            keep=phase is not None,
            end=partial(self._end, name),
        )
        return decision

    # -- carrying out actions ------------------------------------------------------------

    async def _carry_out(self, name: str, action: Action) -> None:
        incoming = self._jobs[name]
        match action:
            case StartIncoming():
                instance = await self.host.driver.start(incoming.domain, mode=StartMode.INCOMING)
                incoming.instance = instance
                await incoming.runner.watch(instance)
                incoming.uri = await instance.start_incoming(self.listen_uri)
            case EmitCookie(phase=phase):
                incoming.cookie_out = await self._emit(incoming, phase)
            case PersistDefinition():
                xml = incoming.persistent
                self.host.define(parse_domain(xml) if xml else incoming.domain)
            case _:
                await self._on_instance(incoming, self._instance(incoming), action)

    async def _on_instance(self, incoming: _Incoming, instance: Instance, action: Action) -> None:
        match action:
            case SaveOriginalParams():
                incoming.originals = await save_originals(instance)
                incoming.runner.update_record(originals=params.to_wire(incoming.originals))
            case CreateTLSCredentials():
                await instance.add_tls_credentials(TLSEndpoint.SERVER)
            case ApplyParams(tls=tls):
                await apply_params(
                    instance,
                    with_tls(incoming.params, enabled=tls),
                    side=Side.DESTINATION,
                    remote_caps=incoming.remote_caps,
                )
            case RestoreParams():
                if incoming.originals is not None and instance.alive:
                    await restore_params(instance, incoming.originals)
            case DeleteTLSCredentials():
                if instance.alive:
                    await instance.delete_tls_credentials()
            case ResumeGuest():
                await instance.resume()
                self.host.add_guest(incoming.domain, instance)
            case RecoverPostcopy():
                incoming.uri = await instance.recover_postcopy(self.listen_uri)
            case KillGuest():
                await instance.kill()
                self.host.remove_guest(incoming.domain.name)
            case _:
                raise TypeError(f"destination cannot carry out {action.name}")

    async def _emit(self, incoming: _Incoming, phase: CookiePhase) -> bytes:
        instance = incoming.instance
        if phase is CookiePhase.FINISH and instance is not None:
            progress = await instance.query_migration()
            return cookiejar.write(
                self.host, domain=incoming.domain, statistics=job_statistics(progress)
            )
        if instance is None:
            return cookiejar.write(self.host, domain=incoming.domain)
        return cookiejar.write(
            self.host,
            domain=incoming.domain,
            capabilities=await instance.supported_capabilities(),
            side=Side.DESTINATION,
            graphics=await instance.graphics(),
        )

    # -- helpers ---------------------------------------------------------------------------

    def _incoming(self, name: str) -> _Incoming:
        try:
            return self._jobs[name]
        except KeyError:
            raise HostError(
                f"domain '{name}' has no incoming migration on {self.host.name}",
                domain=name,
                code="no-job",
            ) from None

    def _instance(self, incoming: _Incoming) -> Instance:
        if incoming.instance is None:
            raise HostError(
                f"domain '{incoming.domain.name}' has no incoming QEMU", domain=incoming.domain.name
            )
        return incoming.instance

    async def _close(self, runner: JobRunner) -> None:
        """End ``runner``'s job if it is over and still open: a job may end through a phase
        request and through QEMU's events at once, and is closed only once."""
        name = runner.record.domain
        incoming = self._jobs.get(name)
        if incoming is not None and incoming.runner is runner and runner.job.done:
            await self._end(name)

    async def _end(self, name: str) -> None:
        incoming = self._jobs.pop(name)
        if (
            incoming.instance is not None
            and incoming.runner.job.state is DestinationPhase.COMPLETED
        ):
            self.host.add_guest(incoming.domain, incoming.instance)
        await incoming.runner.close()
        self.completed[name] = incoming.runner.record
        self.host.status.delete(name)
