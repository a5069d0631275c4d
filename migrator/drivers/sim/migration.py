"""One simulated migration: QEMU's migration thread on the source and the loader on the
destination, stepped in virtual time.

The migration is a task that acts in steps. A step lasts until the next thing the model
knows will happen (a pass ends, the last page arrives) or until an input changes the plan:
a command on either side, a fault, a link or workload change. Inputs ring the task's alarm,
so they take effect at the virtual moment they happen; between steps the task yields to the
event loop, so commands land between steps.

Statuses and events follow QEMU 7.2 (``migration.c``):

* pre-copy: ``setup``, ``active``, [``pre-switchover``, ``device``], ``completed``; the
  source stops (STOPPED) before the stop-and-copy, whose duration is the downtime, and ends
  in ``postmigrate``; the destination ends paused (running if 'cont' came while it waited);
* post-copy: ``active``, ``postcopy-active``, ``completed``; a broken channel pauses both
  sides (``postcopy-paused``) until ``migrate-recover`` and ``migrate resume=true`` bring
  them back through ``postcopy-recover``;
* failure: ``failed`` (the source restarts its CPUs if it stopped them for the switchover;
  the destination process exits, as QEMU's incoming side does on error); cancel:
  ``cancelling``, ``cancelled``.
* TLS (``tls-creds`` set): the source needs a client credentials object and the
  destination a server one, and both sides must use TLS or neither; otherwise the source
  fails in ``setup`` with QEMU's words, and the destination waits on.

Pre-copy switches to post-copy at the first step after ``migrate-start-postcopy`` at which
more than the downtime limit's worth of data remains; a migration that converges first
completes as pre-copy. The switchover decision compares what remains with what the
rate-limited bandwidth moves within ``downtime-limit``; the stop-and-copy itself runs
without the rate limit, as QEMU's does.
A destination that lacks ``postcopy-ram`` fails the switch (the source stays stopped, as
QEMU leaves it, for the caller to resume).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from typing import TYPE_CHECKING

from migrator.drivers.base import (
    CommandFailed,
    MigrationProgress,
    MigrationStatus,
    RunState,
    TLSEndpoint,
)
from migrator.drivers.sim.memory import (
    PLAIN,
    AutoConverge,
    Encoding,
    Flow,
    MemoryCopy,
    ThrottleSettings,
    bandwidth,
    xbzrle_encoding,
)
from migrator.drivers.sim.network import Address, parse_uri
from migrator.drivers.sim.options import PAGE_SIZE
from migrator.drivers.sim.outgoing import WITH_STATISTICS, OutgoingMigration

if TYPE_CHECKING:
    from migrator.drivers.sim.guest import SimGuest
    from migrator.drivers.sim.world import SimWorld

#: Why the destination's loader gives up (QEMU's incoming side then exits).
LOAD_FAILED = "load of migration failed: Input/output error"
LOAD_INVALID = "load of migration failed: Invalid argument"
CONNECTION_RESET = "Unable to write to socket: Connection reset by peer"
NO_ROUTE = "Unable to write to socket: No route to host"
#: Why the source fails when the destination does not take its end of TLS (no credentials,
#: or TLS on one side only).
TLS_HANDSHAKE_FAILED = "TLS handshake failed: The TLS connection was non-properly terminated."
CRASHED = "crashed (injected fault)"

#: The shortest pre-copy pass (the dirty-bitmap sync takes time too), so that a guest that
#: can never converge (a downtime limit of 0) still moves time forward. With a limit of 1 ms
#: or more, only a tiny guest's first pass is ever that short.
MIN_PASS_MS = 1.0


class _Stage(enum.Enum):
    """Where the migration task is; finer than the status QEMU reports."""

    CONNECTING = enum.auto()
    PRECOPY = enum.auto()
    #: Stopped before switchover until ``migrate-continue``.
    SWITCHOVER = enum.auto()
    STOP_AND_COPY = enum.auto()
    POSTCOPY = enum.auto()
    POSTCOPY_PAUSED = enum.auto()
    RECOVERING = enum.auto()
    DONE = enum.auto()


_POSTCOPY_STAGES = frozenset({_Stage.POSTCOPY, _Stage.POSTCOPY_PAUSED, _Stage.RECOVERING})


class MigrationSession(OutgoingMigration):
    """One outgoing migration of ``source`` to another guest; created by ``migrate``."""

    def __init__(self, world: SimWorld, source: SimGuest) -> None:
        super().__init__(world, source)
        self.dest: SimGuest | None = None
        self._stage = _Stage.CONNECTING
        self._throttle = AutoConverge()
        self._switch_to = _Stage.STOP_AND_COPY
        # Inputs, looked at by the next step.
        self._postcopy = False
        self._continue = False
        self._target: Address | None = None
        self._resume_to: Address | None = None

    # -- inputs ------------------------------------------------------------------------------

    def start(self, uri: str) -> None:
        """The synchronous part of ``migrate``: status ``setup``, then the task.

        Raises:
            CommandFailed: a URI QEMU cannot use (the migration is then ``failed``).
        """
        self._set_status(MigrationStatus.SETUP)
        try:
            address = parse_uri(uri)
        except CommandFailed as exc:
            self._error = str(exc)
            self._set_status(MigrationStatus.FAILED)
            self._stage = _Stage.DONE
            raise
        self._target = address
        self._launch()

    def request_postcopy(self) -> None:
        self._postcopy = True
        self._alarm.ring()

    def proceed(self) -> None:
        """``migrate-continue``."""
        self._continue = True
        self._alarm.ring()

    def break_channel(self) -> None:
        """``migrate-pause``: shut the post-copy channel down."""
        self._broken = "migrate-pause"
        self._alarm.ring()

    def resume(self, uri: str) -> None:
        """``migrate resume=true``: reconnect a paused post-copy migration to ``uri``.

        Raises:
            CommandFailed: a URI QEMU cannot use.
        """
        self._resume_to = parse_uri(uri)
        self._alarm.ring()

    # -- statuses and faults -------------------------------------------------------------------

    def _set_dest_status(self, status: MigrationStatus) -> None:
        assert self.dest is not None
        self.dest.set_incoming_status(status)
        if self._world.faults.armed:
            self._fire(self.dest, status)

    def _enter_pass(self) -> None:
        assert self._copy is not None
        if not self._world.faults.armed:
            return
        number = self._copy.pass_number
        self._fire(self.source, MigrationStatus.ACTIVE, pass_number=number)
        if self.dest is not None:
            self._fire(self.dest, MigrationStatus.ACTIVE, pass_number=number)

    # -- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._slept = False
            await self._step()
            if self._stage is _Stage.DONE:
                return
            if not self._slept:
                await asyncio.sleep(0)

    async def _step(self) -> None:
        if not self.source.alive:
            self._source_lost()
            return
        if self._cancel:
            self._cancelled()
            return
        problem = self._channel_problem()
        if problem is not None:
            if self._stage in _POSTCOPY_STAGES:
                self._pause_postcopy()
            else:
                self._failed(problem)
            return
        if self._stalled:
            await self._wait()
            return
        match self._stage:
            case _Stage.CONNECTING:
                self._connect()
            case _Stage.PRECOPY:
                await self._precopy()
            case _Stage.SWITCHOVER:
                await self._switchover()
            case _Stage.STOP_AND_COPY | _Stage.POSTCOPY:
                await self._drain()
            case _Stage.POSTCOPY_PAUSED:
                await self._paused()
            case _Stage.RECOVERING:
                self._recovered()

    def _channel_problem(self) -> str | None:
        if self._stage is _Stage.POSTCOPY_PAUSED:
            return None
        if self._broken is not None:
            return self._broken
        dest = self.dest
        if dest is None:
            return None
        if not dest.alive:
            return CONNECTION_RESET
        if not self._world.network.reachable(self.source.host, dest.host):
            return NO_ROUTE
        return None

    def _connect(self) -> None:
        assert self._target is not None
        problem = self.source.tls_problem(TLSEndpoint.CLIENT)
        if problem is not None:
            self._failed(problem)
            return
        try:
            _peer, listener = self._world.network.connect(self.source.host, self._target)
        except CommandFailed as exc:
            self._failed(str(exc))
            return
        dest = listener.guest
        if listener.recovery or dest.incoming_status is not MigrationStatus.SETUP:
            self._failed(CONNECTION_RESET)
            return
        if not self._tls_agrees(dest):
            # The destination reports the failed handshake and goes on waiting.
            self._failed(TLS_HANDSHAKE_FAILED)
            return
        dest.close_listener()
        self.dest = dest
        dest.incoming = self
        if dest.setup_fault is not None:
            self._apply(dest.setup_fault, dest, status=MigrationStatus.SETUP)
            dest.setup_fault = None
        source = self.source
        workload = self._world.workload(source.name)
        nonzero = source.memory_bytes if workload.nonzero_bytes is None else workload.nonzero_bytes
        self._copy = MemoryCopy(
            memory_bytes=source.memory_bytes,
            nonzero_bytes=nonzero,
            working_set_bytes=workload.working_set_bytes,
            now_ms=self._world.now_ms,
        )
        self._set_dest_status(MigrationStatus.ACTIVE)
        self._setup_ms = self._world.now_ms - self._start_ms
        self._set_status(MigrationStatus.ACTIVE)
        self._enter_pass()
        self._stage = _Stage.PRECOPY
        mismatch = self._mismatch(dest)
        if mismatch is not None:
            self._failed(CONNECTION_RESET, dest_detail=mismatch)

    def _tls_agrees(self, dest: SimGuest) -> bool:
        """Whether both ends use TLS, with the credentials each needs, or neither does."""
        encrypted = bool(self.source.parameters["tls-creds"])
        return encrypted == bool(dest.parameters["tls-creds"]) and (
            dest.tls_problem(TLSEndpoint.SERVER) is None
        )

    def _mismatch(self, dest: SimGuest) -> str | None:
        """What makes the destination refuse the stream, if anything."""
        source = self.source
        if dest.memory_bytes != source.memory_bytes:
            return (
                f"Length mismatch: pc.ram: 0x{source.memory_bytes:x} in != "
                f"0x{dest.memory_bytes:x}: Invalid argument"
            )
        multifd = source.capabilities["multifd"]
        if multifd != dest.capabilities["multifd"] or (
            multifd and source.parameter("multifd-channels") != dest.parameter("multifd-channels")
        ):
            return LOAD_INVALID
        return None

    async def _precopy(self) -> None:
        copy = self._copy
        assert copy is not None
        if self._postcopy and copy.remaining_bytes >= self._threshold_bytes():
            self._postcopy = False
            self._switch_to_postcopy()
            return
        flow = self._precopy_flow()
        await self._transfer(flow, at_least_ms=MIN_PASS_MS)
        if copy.pending:
            return
        period = copy.sync(self._world.now_ms)
        if period is not None and self.source.capabilities["auto-converge"]:
            self._throttle.on_period(
                dirty_bytes=period.dirty_bytes,
                sent_bytes=period.sent_bytes,
                settings=self._throttle_settings(),
            )
        self._enter_pass()
        if copy.remaining_bytes <= self._threshold_bytes():
            self._begin_completion()

    def _threshold_bytes(self) -> float:
        """What the rate-limited bandwidth moves within ``downtime-limit``."""
        return self._precopy_bandwidth() / 1000 * self.source.parameter("downtime-limit")

    def _begin_completion(self) -> None:
        self._downtime_start_ms = self._world.now_ms
        self._vm_was_running = self.source.run_state is RunState.RUNNING
        self._stop_source()
        self._switch_to = _Stage.STOP_AND_COPY
        self._pause_or_switch()

    def _switch_to_postcopy(self) -> None:
        self._downtime_start_ms = self._world.now_ms
        pause = self.source.capabilities["pause-before-switchover"]
        if not pause:
            self._set_status(MigrationStatus.POSTCOPY_ACTIVE)
        self._stop_source()
        self._switch_to = _Stage.POSTCOPY
        self._pause_or_switch()

    def _stop_source(self) -> None:
        self._stopped_state = self.source.run_state
        self.source.stop_cpus(RunState.FINISH_MIGRATE)

    def _pause_or_switch(self) -> None:
        if self.source.capabilities["pause-before-switchover"]:
            self._stage = _Stage.SWITCHOVER
            self._set_status(MigrationStatus.PRE_SWITCHOVER)
        else:
            self._switch()

    async def _switchover(self) -> None:
        if not self._continue:
            await self._wait()
            return
        self._continue = False
        if self._switch_to is _Stage.STOP_AND_COPY:
            self._set_status(MigrationStatus.DEVICE)
        else:
            self._set_status(MigrationStatus.POSTCOPY_ACTIVE)
        self._switch()

    def _switch(self) -> None:
        if self._switch_to is _Stage.STOP_AND_COPY:
            self._stage = _Stage.STOP_AND_COPY
            return
        dest = self.dest
        assert dest is not None and self._copy is not None
        if not dest.capabilities["postcopy-ram"]:
            self._failed(CONNECTION_RESET, dest_detail=LOAD_INVALID)
            return
        self._copy.begin_postcopy()
        self._set_dest_status(MigrationStatus.POSTCOPY_ACTIVE)
        if dest.alive:
            self._start_destination(dest, after_postcopy=True)
        self._downtime_ms = self._world.now_ms - self._downtime_start_ms
        self._stage = _Stage.POSTCOPY

    async def _drain(self) -> None:
        copy = self._copy
        assert copy is not None
        flow = self._postcopy_flow() if self._stage is _Stage.POSTCOPY else self._final_flow()
        await self._transfer(flow)
        if not copy.pending:
            self._completed()

    async def _paused(self) -> None:
        target = self._resume_to
        if target is None:
            await self._wait()
            return
        self._resume_to = None
        dest = self.dest
        assert dest is not None
        try:
            _peer, listener = self._world.network.connect(self.source.host, target)
        except CommandFailed:
            return  # QEMU reports the error and stays paused for another try.
        if not (listener.recovery and listener.guest is dest):
            return
        dest.close_listener()
        self._set_status(MigrationStatus.POSTCOPY_RECOVER)
        self._set_dest_status(MigrationStatus.POSTCOPY_RECOVER)
        self._stage = _Stage.RECOVERING

    def _recovered(self) -> None:
        self._set_dest_status(MigrationStatus.POSTCOPY_ACTIVE)
        self._set_status(MigrationStatus.POSTCOPY_ACTIVE)
        self._stage = _Stage.POSTCOPY

    # -- flows -------------------------------------------------------------------------------

    def _bandwidth(self, *, channels: int, limit_bytes_s: int) -> float:
        dest = self.dest
        assert dest is not None
        link = self._world.network.link(self.source.host, dest.host)
        return bandwidth(
            link_bytes_s=link.bandwidth_bytes_s,
            stream_bytes_s=link.stream_bytes_s,
            channels=channels,
            limit_bytes_s=limit_bytes_s,
        )

    def _channels(self) -> int:
        source = self.source
        return source.parameter("multifd-channels") if source.capabilities["multifd"] else 1

    def _precopy_bandwidth(self) -> float:
        return self._bandwidth(
            channels=self._channels(), limit_bytes_s=self.source.parameter("max-bandwidth")
        )

    def _precopy_flow(self) -> Flow:
        source = self.source
        workload = self._world.workload(source.name)
        xbzrle = source.capabilities["xbzrle"]
        dirty = 0.0
        if source.run_state is RunState.RUNNING:
            dirty = self._throttle.scale(workload.dirty_rate_bytes_s)
        return Flow(
            wire_bytes_s=self._precopy_bandwidth(),
            encoding=self._encoding() if xbzrle else PLAIN,
            xbzrle=xbzrle,
            dirty_bytes_s=dirty,
        )

    def _final_flow(self) -> Flow:
        xbzrle = self.source.capabilities["xbzrle"]
        return Flow(
            wire_bytes_s=self._bandwidth(channels=self._channels(), limit_bytes_s=0),
            encoding=self._encoding() if xbzrle else PLAIN,
            xbzrle=xbzrle,
        )

    def _postcopy_flow(self) -> Flow:
        dest = self.dest
        assert dest is not None
        faults = 0.0
        if dest.run_state is RunState.RUNNING:
            faults = self._world.workload(dest.name).dirty_rate_bytes_s / PAGE_SIZE
        return Flow(
            wire_bytes_s=self._bandwidth(
                channels=1, limit_bytes_s=self.source.parameter("max-postcopy-bandwidth")
            ),
            fault_pages_s=faults,
        )

    def _encoding(self) -> Encoding:
        copy = self._copy
        assert copy is not None
        return xbzrle_encoding(
            pass_number=copy.pass_number,
            cache_bytes=self.source.parameter("xbzrle-cache-size"),
            working_set_bytes=copy.working_set_bytes,
            encoded_ratio=self._world.workload(self.source.name).xbzrle_ratio,
        )

    def _throttle_settings(self) -> ThrottleSettings:
        source = self.source
        tailslow = source.parameters["cpu-throttle-tailslow"]
        assert isinstance(tailslow, bool)
        return ThrottleSettings(
            initial=source.parameter("cpu-throttle-initial"),
            increment=source.parameter("cpu-throttle-increment"),
            maximum=source.parameter("max-cpu-throttle"),
            trigger_threshold=source.parameter("throttle-trigger-threshold"),
            tailslow=tailslow,
        )

    # -- endings -----------------------------------------------------------------------------

    def _completed(self) -> None:
        now = self._world.now_ms
        if self._switch_to is _Stage.STOP_AND_COPY:
            self._downtime_ms = now - self._downtime_start_ms
        self._total_ms = now - self._start_ms
        transfer_ms = self._total_ms - self._setup_ms
        assert self._copy is not None
        self._mbps = self._copy.transferred * 8 / transfer_ms / 1000 if transfer_ms else 0.0
        self._throttle.stop()
        dest = self.dest
        assert dest is not None
        if dest.alive:
            if self._switch_to is _Stage.STOP_AND_COPY:
                self._start_destination(dest, after_postcopy=False)
            self._set_dest_status(MigrationStatus.COMPLETED)
        self.source.run_state = RunState.POSTMIGRATE
        self._stage = _Stage.DONE
        self._set_status(MigrationStatus.COMPLETED)

    def _start_destination(self, dest: SimGuest, *, after_postcopy: bool) -> None:
        """The destination takes over the run state the source had (QEMU's global state):
        a guest that was running runs again only with autostart, else stays paused."""
        if after_postcopy or self._stopped_state is RunState.RUNNING:
            if dest.autostart:
                dest.start_cpus()
            else:
                dest.stop_cpus(RunState.PAUSED)
        else:
            dest.stop_cpus(self._stopped_state)

    def _failed(self, error: str, *, dest_detail: str = LOAD_FAILED) -> None:
        self._error = error
        self._stage = _Stage.DONE
        self._set_status(MigrationStatus.FAILED)
        self._restore_source()
        self._fail_destination(dest_detail)

    def _cancelled(self) -> None:
        was_postcopy = self._stage in _POSTCOPY_STAGES
        self._cancel = False
        self._stage = _Stage.DONE
        if was_postcopy:
            self._pause_destination()
        else:
            self._fail_destination(LOAD_FAILED)
        self._restore_source()
        self._set_status(MigrationStatus.CANCELLED)

    def _source_lost(self) -> None:
        """The source process died: the destination loses its stream."""
        if self._stage in _POSTCOPY_STAGES:
            self._pause_destination()
        else:
            self._fail_destination(LOAD_FAILED)
        self._stage = _Stage.DONE

    def _pause_postcopy(self) -> None:
        self._broken = None
        self._stage = _Stage.POSTCOPY_PAUSED
        self._mbps = 0.0
        if self.status is not MigrationStatus.POSTCOPY_PAUSED:
            self._set_status(MigrationStatus.POSTCOPY_PAUSED)
        self._pause_destination()

    def _restore_source(self) -> None:
        self._throttle.stop()
        super()._restore_source()

    def _fail_destination(self, detail: str) -> None:
        dest = self.dest
        if dest is None or not dest.alive or dest.incoming_status.finished:
            return
        self._set_dest_status(MigrationStatus.FAILED)
        dest.die(detail)

    def _pause_destination(self) -> None:
        dest = self.dest
        if (
            dest is not None
            and dest.alive
            and (dest.incoming_status is not MigrationStatus.POSTCOPY_PAUSED)
        ):
            self._set_dest_status(MigrationStatus.POSTCOPY_PAUSED)

    # -- statistics --------------------------------------------------------------------------

    def progress(self) -> MigrationProgress:
        """``query-migrate`` on the source, with the fields QEMU fills in for the status."""
        progress = super().progress()
        copy = self._copy
        if progress.status not in WITH_STATISTICS or copy is None:
            return progress
        completed = progress.status is MigrationStatus.COMPLETED
        bytes_per_ms = self._precopy_bandwidth() / 1000
        source = self.source
        xbzrle = source.capabilities["xbzrle"]
        return dataclasses.replace(
            progress,
            expected_downtime=None if completed else round(copy.remaining_bytes / bytes_per_ms),
            cpu_throttle_percentage=self._throttle.percentage,
            xbzrle_cache_size=source.parameter("xbzrle-cache-size") if xbzrle else 0,
            xbzrle_bytes=int(copy.xbzrle_bytes),
            xbzrle_pages=int(copy.xbzrle_pages),
            xbzrle_cache_miss=int(copy.xbzrle_misses),
            xbzrle_overflow=int(copy.xbzrle_overflows),
        )
