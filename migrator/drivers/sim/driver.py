"""The ``sim`` driver: one host of a :class:`~migrator.drivers.sim.world.SimWorld`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import params
from migrator.drivers.base import CommandFailed, Driver, DriverError, InstanceGone, StartMode
from migrator.drivers.sim.faults import FaultKind, FaultPoint, Operation
from migrator.drivers.sim.guest import SimGuest
from migrator.drivers.sim.instance import SimInstance
from migrator.drivers.sim.options import CAPABILITIES

if TYPE_CHECKING:
    from migrator.domain import Domain
    from migrator.drivers.sim.world import SimWorld


class SimDriver(Driver):
    """Starts simulated guests on ``host`` of ``world`` (which learns the host).

    Like a QEMU driver, it turns on the capabilities a QEMU keeps for its whole life
    (``events``) as each guest starts. Instances stay usable after :meth:`close`.
    ``tls_dir`` stands for the host's certificate directory: with one, its guests can
    create TLS credentials (nothing is read from it).
    """

    name = "sim"

    def __init__(
        self, world: SimWorld, host: str = "host-a", *, tls_dir: Path | None = None
    ) -> None:
        world.add_host(host)
        self.world = world
        self.host = host
        self.tls_dir = tls_dir
        self._closed = False
        self._startup_capabilities = params.startup_capabilities(supported=CAPABILITIES)

    def __repr__(self) -> str:
        return f"<SimDriver host={self.host!r}>"

    async def start(self, domain: Domain, *, mode: StartMode) -> SimInstance:
        """Start ``domain``'s simulated QEMU.

        Raises:
            DriverError: the driver is closed, or the domain already runs on this host.
            CommandFailed: an injected start failure, or a display port already taken.
            InstanceGone: an injected crash during start.
        """
        self._check_open()
        world = self.world
        world.record_command(
            self.host,
            domain.name,
            operation=Operation.START,
            arguments={"mode": mode.value, "memory_kib": domain.memory_kib},
        )
        if world.faults.armed:
            await self._start_faults(domain.name)
        if world.guest(self.host, domain.name) is not None:
            raise DriverError(
                f"domain '{domain.name}' is already running on {self.host}",
                instance=domain.name,
            )
        guest = SimGuest(world, host=self.host, domain=domain, mode=mode)
        world.add_guest(guest)
        startup = self._startup_capabilities
        world.record_command(
            self.host,
            domain.name,
            operation=Operation.SET_CAPABILITIES,
            arguments={"capabilities": startup},
        )
        guest.set_capabilities(startup)
        return SimInstance(guest, tls_dir=self.tls_dir)

    async def _start_faults(self, name: str) -> None:
        point = FaultPoint.on_call(Operation.START)
        fault = self.world.faults.fire(host=self.host, instance=name, point=point)
        if fault is None:
            return
        match fault.kind:
            case FaultKind.COMMAND_FAILURE:
                raise CommandFailed("injected failure of 'launch'", instance=name)
            case FaultKind.CRASH:
                raise InstanceGone(f"QEMU for domain '{name}' exited while starting", instance=name)
            case FaultKind.HANG:
                await asyncio.get_running_loop().create_future()
            case FaultKind.LINK_DOWN:
                self.world.isolate(self.host, duration_ms=fault.duration_ms)

    async def attach(self, domain: Domain) -> SimInstance | None:
        """Raises: DriverError: the driver is closed."""
        self._check_open()
        guest = self.world.guest(self.host, domain.name)
        return None if guest is None else SimInstance(guest, tls_dir=self.tls_dir)

    async def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise DriverError(f"the sim driver of {self.host} is closed")
