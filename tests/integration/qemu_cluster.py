"""Two in-process hosts on this machine, each with its own qemu driver, and the test guest's
heartbeat followed on both: the shape of ``tests/runtime/cluster.py`` on real QEMU.

Both hosts are this machine, so a TCP port named in the guest's definition (which migrates
with the guest) cannot serve the serial port on both: :class:`HeartbeatDriver` gives each
QEMU it starts its own loopback port for COM1, as each of two real hosts would have the port
to itself, and attaches the heartbeat monitor to it before the guest's first instruction.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from cookies import generate_signing_key
from migrator.demo.guest import LOOPBACK, guest_definition, serial_on
from migrator.domain import Domain
from migrator.drivers.base import InstanceGone, MigrationProgress, StartMode
from migrator.drivers.qemu import Lifecycle, QEMUDriver, QEMUInstance
from migrator.drivers.qemu.host import free_tcp_port
from migrator.runtime.destination import DestinationSide
from migrator.runtime.host import Host
from migrator.runtime.protocol import run_migration
from migrator.runtime.source import SourceSide
from migrator.testguest import probe
from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.kernel import build_kernel
from migrator.testguest.memcheck import MemoryCheck
from migrator.testguest.vm import guest_memory_mib
from params import MigrationFlag

LIVE_P2P = MigrationFlag.LIVE | MigrationFlag.PEER2PEER
#: How often a test samples QEMU's migration progress.
SAMPLE_INTERVAL_S = 0.05


@dataclasses.dataclass(frozen=True)
class GuestShape:
    """A test guest: its RAM, and the working set it rewrites at a given pace."""

    memory_mib: int
    working_set_mib: int = 0
    dirty_rate_mib_s: int = 0

    def __post_init__(self) -> None:
        if self.memory_mib < guest_memory_mib(self.working_set_mib):
            raise ValueError(f"{self.memory_mib} MiB of RAM cannot hold {self}")


def guest_domain(name: str, *, kernel: Path, memory_mib: int) -> Domain:
    """A q35 guest booting the test-guest ``kernel``, COM1 on a loopback TCP port (which
    each host's :class:`HeartbeatDriver` replaces with one of its own)."""
    return guest_definition(
        name, kernel=kernel, memory_mib=memory_mib, serial_port=free_tcp_port(LOOPBACK)
    )


class HeartbeatDriver(QEMUDriver):
    """The qemu driver of one of two hosts on this machine.

    Every QEMU it starts gets a fresh loopback port for the host end of COM1, whatever port
    the definition names; the heartbeat monitor follows it as source ``host_name``
    (``host_name.N`` for the N-th later start on this host) from before the start returns.
    Start guests paused or incoming, so that no heartbeat goes out before that.
    """

    def __init__(self, run_dir: Path, *, host_name: str, monitor: HeartbeatMonitor) -> None:
        super().__init__(run_dir)
        self.host_name = host_name
        self.monitor = monitor
        #: Every instance started here, oldest first.
        self.started: list[QEMUInstance] = []
        #: The wall time of each start, in seconds, from the command line to QMP set up.
        self.start_seconds: list[float] = []
        #: The heartbeat source name of the latest QEMU of each guest.
        self.serial_source: dict[str, str] = {}

    async def start(self, domain: Domain, *, mode: StartMode) -> QEMUInstance:
        port = free_tcp_port(LOOPBACK)
        local = dataclasses.replace(
            domain, devices=dataclasses.replace(domain.devices, serials=(serial_on(port),))
        )
        began = time.perf_counter()
        instance = await super().start(local, mode=mode)
        self.start_seconds.append(time.perf_counter() - began)
        self.started.append(instance)
        name = self.host_name
        if len(self.started) > 1:
            name = f"{name}.{len(self.started) - 1}"
        try:
            await self.monitor.attach((LOOPBACK, port), name=name)
        except BaseException:
            await instance.kill()
            raise
        self.serial_source[domain.name] = name
        return instance

    async def kill_all(self) -> None:
        """Kill every QEMU started here that still runs (followed or detached), and close
        the driver."""
        for instance in self.started:
            if instance.lifecycle is Lifecycle.RUNNING:
                await instance.kill()
            elif instance.lifecycle is Lifecycle.DETACHED:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(instance.pid, signal.SIGKILL)
        await self.close()


class QemuCluster:
    """Host ``a`` and host ``b`` on this machine, trusting each other, with one heartbeat
    monitor over every QEMU they start; guests start on ``a`` and migrate to ``b``.

    Use as an async context manager: on the way out every QEMU is killed, every migration
    task still running is cancelled, and the monitor is closed.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.monitor = HeartbeatMonitor()
        self.a = self._host("host-a")
        self.b = self._host("host-b")
        self.a.trust(self.b)
        self.source = SourceSide(self.a)
        self.destination = DestinationSide(self.b)
        self._tasks: list[asyncio.Task[None]] = []

    def _host(self, name: str) -> Host:
        driver = HeartbeatDriver(self.directory / name, host_name=name, monitor=self.monitor)
        return Host(
            name=name,
            uuid=str(uuid.uuid4()),
            driver=driver,
            signing_key=generate_signing_key(),
            incoming_address=LOOPBACK,
        )

    async def __aenter__(self) -> QemuCluster:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        async with contextlib.AsyncExitStack() as stack:  # each step runs, whatever the others do
            stack.push_async_callback(self.monitor.close)
            for host in (self.a, self.b):
                stack.push_async_callback(self.driver(host).kill_all)

    @staticmethod
    def driver(host: Host) -> HeartbeatDriver:
        driver = host.driver
        assert isinstance(driver, HeartbeatDriver)
        return driver

    @staticmethod
    def instance(host: Host, name: str) -> QEMUInstance:
        """The QEMU of guest ``name`` running on ``host``."""
        instance = host.guest(name).instance
        assert isinstance(instance, QEMUInstance)
        return instance

    def serial_source(self, host: Host, name: str) -> str:
        """The heartbeat source name of the latest QEMU of guest ``name`` on ``host``."""
        return self.driver(host).serial_source[name]

    async def start(self, name: str, shape: GuestShape, *, warm: bool = False) -> QEMUInstance:
        """Define and start guest ``name`` on ``a``; with ``warm``, return only once it has
        rewritten its whole working set (see :func:`probe.until_rewritten`)."""
        kernel = self.directory / f"{name}.kernel"
        kernel.write_bytes(
            build_kernel(
                working_set_mib=shape.working_set_mib, dirty_rate_mib_s=shape.dirty_rate_mib_s
            )
        )
        domain = guest_domain(name, kernel=kernel, memory_mib=shape.memory_mib)
        self.a.define(domain)
        instance = await self.driver(self.a).start(domain, mode=StartMode.PAUSED)
        await instance.resume()
        self.a.add_guest(domain, instance)
        if warm:
            await probe.until_rewritten(
                instance.execute,
                self.directory / f"{name}.status",
                working_set_mib=shape.working_set_mib,
            )
        return instance

    async def migrate(
        self,
        name: str,
        *,
        flags: MigrationFlag = LIVE_P2P,
        typed: Mapping[str, object] | None = None,
    ) -> None:
        """Migrate ``name`` from ``a`` to ``b`` through the five phases."""
        await run_migration(
            self.source,
            self.destination,
            name,
            flags=flags,
            typed=dict(typed or {}),
            destination_typed={},
        )

    def migrate_in_background(
        self,
        name: str,
        *,
        flags: MigrationFlag = LIVE_P2P,
        typed: Mapping[str, object] | None = None,
    ) -> asyncio.Task[None]:
        """:meth:`migrate` as a task, cancelled when the cluster closes."""
        task = asyncio.create_task(self.migrate(name, flags=flags, typed=typed))
        self._tasks.append(task)
        return task

    async def memory_check(self, instance: QEMUInstance, name: str) -> MemoryCheck:
        """Check the guest's memory against its own status record (see :mod:`probe`)."""
        return await probe.check_memory(instance.execute, self.directory / f"{name}.dump")


async def sample_progress(
    instance: QEMUInstance, until: Callable[[MigrationProgress], bool]
) -> list[MigrationProgress]:
    """Sample the source's ``query-migrate`` until ``until`` holds for a sample, or QEMU is
    gone (Confirm kills the source of a completed migration); every sample, in order."""
    samples: list[MigrationProgress] = []
    while True:
        try:
            sample = await instance.query_migration()
        except InstanceGone:
            return samples
        samples.append(sample)
        if until(sample):
            return samples
        await asyncio.sleep(SAMPLE_INTERVAL_S)


def pid_exists(pid: int) -> bool:
    """Whether a process (or an unreaped zombie) with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
