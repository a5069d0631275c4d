"""The :class:`~migrator.drivers.base.Instance` of a simulated guest: a monitor connection to
its process, which records every command in the world's trace and applies the faults
injected for calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import NoReturn

from migrator.drivers.base import (
    TLS_CREDENTIALS_ID,
    CommandFailed,
    DriverError,
    GraphicsEndpoint,
    Instance,
    InstanceEvent,
    InstanceGone,
    MigrationProgress,
    RunState,
    TLSEndpoint,
)
from migrator.drivers.sim.faults import FaultKind, FaultPoint, Operation
from migrator.drivers.sim.guest import SimGuest
from migrator.drivers.sim.savefile import INCOMING_URI, OUTGOING_URI

_NO_ARGUMENTS: Mapping[str, object] = {}


class SimInstance(Instance):
    """One simulated guest, as seen through its monitor. ``tls_dir`` is its host's
    certificate directory: only a name here, recorded in the trace."""

    def __init__(self, guest: SimGuest, *, tls_dir: Path | None = None) -> None:
        self.name = guest.name
        self._guest = guest
        self._tls_dir = tls_dir

    def __repr__(self) -> str:
        guest = self._guest
        return f"<SimInstance name={self.name!r} host={guest.host!r} state={guest.run_state.value}>"

    async def _command(
        self, operation: Operation, arguments: Mapping[str, object] = _NO_ARGUMENTS
    ) -> SimGuest:
        """Deliver a command: record it, then apply the faults injected for it.

        Raises:
            InstanceGone: the process is gone, or a fault crashed it.
            CommandFailed: a fault made the command fail.
        """
        guest = self._guest
        if not guest.alive:
            raise self._gone()
        world = guest.world
        world.record_command(guest.host, guest.name, operation=operation, arguments=arguments)
        if guest.monitor_stuck:
            await self._hang()
        if not world.faults.armed:
            return guest
        fault = world.faults.fire(
            host=guest.host, instance=guest.name, point=FaultPoint.on_call(operation)
        )
        if fault is None:
            return guest
        if fault.kind is FaultKind.COMMAND_FAILURE:
            raise CommandFailed(f"injected failure of '{operation.value}'", instance=self.name)
        if fault.kind is FaultKind.HANG:
            guest.monitor_stuck = True
            await self._hang()
        guest.strike(fault)
        if not guest.alive:
            raise self._gone()
        return guest

    async def _hang(self) -> NoReturn:
        """A command that never gets its answer: only the process's death ends the wait."""
        await self._guest.gone.wait()
        raise self._gone()

    def _gone(self) -> InstanceGone:
        return InstanceGone(
            f"domain '{self.name}' is not running on {self._guest.host}", instance=self.name
        )

    # -- Instance ----------------------------------------------------------------------------

    def listen(self) -> AbstractAsyncContextManager[AsyncIterator[InstanceEvent]]:
        return self._guest.hub.subscribe()

    @property
    def alive(self) -> bool:
        return self._guest.alive

    async def run_state(self) -> RunState:
        return (await self._command(Operation.RUN_STATE)).run_state

    async def pause(self) -> None:
        (await self._command(Operation.PAUSE)).pause()

    async def resume(self) -> None:
        (await self._command(Operation.RESUME)).resume()

    async def shutdown(self) -> None:
        (await self._command(Operation.SHUTDOWN)).shutdown()

    async def kill(self) -> None:
        guest = self._guest
        if guest.alive:
            guest.world.record_command(
                guest.host, guest.name, operation=Operation.KILL, arguments=_NO_ARGUMENTS
            )
            guest.die("killed")

    async def capability_states(self) -> Mapping[str, bool]:
        return dict((await self._command(Operation.SUPPORTED_CAPABILITIES)).capabilities)

    async def query_parameters(self) -> Mapping[str, object]:
        return dict((await self._command(Operation.QUERY_PARAMETERS)).parameters)

    async def set_capabilities(self, capabilities: list[dict[str, object]]) -> None:
        arguments = {"capabilities": capabilities}
        (await self._command(Operation.SET_CAPABILITIES, arguments)).set_capabilities(capabilities)

    async def set_parameters(self, parameters: Mapping[str, object]) -> None:
        (await self._command(Operation.SET_PARAMETERS, parameters)).set_parameters(parameters)

    async def add_tls_credentials(self, endpoint: TLSEndpoint) -> None:
        if self._tls_dir is None:
            raise DriverError(
                f"cannot encrypt the migration stream of domain '{self.name}': host "
                f"{self._guest.host} has no certificate directory (tls_dir)",
                instance=self.name,
            )
        arguments = {
            "qom-type": "tls-creds-x509",
            "id": TLS_CREDENTIALS_ID,
            "dir": str(self._tls_dir),
            "endpoint": endpoint.value,
            "verify-peer": True,
        }
        guest = await self._command(Operation.ADD_OBJECT, arguments)
        guest.add_tls_credentials(TLS_CREDENTIALS_ID, endpoint=endpoint)

    async def delete_tls_credentials(self) -> None:
        guest = await self._command(Operation.DELETE_OBJECT, {"id": TLS_CREDENTIALS_ID})
        if TLS_CREDENTIALS_ID in guest.tls_credentials:
            guest.delete_object(TLS_CREDENTIALS_ID)

    async def start_incoming(self, uri: str) -> str:
        return (await self._command(Operation.START_INCOMING, {"uri": uri})).start_incoming(uri)

    async def migrate(
        self, uri: str, *, resume: bool = False, own_connection: bool = False
    ) -> None:
        # The simulated link has no sockets to tune: both ways of connecting are one here.
        arguments: dict[str, object] = {"uri": uri}
        if resume:
            arguments["resume"] = True
        (await self._command(Operation.MIGRATE, arguments)).migrate(uri, resume=resume)

    async def migrate_to_fd(self, fd: int) -> None:
        (await self._command(Operation.MIGRATE, {"uri": OUTGOING_URI})).migrate_to_fd(fd)

    async def start_incoming_from_fd(self, fd: int) -> None:
        guest = await self._command(Operation.START_INCOMING, {"uri": INCOMING_URI})
        guest.start_incoming_from_fd(fd)

    async def cancel_migration(self) -> None:
        (await self._command(Operation.CANCEL_MIGRATION)).cancel_migration()

    async def continue_migration(self) -> None:
        arguments = {"state": "pre-switchover"}
        (await self._command(Operation.CONTINUE_MIGRATION, arguments)).continue_migration()

    async def start_postcopy(self) -> None:
        (await self._command(Operation.START_POSTCOPY)).start_postcopy()

    async def pause_postcopy(self) -> None:
        (await self._command(Operation.PAUSE_POSTCOPY)).pause_postcopy()

    async def recover_postcopy(self, uri: str) -> str:
        guest = await self._command(Operation.RECOVER_POSTCOPY, {"uri": uri})
        return guest.recover_postcopy(uri)

    async def query_migration(self) -> MigrationProgress:
        return (await self._command(Operation.QUERY_MIGRATION)).query_migration()

    async def graphics(self) -> list[GraphicsEndpoint]:
        return list((await self._command(Operation.GRAPHICS)).displays)

    async def relocate_graphics_clients(self, endpoint: GraphicsEndpoint) -> None:
        arguments = {
            "protocol": endpoint.type,
            "hostname": endpoint.listen,
            "port": endpoint.port,
            "tls-port": endpoint.tls_port,
        }
        guest = await self._command(Operation.RELOCATE_GRAPHICS, arguments)
        guest.relocate_graphics_clients(endpoint)
