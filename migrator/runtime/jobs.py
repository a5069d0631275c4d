"""Running one side's phase machine: feed it events, carry out its actions, persist first.

A :class:`JobRunner` owns one job's machine. Every entry point takes the job's lock, so
that a phase request and a QEMU status change never interleave inside the machine. The
record is written to the host's status store before each side effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

import params
from migrator.domain import Domain, parse_domain
from migrator.drivers.base import DriverError, EventKind, Instance, InstanceEvent
from migrator.errors import MigratorError
from migrator.phases.actions import Action
from migrator.phases.errors import PhaseError
from migrator.phases.events import ActionFailed, Event, GuestLost, StatusChanged
from migrator.phases.machine import PhaseJob
from migrator.runtime.host import Host
from migrator.runtime.journal import RollbackJournal
from migrator.runtime.records import JobRecord
from migrator.status import MigrationStatus, RunState
from params import MigrationFlag, ParamSet

log = logging.getLogger("migrator.job")

#: What carrying out an action may raise when the world refuses it; anything else is a bug.
ACTION_ERRORS = (MigratorError, OSError)

#: Carries out one action; returns nothing, raises on failure.
Executor = Callable[[Action], Awaitable[None]]

#: Ends a job that is over (its side forgets it and deletes its record).
Closer = Callable[["JobRunner"], Awaitable[None]]


class JobRunner:
    """Feeds one job's events to its machine and carries out the resulting actions."""

    def __init__(
        self,
        *,
        host: Host,
        job: PhaseJob,
        record: JobRecord,
        execute: Executor,
        on_done: Closer | None = None,
    ) -> None:
        """``on_done`` is awaited when an event from the instance ended a job that no
        phase request was driving (:attr:`PhaseJob.unattended`): a post-copy migration that
        completed by itself, a QEMU that exited meanwhile. Otherwise the phase request that
        comes next (Finish, Confirm, or the peer's loss) closes the job."""
        self.host = host
        self.job = job
        self.record = record
        self.journal = RollbackJournal()
        self._execute = execute
        self._on_done = on_done
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition(self._lock)
        self._watcher: asyncio.Task[None] | None = None
        #: The instance whose events this job follows (set by :meth:`watch`).
        self.instance: Instance | None = None
        self._started = time.monotonic()
        #: Why the last action failed, for the error the caller sees.
        self.failure: str | None = None

    # -- events ---------------------------------------------------------------------------

    async def feed(self, event: Event) -> None:
        """Apply ``event`` and carry out its actions.

        Raises:
            PhaseError: the machine refused the event (nothing changed).
        """
        async with self._lock:
            await self._feed_locked(event)

    async def feed_if(self, event: Event, *, when: Callable[[], bool]) -> bool:
        """Apply ``event`` only if ``when()`` holds, checked under the job's lock; return
        whether it was applied.

        Raises:
            PhaseError: the machine refused the event (nothing changed).
        """
        async with self._lock:
            if not when():
                return False
            await self._feed_locked(event)
            return True

    async def _feed_locked(self, event: Event) -> None:
        before = self.job.phase
        try:
            actions = self.job.handle(event)
        except PhaseError:
            raise
        except Exception:
            # A bug in the machine: the side is now failed for good. Undo what was done.
            self._persist()
            await self._compensate()
            self._changed.notify_all()
            raise
        self._persist()
        if before != self.job.phase:
            log.info(
                "phase %s -> %s",
                before,
                self.job.phase,
                extra={
                    "domain": self.record.domain,
                    "job_id": self.record.job_id,
                    "side": self.job.side,
                    "elapsed_ms": round((time.monotonic() - self._started) * 1000, 1),
                },
            )
            await self._report_phase()
        for action in actions:
            self.journal.record(action)
            self._persist()
            try:
                await self._execute(action)
            except ACTION_ERRORS as exc:
                await self._action_failed(action, exc)
                break
        self._changed.notify_all()

    async def _report_phase(self) -> None:
        hook = self.host.on_job_phase
        if hook is None:
            return
        try:
            await hook(self)
        except Exception:  # an observer's failure must not change the job's course
            log.exception("the phase observer failed", extra={"domain": self.record.domain})

    async def carry_out(self, actions: Sequence[Action]) -> None:
        """Carry out actions decided outside the machine (a recovery decision), in order;
        a failure is logged and the rest still run."""
        async with self._lock:
            for action in actions:
                try:
                    await self._execute(action)
                except ACTION_ERRORS as exc:
                    self.failure = f"{action.name} failed: {exc}"
                    log.warning("recovery step %s", self.failure)
            self._persist()

    async def _compensate(self) -> None:
        for undo in self.journal.drain():
            try:
                await self._execute(undo)
            except ACTION_ERRORS as exc:
                log.warning("compensation %s failed: %s", undo.name, exc)
        self._persist()

    async def _action_failed(self, action: Action, exc: Exception) -> None:
        self.failure = f"{action.name} failed: {exc}"
        log.warning(
            "%s", self.failure, extra={"domain": self.record.domain, "job_id": self.record.job_id}
        )
        # The machine decides what a failed action means in its phase; where it has no
        # row for it (a rollback step that failed), the phase stands.
        with contextlib.suppress(PhaseError):
            await self._feed_locked(ActionFailed(action=action.name, detail=str(exc)))

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate`` holds (checked after every applied event)."""
        async with self._changed:
            await self._changed.wait_for(predicate)

    # -- watching the instance ----------------------------------------------------------

    async def watch(self, instance: Instance) -> None:
        """Start forwarding the instance's migration statuses and exit to the machine.

        Returns once the subscription is in place, so no event is missed.
        """
        self.instance = instance
        ready = asyncio.Event()
        self._watcher = asyncio.create_task(self._forward(instance, ready))
        await ready.wait()

    async def _forward(self, instance: Instance, ready: asyncio.Event) -> None:
        async with instance.listen() as events:
            ready.set()
            async for event in events:
                translated = _translate(event)
                if translated is None:
                    continue
                unattended = self.job.unattended
                with contextlib.suppress(Exception):
                    await self.feed(translated)
                if unattended and self.job.done and self._on_done is not None:
                    await self._on_done(self)
                if self.job.done or event.kind is EventKind.EXITED:
                    return

    async def close(self) -> None:
        """Stop watching the instance."""
        if self._watcher is not None and self._watcher is not asyncio.current_task():
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    # -- persistence --------------------------------------------------------------------

    def update_record(self, **changes: object) -> None:
        """Change fields of the job record and write it out."""
        self.record = replace(self.record, **changes)  # type: ignore[arg-type]
        self._persist(force=True)

    def _persist(self, *, force: bool = False) -> None:
        """Write the record if what recovery decides on changed (always with ``force``).

        QEMU's migration status alone does not make a write: recovery asks QEMU for it
        afresh, and a write costs fsyncs while the guest may be paused at switchover. The
        record carries the status of its last write.
        """
        decisive = (
            self.job.phase,
            tuple(self.journal.names()),
            bool(getattr(self.job, "postcopy_started", False)),
        )
        record = self.record
        if not force and decisive == (record.phase, record.journal, record.postcopy_started):
            return
        phase, journal, postcopy_started = decisive
        self.record = replace(
            record,
            phase=phase,
            journal=journal,
            last_status=self.job.last_status,
            postcopy_started=postcopy_started,
        )
        self.host.status.save(self.record.domain, self.record)


@dataclass(frozen=True)
class Found:
    """A stored job's guest as a restarted daemon finds it."""

    domain: Domain
    instance: Instance | None
    status: MigrationStatus
    run_state: RunState | None
    flags: MigrationFlag
    params: ParamSet
    originals: ParamSet | None


