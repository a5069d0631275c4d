"""Simulated migrations into and out of a file descriptor: ``migrate uri=fd:`` and
``migrate-incoming uri=fd:``, what save and restore run on.

The stream the simulation writes is short: QEMU's ``QEVM`` magic and version, then one
section with the guest's RAM size and the run state it had when it stopped. What the
transfer takes in virtual time follows the memory model at the disk's bandwidth: pre-copy
passes while the guest runs (a save pauses it first, so there is one), then the stop-and-
copy. The bytes really go through the descriptor, so that what the caller does with them
(a compressor, a file, a full disk) counts as it does with QEMU:

* writing: a write error fails the migration with QEMU's message (``Unable to write to
  file: No space left on device``); ``postcopy-ram`` or ``return-path`` fail it at setup,
  since a file has no return path;
* loading: a stream that is not one (``Invalid argument``), that ends early (``Input/output
  error``) or that holds another RAM size (QEMU's ``Length mismatch``) fails the load, and
  the process exits, as QEMU's incoming side does.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from typing import TYPE_CHECKING, Final

from migrator.drivers.base import MigrationStatus, RunState
from migrator.drivers.sim.memory import Flow, MemoryCopy, bandwidth
from migrator.drivers.sim.migration import LOAD_FAILED, LOAD_INVALID, MIN_PASS_MS
from migrator.drivers.sim.outgoing import OutgoingMigration

if TYPE_CHECKING:
    from migrator.drivers.sim.guest import SimGuest
    from migrator.drivers.sim.world import SimWorld

#: The fd names that the trace shows, as the qemu driver names them for QEMU.
OUTGOING_URI: Final = "fd:migrate-out"
INCOMING_URI: Final = "fd:migrate-in"

#: What a simulated disk reads and writes per second.
DISK_BYTES_S: Final = 1_000_000_000

#: QEMU's stream header: ``QEVM`` and stream version 3.
STREAM_MAGIC: Final = b"QEVM\x00\x00\x00\x03"
_SECTION: Final = b"SIM1"
_LENGTH: Final = struct.Struct(">I")
#: A simulated stream is far shorter; reading stops here.
MAX_STREAM_BYTES: Final = 1 << 20

NO_RETURN_PATH: Final = "Unable to open return-path for postcopy"


def encode_stream(*, memory_bytes: int, run_state: RunState) -> bytes:
    """The simulated stream of a guest with ``memory_bytes`` of RAM stopped in ``run_state``."""
    body = json.dumps({"memory_bytes": memory_bytes, "run_state": run_state.value}).encode()
    return STREAM_MAGIC + _SECTION + _LENGTH.pack(len(body)) + body


class _LoadError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def decode_stream(data: bytes) -> tuple[int, RunState]:
    """The RAM size and run state in a simulated stream.

    Raises:
        _LoadError: not a simulated stream, or one cut short.
    """
    head = STREAM_MAGIC + _SECTION
    if not head.startswith(data[: len(head)]) or len(data) > MAX_STREAM_BYTES:
        raise _LoadError(LOAD_INVALID)
    body_at = len(head) + _LENGTH.size
    if len(data) < body_at:
        raise _LoadError(LOAD_FAILED)
    (length,) = _LENGTH.unpack_from(data, len(head))
    body = data[body_at:]
    if len(body) != length:
        raise _LoadError(LOAD_FAILED if len(body) < length else LOAD_INVALID)
    try:
        fields = json.loads(body)
        return int(fields["memory_bytes"]), RunState(fields["run_state"])
    except (ValueError, KeyError, TypeError):
        raise _LoadError(LOAD_INVALID) from None


def _read_all(fd: int) -> bytes:
    """Everything left in ``fd``, up to one byte past :data:`MAX_STREAM_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_STREAM_BYTES:
        chunk = os.read(fd, MAX_STREAM_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class FileSave(OutgoingMigration):
    """One outgoing migration of ``source`` into a file descriptor; created by
    ``migrate_to_fd``, which hands it its own copy of the descriptor."""

    def __init__(self, world: SimWorld, source: SimGuest, fd: int) -> None:
        super().__init__(world, source)
        self._fd = os.dup(fd)

    def start(self) -> None:
        """The synchronous part of ``migrate``: status ``setup``, then the task."""
        self._set_status(MigrationStatus.SETUP)
        self._launch()

    def _ended(self, task: asyncio.Task[None]) -> None:
        os.close(self._fd)
        super()._ended(task)

    # -- the task ----------------------------------------------------------------------------

    async def _run(self) -> None:
        source = self.source
        if source.capabilities["postcopy-ram"] or source.capabilities["return-path"]:
            self._failed(NO_RETURN_PATH)
            return
        workload = self._world.workload(source.name)
        nonzero = source.memory_bytes if workload.nonzero_bytes is None else workload.nonzero_bytes
        copy = MemoryCopy(
            memory_bytes=source.memory_bytes,
            nonzero_bytes=nonzero,
            working_set_bytes=workload.working_set_bytes,
            now_ms=self._world.now_ms,
        )
        self._copy = copy
        self._setup_ms = self._world.now_ms - self._start_ms
        self._set_status(MigrationStatus.ACTIVE)
        while True:
            if await self._interrupted():
                return
            await self._transfer(self._flow_now(limited=True), at_least_ms=MIN_PASS_MS)
            if copy.pending:
                continue  # an input came first: look again
            copy.sync(self._world.now_ms)
            if copy.remaining_bytes <= self._threshold_bytes():
                break
        self._downtime_start_ms = self._world.now_ms
        self._stopped_state = source.run_state
        self._vm_was_running = source.run_state is RunState.RUNNING
        source.stop_cpus(RunState.FINISH_MIGRATE)
        while copy.pending:
            if await self._interrupted():
                return
            await self._transfer(self._flow_now(limited=False))
        if not await self._interrupted():
            self._write_stream()

    async def _interrupted(self) -> bool:
        """Whether the migration has ended (process gone, cancelled, failed); a stalled one
        waits here for an input."""
        while True:
            if not self.source.alive:
                return True
            if self._cancel:
                self._restore_source()
                self._set_status(MigrationStatus.CANCELLED)
                return True
            if self._broken is not None:
                self._failed(self._broken)
                return True
            if not self._stalled:
                return False
            await self._wait()

    def _flow_now(self, *, limited: bool) -> Flow:
        source = self.source
        dirty = 0.0
        if source.run_state is RunState.RUNNING:
            dirty = self._world.workload(source.name).dirty_rate_bytes_s
        limit = source.parameter("max-bandwidth") if limited else 0
        wire = bandwidth(
            link_bytes_s=DISK_BYTES_S, stream_bytes_s=None, channels=1, limit_bytes_s=limit
        )
        return Flow(wire_bytes_s=wire, dirty_bytes_s=dirty)

    def _threshold_bytes(self) -> float:
        """What the disk takes within ``downtime-limit``."""
        per_ms = self._flow_now(limited=True).wire_bytes_s / 1000
        return per_ms * self.source.parameter("downtime-limit")

    # -- endings -----------------------------------------------------------------------------

    def _write_stream(self) -> None:
        stream = encode_stream(memory_bytes=self.source.memory_bytes, run_state=self._stopped_state)
        try:
            view = memoryview(stream)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._failed(f"Unable to write to file: {exc.strerror or exc}")
            return
        now = self._world.now_ms
        self._downtime_ms = now - self._downtime_start_ms
        self._total_ms = now - self._start_ms
        assert self._copy is not None
        transfer_ms = self._total_ms - self._setup_ms
        self._mbps = self._copy.transferred * 8 / transfer_ms / 1000 if transfer_ms else 0.0
        self.source.run_state = RunState.POSTMIGRATE
        self._set_status(MigrationStatus.COMPLETED)

    def _failed(self, error: str) -> None:
        self._error = error
        self._set_status(MigrationStatus.FAILED)
        self._restore_source()


class FileLoad:
    """One incoming migration of ``guest`` from a file descriptor; created by
    ``start_incoming_from_fd``, which hands it its own copy of the descriptor."""

    def __init__(self, world: SimWorld, guest: SimGuest, fd: int) -> None:
        self._world = world
        self.guest = guest
        self._fd = os.dup(fd)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        # Read before joining the clock: a pipe's writer runs in wall time.
        try:
            data = await asyncio.to_thread(_read_all, self._fd)
        except OSError:
            data = b""
        finally:
            os.close(self._fd)
        guest = self.guest
        if not guest.alive:
            return
        try:
            memory_bytes, run_state = decode_stream(data)
        except _LoadError as exc:
            self._fail(exc.detail)
            return
        guest.set_incoming_status(MigrationStatus.ACTIVE)
        if memory_bytes != guest.memory_bytes:
            self._fail(
                f"Length mismatch: pc.ram: 0x{memory_bytes:x} in != "
                f"0x{guest.memory_bytes:x}: Invalid argument"
            )
            return
        workload = self._world.workload(guest.name)
        nonzero = memory_bytes if workload.nonzero_bytes is None else workload.nonzero_bytes
        with self._world.clock.actor():
            await self._world.clock.sleep(nonzero / DISK_BYTES_S * 1000)
        if self._killed():
            return
        if run_state is RunState.RUNNING:
            if guest.autostart:
                guest.start_cpus()
            else:
                guest.stop_cpus(RunState.PAUSED)
        else:
            guest.stop_cpus(run_state)
        guest.set_incoming_status(MigrationStatus.COMPLETED)

    def _killed(self) -> bool:
        """Whether the process ended while the stream was loading."""
        return not self.guest.alive

    def _fail(self, detail: str) -> None:
        guest = self.guest
        guest.set_incoming_status(MigrationStatus.FAILED)
        guest.die(detail)
