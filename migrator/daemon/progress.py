"""Reporting migration jobs: a job event at every phase transition (the host's
``on_job_phase`` hook) and about every 250 ms while QEMU migrates; ``domjobinfo`` for the
job in progress and for the last one that ended on each domain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from cookies import JobOperation, JobStatistics
from migrator.client.types import JobEvent, JobInfo, JobType, LifecycleKind, operation_label
from migrator.daemon.events import EventHub
from migrator.drivers.base import DriverError, Instance
from migrator.phases import DestinationPhase, SourcePhase
from migrator.runtime.jobs import JobRunner
from migrator.runtime.records import JobSide
from migrator.runtime.stats import job_statistics
from migrator.status import MigrationStatus

log = logging.getLogger("migrator.daemon.progress")

#: Seconds between progress events while QEMU migrates.
TICK_S = 0.25
#: Seconds a statistics query may take before the event goes out without statistics.
QUERY_TIMEOUT_S = 1.0

#: QEMU statuses in which the migration stream moves (progress is worth reporting).
_MOVING = frozenset(
    {
        MigrationStatus.SETUP,
        MigrationStatus.ACTIVE,
        MigrationStatus.PRE_SWITCHOVER,
        MigrationStatus.DEVICE,
        MigrationStatus.WAIT_UNPLUG,
        MigrationStatus.CANCELLING,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.POSTCOPY_RECOVER,
    }
)
#: The phases a job succeeded in.
_SUCCEEDED = frozenset({SourcePhase.CONFIRM3, DestinationPhase.COMPLETED})


@dataclass
class _Active:
    runner: JobRunner
    ticker: asyncio.Task[None] | None = None


def operation_of(runner: JobRunner) -> JobOperation:
    """A migration job's operation: out on the source, in on the destination."""
    if runner.record.side is JobSide.SOURCE:
        return JobOperation.MIGRATION_OUT
    return JobOperation.MIGRATION_IN


class JobReporter:
    """Follows the runtime's migration jobs through the host's phase hook."""

    def __init__(self, hub: EventHub, *, tick_s: float = TICK_S) -> None:
        self.hub = hub
        self.tick_s = tick_s
        self._active: dict[str, _Active] = {}
        #: The last job that ended on each domain (``domjobinfo --completed``).
        self.completed: dict[str, JobInfo] = {}
        self._aborted: set[str] = set()

    async def on_phase(self, runner: JobRunner) -> None:
        """The host's ``on_job_phase`` hook: a job moved to a new phase."""
        name = runner.record.domain
        job = runner.job
        # Statistics cost a QMP round trip before the new phase's actions: only for someone
        # who listens, or for the record of a job that ended.
        wanted = job.done or self.hub.listening
        statistics = await self._statistics(runner.instance) if wanted else JobStatistics()
        if job.done:
            self._end(name)
            info = self._outcome(runner, statistics, aborted=name in self._aborted)
            self._aborted.discard(name)
            self.completed[name] = info
            self.hub.job(
                JobEvent(name, runner.record.job_id, job.phase, statistics, True, info.error)
            )
            self._report_arrival(runner, info)
            return
        active = self._active.get(name)
        if active is None or active.runner is not runner:
            self._end(name)
            active = self._active[name] = _Active(runner)
            active.ticker = asyncio.create_task(self._tick(runner), name=f"progress {name}")
        self.hub.job(JobEvent(name, runner.record.job_id, job.phase, statistics))

    def note_abort(self, name: str) -> None:
        """The user asked to abort the job of ``name``: if it ends cancelled, it was them."""
        self._aborted.add(name)

    def note_failure(self, name: str, error: str) -> None:
        """Say why the last job of ``name`` failed, in the words of whoever drove it."""
        info = self.completed.get(name)
        if info is not None and info.job_type is not JobType.COMPLETED:
            self.completed[name] = JobInfo(
                info.job_type, info.operation, info.phase, info.statistics, error
            )

    async def job_info(
        self, name: str, *, completed: bool, claimed: JobOperation | None = None
    ) -> JobInfo:
        """``domjobinfo``: the job running on ``name`` (or the operation ``claimed`` for it
        before its runtime job began), or with ``completed`` the last one that ended."""
        if completed:
            return self.completed.get(name, JobInfo(JobType.NONE))
        active = self._active.get(name)
        if active is not None and not active.runner.job.done:
            runner = active.runner
            return JobInfo(
                JobType.UNBOUNDED,
                operation_label(operation_of(runner)),
                runner.job.phase,
                await self._statistics(runner.instance),
            )
        if claimed is not None:
            return JobInfo(JobType.UNBOUNDED, operation_label(claimed))
        return JobInfo(JobType.NONE)

    def incoming(self) -> dict[str, str]:
        """The definitions (XML) of the guests migrating in, by name."""
        return {
            name: active.runner.record.definition
            for name, active in self._active.items()
            if active.runner.record.side is JobSide.DESTINATION and not active.runner.job.done
        }

    async def close(self) -> None:
        """Stop every ticker."""
        for name in list(self._active):
            self._end(name)

    # -- helpers -------------------------------------------------------------------------------

    def _end(self, name: str) -> None:
        active = self._active.pop(name, None)
        if active is not None and active.ticker is not None:
            active.ticker.cancel()

    async def _tick(self, runner: JobRunner) -> None:
        name = runner.record.domain
        while not runner.job.done:
            await asyncio.sleep(self.tick_s)
            instance = runner.instance
            if (
                self.hub.listening
                and instance is not None
                and instance.alive
                and runner.job.last_status in _MOVING
            ):
                statistics = await self._statistics(instance)
                if not runner.job.done:
                    self.hub.job(JobEvent(name, runner.record.job_id, runner.job.phase, statistics))

    @staticmethod
    async def _statistics(instance: Instance | None) -> JobStatistics:
        if instance is None or not instance.alive:
            return JobStatistics()
        with contextlib.suppress(DriverError, TimeoutError):
            async with asyncio.timeout(QUERY_TIMEOUT_S):
                return job_statistics(await instance.query_migration())
        return JobStatistics()

    @staticmethod
    def _outcome(runner: JobRunner, statistics: JobStatistics, *, aborted: bool) -> JobInfo:
        job = runner.job
        operation = operation_label(operation_of(runner))
        if job.state in _SUCCEEDED:
            return JobInfo(JobType.COMPLETED, operation, job.phase, statistics)
        if aborted and job.stream_cancelled:
            kind, error = JobType.CANCELLED, "migration was cancelled"
        else:
            kind, error = JobType.FAILED, f"migration failed in phase {job.phase}"
        return JobInfo(kind, operation, job.phase, statistics, runner.failure or error)

    def _report_arrival(self, runner: JobRunner, info: JobInfo) -> None:
        if info.job_type is not JobType.COMPLETED:
            return
        name = runner.record.domain
        if runner.record.side is JobSide.SOURCE:
            self.hub.lifecycle(name, LifecycleKind.MIGRATED_OUT, "migrated")
        else:
            self.hub.lifecycle(name, LifecycleKind.MIGRATED_IN, "migrated")
