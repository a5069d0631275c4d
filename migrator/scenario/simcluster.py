"""Two in-process hosts on the simulator: the cluster scenarios replay on with ``--driver
sim``, and the one the runtime's own tests use.

Both hosts live in one :class:`~migrator.drivers.sim.SimWorld`, so time is virtual: an hour
of a migration that never converges costs no wall time, and two runs of a scenario give the
same trace. After every trace record the cluster checks that the guest runs on at most one
host.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable

from migrator.domain import Domain
from migrator.domain.devices import Devices
from migrator.domain.model import DomainType
from migrator.drivers.base import RunState, StartMode
from migrator.drivers.sim import DEFAULT_LINK, Link, SimDriver, SimWorld, Workload
from migrator.drivers.sim.migration import CRASHED
from migrator.scenario.cluster import Check
from migrator.scenario.inprocess_cluster import InProcessCluster
from migrator.scenario.model import GuestSpec, GuestStart, GuestState, HostsSpec
from migrator.scenario.trace import TraceRecord

MiB = 1024 * 1024

#: Seconds a post-copy reconnection may take in real time: on the simulator it happens at
#: once or never.
RESUME_TIMEOUT_S = 5.0

#: Virtual time given to what a step set off (a QEMU noticing its peer is gone) before the
#: outcome is looked at.
SETTLE_S = 1.0

#: How many moments of the guest running twice are kept (the first one is what matters).
MAX_VIOLATIONS = 5

#: The simulated clock jumps to the next thing the simulation knows will happen as soon as
#: everything that acts in it sleeps, even while the engine still has work queued. Waking
#: this often keeps the engine's reactions within a few milliseconds of virtual time, as
#: on real hosts, instead of "whenever the next pass ends".
TICK_MS = 5.0


def make_domain(name: str = "vm", *, memory_mib: int = 64) -> Domain:
    """A minimal KVM guest with ``memory_mib`` of RAM and no devices."""
    return Domain(
        type=DomainType.KVM,
        name=name,
        uuid=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        memory_kib=memory_mib * 1024,
        devices=Devices(),
    )


class SimCluster(InProcessCluster):
    """Hosts ``hosts`` (source first) in one simulated world, their daemons in-process."""

    def __init__(
        self,
        *,
        hosts: tuple[str, str] = ("host-a", "host-b"),
        link: Link = DEFAULT_LINK,
        resume_timeout: float = RESUME_TIMEOUT_S,
        same_uuid: bool = False,
        tick_ms: float | None = None,
    ) -> None:
        """``tick_ms``: wake the clock this often (see :data:`TICK_MS`); None leaves it to
        the simulation alone."""
        self.world = SimWorld(default_link=link, record_trace=False)
        self._tick_ms = tick_ms
        self._ticker: asyncio.Task[None] | None = None
        super().__init__(
            {name: SimDriver(self.world, name) for name in hosts},
            resume_timeout=resume_timeout,
            same_uuid=same_uuid,
            clock=(self.world.clock.join, self.world.clock.leave),
        )
        self._violations: list[str] = []
        self.trace.listeners.append(self._check_one_runs)

    @classmethod
    def for_hosts(cls, spec: HostsSpec) -> SimCluster:
        """The cluster a scenario's ``[hosts]`` describe (the link's delay is not
        simulated: only its rate)."""
        rate = spec.rate_mib_s
        link = DEFAULT_LINK if rate is None else Link(bandwidth_bytes_s=int(rate * MiB))
        return cls(
            hosts=(spec.source, spec.destination),
            link=link,
            same_uuid=spec.same_uuid,
            tick_ms=TICK_MS,
        )

    # -- the guest -------------------------------------------------------------------------

    async def start_guest(self, guest: GuestSpec, *, host: str) -> None:
        workload = Workload(
            working_set_bytes=guest.working_set_mib * MiB,
            dirty_rate_bytes_s=guest.dirty_rate_mib_s * MiB,
        )
        domain = make_domain(guest.name, memory_mib=guest.memory_mib)
        if guest.start is GuestStart.SHUTOFF:
            self._start_ticking()
            self.names.add(guest.name)
            self.host(host).define(domain)
            return
        await self.start(domain, host=host, workload=workload, persistent=guest.persistent)
        if guest.start is GuestStart.PAUSED:
            await self.host(host).guest(guest.name).instance.pause()

    async def start(
        self,
        domain: Domain,
        *,
        host: str | None = None,
        workload: Workload | None = None,
        persistent: bool = True,
    ) -> None:
        """Start ``domain`` running on ``host`` (the first host by default)."""
        self._start_ticking()
        target = self.host(host or self.hosts[0])
        if workload is not None:
            self.world.set_workload(domain.name, workload)
        if persistent:
            target.define(domain)
        instance = await target.driver.start(domain, mode=StartMode.RUNNING)
        target.add_guest(domain, instance)

    def running_on(self, name: str) -> list[str]:
        """The hosts whose instance of ``name`` has running CPUs."""
        return [
            host
            for host in self.hosts
            if (guest := self.world.guest(host, name)) is not None
            and guest.alive
            and guest.run_state is RunState.RUNNING
        ]

    def alive_on(self, name: str) -> list[str]:
        """The hosts with a QEMU process of ``name``."""
        return [
            host
            for host in self.hosts
            if (guest := self.world.guest(host, name)) is not None and guest.alive
        ]

    def _start_ticking(self) -> None:
        if self._tick_ms is not None and self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick(self._tick_ms))

    async def _tick(self, period_ms: float) -> None:
        while True:
            await self.world.sleep(period_ms)

    # -- faults ------------------------------------------------------------------------------

    async def crash_qemu(self, host: str, name: str) -> None:
        guest = self.world.guest(host, name)
        if guest is not None:
            guest.die(CRASHED)

    async def partition(self, seconds: float) -> None:
        self.world.isolate(self.hosts[0], duration_ms=seconds * 1000)
        self._partitioned(seconds)

    async def set_link(self, *, rate_mib_s: float, delay_ms: float) -> None:
        first, second = self.hosts
        self.world.set_link(first, second, link=Link(bandwidth_bytes_s=int(rate_mib_s * MiB)))

    async def sleep(self, seconds: float) -> None:
        await self.world.sleep(seconds * 1000)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        self.world.clock.call_later(seconds * 1000, callback)

    # -- what is there ---------------------------------------------------------------------

    async def guest_state(self, host: str, name: str) -> GuestState:
        if host not in self.alive_on(name):
            return GuestState.ABSENT
        return GuestState.RUNNING if host in self.running_on(name) else GuestState.PAUSED

    async def leftovers(self, name: str) -> list[str]:
        found = []
        for host in self.hosts:
            daemon = self.daemons[host]
            if not daemon.alive or daemon.host.status.names():
                continue
            if host in self.alive_on(name) and name not in daemon.host.guests:
                found.append(f"{host}: a QEMU process of '{name}' its daemon does not know")
            ports = sorted(self.world.network.ports_in_use(host))
            if ports:
                found.append(f"{host}: ports still bound: {', '.join(map(str, ports))}")
        return found

    def _check_one_runs(self, record: TraceRecord) -> None:
        self._check_at(f"at '{record.line}'")

    def _check_at(self, moment: str) -> None:
        if len(self._violations) >= MAX_VIOLATIONS:
            return
        for name in sorted(self.names):
            running = self.running_on(name)
            if len(running) > 1:
                self._violations.append(
                    f"'{name}' ran on {' and '.join(running)} at once ({moment})"
                )

    async def violations(self) -> list[str]:
        self._check_at("at the end")
        return list(self._violations)

    @property
    def checks(self) -> frozenset[Check]:
        return frozenset()

    async def check(self, check: Check, name: str) -> str | None:
        return f"the simulator has no guest to make the {check.value} check on"

    @property
    def elapsed_s(self) -> float:
        return self.world.now_ms / 1000

    async def settle(self) -> None:
        await super().settle()
        await self.sleep(SETTLE_S)
        await super().settle()

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for name in self.names:
            for host in self.alive_on(name):
                guest = self.world.guest(host, name)
                if guest is not None:
                    guest.die("the cluster closed")
        await super().close()