async def inspect(host: Host, record: JobRecord) -> Found:
    """Reconnect to the guest of a stored job and read what QEMU reports now.

    Raises:
        DomainError: the stored definition is unreadable.
        ParamsError: the stored parameters are unreadable.
    """
    domain = parse_domain(record.definition)
    instance = await host.driver.attach(domain)
    status, run_state = await observe(instance)
    return Found(
        domain=domain,
        instance=instance,
        status=status,
        run_state=run_state,
        flags=MigrationFlag(record.flags),
        params=params.from_wire(record.params),
        originals=None if record.originals is None else params.from_wire(record.originals),
    )


async def take_over(
    runner: JobRunner,
    found: Found,
    *,
    actions: Sequence[Action],
    keep: bool,
    end: Callable[[], Awaitable[None]],
) -> None:
    """Carry out a recovery decision for an adopted job, then keep watching it or end it."""
    if found.instance is not None:
        runner.host.add_guest(found.domain, found.instance)
    await runner.carry_out(actions)
    if keep and found.instance is not None:
        await runner.watch(found.instance)
    else:
        await end()


async def observe(instance: Instance | None) -> tuple[MigrationStatus, RunState | None]:
    """What QEMU reports now: its migration status and run state (None: it is gone)."""
    if instance is None:
        return MigrationStatus.NONE, None
    try:
        return (await instance.query_migration()).status, await instance.run_state()
    except DriverError:
        return MigrationStatus.NONE, None


def _translate(event: InstanceEvent) -> Event | None:
    if event.kind is EventKind.MIGRATION and event.status is not None:
        return StatusChanged(event.status)
    if event.kind is EventKind.EXITED:
        return GuestLost(detail=event.detail)
    return None
