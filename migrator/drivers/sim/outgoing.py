"""What every simulated outgoing migration shares, to another guest or into a file: its
status (with events and the faults injected for it), its task in virtual time, the memory
copy advanced step by step, cancelling, the source's CPUs when it ends without success, and
``query-migrate``'s statistics."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from migrator.drivers.base import MigrationProgress, MigrationStatus, RunState
from migrator.drivers.sim.clock import Alarm
from migrator.drivers.sim.faults import Fault, FaultKind, FaultPoint
from migrator.drivers.sim.memory import Flow, MemoryCopy
from migrator.drivers.sim.options import PAGE_SIZE

if TYPE_CHECKING:
    from migrator.drivers.sim.guest import SimGuest
    from migrator.drivers.sim.world import SimWorld

#: QEMU's ``migration_is_running``.
RUNNING = frozenset(
    {
        MigrationStatus.SETUP,
        MigrationStatus.ACTIVE,
        MigrationStatus.PRE_SWITCHOVER,
        MigrationStatus.DEVICE,
        MigrationStatus.CANCELLING,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.POSTCOPY_PAUSED,
        MigrationStatus.POSTCOPY_RECOVER,
    }
)
#: Statuses that report time and RAM statistics (QEMU's fill_source_migration_info).
WITH_STATISTICS = frozenset(
    {
        MigrationStatus.ACTIVE,
        MigrationStatus.CANCELLING,
        MigrationStatus.PRE_SWITCHOVER,
        MigrationStatus.DEVICE,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.POSTCOPY_PAUSED,
        MigrationStatus.POSTCOPY_RECOVER,
        MigrationStatus.COMPLETED,
    }
)


class OutgoingMigration:
    """One outgoing migration of ``source``; a subclass runs it in :meth:`_run`."""

    def __init__(self, world: SimWorld, source: SimGuest) -> None:
        self._world = world
        self.source = source
        self.status = MigrationStatus.NONE
        self._alarm = Alarm(world.clock)
        self._copy: MemoryCopy | None = None
        self._start_ms = world.now_ms
        self._setup_ms = 0.0
        self._downtime_start_ms = 0.0
        self._downtime_ms = 0.0
        self._total_ms = 0.0
        self._mbps = 0.0
        self._error: str | None = None
        self._vm_was_running = False
        self._stopped_state = RunState.RUNNING
        # The flow of the step in progress, and up to when the copy has been advanced.
        self._flow: Flow | None = None
        self._committed_ms = 0.0
        # Inputs, looked at by the next step.
        self._cancel = False
        self._broken: str | None = None
        self._stalled = False
        #: Whether the current step yielded to the event loop (it then needs no extra turn).
        self._slept = False
        #: A strong reference: the event loop keeps only a weak one to its tasks.
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """QEMU's ``migration_is_running``."""
        return self.status in RUNNING

    # -- the task ----------------------------------------------------------------------------

    def _launch(self) -> None:
        """Start :meth:`_run` as an actor of the virtual clock."""
        self._world.clock.join()
        self._world.add_session(self)
        self._task = asyncio.get_running_loop().create_task(self._run())
        self._task.add_done_callback(self._ended)

    async def _run(self) -> None:
        raise NotImplementedError

    def _ended(self, _task: asyncio.Task[None]) -> None:
        self._world.remove_session(self)
        self._world.clock.leave()

    # -- inputs ------------------------------------------------------------------------------

    def disturb(self) -> None:
        """Something the running step depends on changed."""
        self._alarm.ring()

    def cancel(self) -> None:
        """``migrate_cancel``: ``cancelling`` at once; the next step finishes it."""
        if self.status is not MigrationStatus.CANCELLING:
            self._cancel = True
            self._set_status(MigrationStatus.CANCELLING)
            self._alarm.ring()

    # -- statuses and faults -----------------------------------------------------------------

    def _set_status(self, status: MigrationStatus) -> None:
        self.status = status
        self.source.emit_migration(status)
        if self._world.faults.armed:
            self._fire(self.source, status)

    def _fire(
        self, guest: SimGuest, status: MigrationStatus, *, pass_number: int | None = None
    ) -> None:
        if not guest.alive:
            return
        point = (
            FaultPoint.on_status(status) if pass_number is None else FaultPoint.on_pass(pass_number)
        )
        fault = self._world.faults.fire(host=guest.host, instance=guest.name, point=point)
        if fault is not None:
            self._apply(fault, guest, status=status)

    def _apply(self, fault: Fault, guest: SimGuest, *, status: MigrationStatus) -> None:
        if guest.strike(fault):
            return
        if fault.kind is FaultKind.HANG:
            self._stalled = True
        else:
            self._broken = f"injected failure at {status.value}"

    # -- time --------------------------------------------------------------------------------

    async def _transfer(self, flow: Flow, *, at_least_ms: float = 0.0) -> None:
        """Send at ``flow`` until the pending data is gone (but for no less than
        ``at_least_ms``) or an input arrives."""
        copy = self._copy
        assert copy is not None
        seconds = copy.drain_seconds(flow)
        if not seconds:
            return
        self._flow = flow
        self._committed_ms = self._world.now_ms
        self._mbps = flow.wire_bytes_s * 8 / 1e6
        self._slept = True
        await self._world.clock.sleep(
            None if math.isinf(seconds) else max(seconds * 1000, at_least_ms), alarm=self._alarm
        )
        self._catch_up()
        self._flow = None

    def _catch_up(self) -> None:
        """Advance the copy to now at the flow of the step in progress."""
        if self._flow is None or self._copy is None:
            return
        now = self._world.now_ms
        if now > self._committed_ms:
            self._copy.advance((now - self._committed_ms) / 1000, self._flow)
            self._committed_ms = now

    async def _wait(self) -> None:
        """Sleep until an input arrives (a stalled or paused migration holds no time back)."""
        self._slept = True
        await self._world.clock.sleep(None, alarm=self._alarm)

    # -- endings -----------------------------------------------------------------------------

    def _restore_source(self) -> None:
        """What QEMU does to the source CPUs when a migration ends without success."""
        source = self.source
        if not source.alive:
            return
        if self._vm_was_running:
            source.start_cpus()
        elif source.run_state is RunState.FINISH_MIGRATE:
            source.run_state = RunState.POSTMIGRATE

    # -- statistics --------------------------------------------------------------------------

    def progress(self) -> MigrationProgress:
        """``query-migrate`` on the source, with the fields QEMU fills in for the status."""
        status = self.status
        copy = self._copy
        if status not in WITH_STATISTICS or copy is None:
            return MigrationProgress(
                status=status,
                error_desc=self._error if status is MigrationStatus.FAILED else None,
            )
        self._catch_up()
        completed = status is MigrationStatus.COMPLETED
        normal = int(copy.normal_bytes // PAGE_SIZE)
        return MigrationProgress(
            status=status,
            total_time=round(self._total_ms if completed else self._world.now_ms - self._start_ms),
            setup_time=round(self._setup_ms),
            downtime=round(self._downtime_ms) if completed else None,
            transferred=int(copy.transferred),
            remaining=0 if completed else int(copy.remaining_bytes),
            total=copy.memory_bytes,
            duplicate=int(copy.duplicate_pages),
            normal=normal,
            normal_bytes=normal * PAGE_SIZE,
            dirty_pages_rate=0 if completed else int(copy.dirty_pages_rate),
            mbps=self._mbps,
            dirty_sync_count=copy.pass_number,
            page_size=PAGE_SIZE,
            postcopy_requests=int(copy.postcopy_requests),
        )
