"""One simulated QEMU process: its run state, migration settings, incoming side and events,
with QEMU's rules for each command. Commands raise ``CommandFailed`` with QEMU's message."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migrator.drivers.base import (
    CommandFailed,
    EventKind,
    GraphicsEndpoint,
    InstanceEvent,
    MigrationProgress,
    MigrationStatus,
    RunState,
    StartMode,
    TLSEndpoint,
)
from migrator.drivers.events import EventHub
from migrator.drivers.sim import options
from migrator.drivers.sim.faults import Fault, FaultKind, FaultPoint
from migrator.drivers.sim.migration import CRASHED, MigrationSession
from migrator.drivers.sim.network import Address, Listener, parse_uri
from migrator.drivers.sim.savefile import FileLoad, FileSave

if TYPE_CHECKING:
    from migrator.domain import Domain
    from migrator.domain.devices import Graphics
    from migrator.drivers.sim.world import SimWorld

_START_STATES = {
    StartMode.RUNNING: RunState.RUNNING,
    # Started with -S: QEMU waits in prelaunch until the first 'cont'.
    StartMode.PAUSED: RunState.PRELAUNCH,
    StartMode.INCOMING: RunState.INMIGRATE,
}

#: Run states that only a reset leaves (QEMU's runstate_needs_reset).
_NEEDS_RESET = frozenset({RunState.SHUTDOWN, RunState.INTERNAL_ERROR, RunState.GUEST_PANICKED})

_DEFAULT_DISPLAY_LISTEN = "127.0.0.1"

# Events are frozen records: one of each is enough.
_MIGRATION_EVENTS = {s: InstanceEvent(EventKind.MIGRATION, status=s) for s in MigrationStatus}
_STOPPED = InstanceEvent(EventKind.STOPPED)
_RESUMED = InstanceEvent(EventKind.RESUMED)
_SHUTDOWN = InstanceEvent(EventKind.SHUTDOWN)


class SimGuest:
    """A simulated QEMU process running ``domain`` on ``host``."""

    def __init__(self, world: SimWorld, *, host: str, domain: Domain, mode: StartMode) -> None:
        self.world = world
        self.host = host
        self.name = domain.name
        self.memory_bytes = domain.memory_kib * 1024
        self.run_state = _START_STATES[mode]
        self.alive = True
        #: Whether the CPUs start when an incoming migration completes ('cont' while
        #: waiting for it sets this, as in QEMU).
        self.autostart = False
        self.capabilities = options.default_capabilities()
        self.parameters = options.default_parameters()
        #: The TLS credentials objects (``object-add``): the endpoint of each, by id.
        self.tls_credentials: dict[str, TLSEndpoint] = {}
        self.outgoing: MigrationSession | FileSave | None = None
        self.incoming: MigrationSession | None = None
        self.incoming_status = MigrationStatus.NONE
        #: A fault that fired as the incoming side entered ``setup`` and acts on the
        #: migration: it takes effect once the source connects.
        self.setup_fault: Fault | None = None
        self.hub = EventHub()
        #: Set once a call hung: the monitor answers nothing more.
        self.monitor_stuck = False
        self.gone = asyncio.Event()
        self._incoming_started = False
        self._listening: int | None = None
        self.displays: list[GraphicsEndpoint] = []
        try:
            for graphics in domain.devices.graphics:
                self.displays.append(self._open_display(graphics))
        except CommandFailed:
            self._close_displays()
            raise

    def _open_display(self, graphics: Graphics) -> GraphicsEndpoint:
        """Raises: CommandFailed: the display's fixed port is taken."""
        fixed = None if graphics.autoport else graphics.port
        port = self.world.network.take_display_port(self.host, fixed)
        return GraphicsEndpoint(
            type=graphics.type.value,
            listen=graphics.listen or _DEFAULT_DISPLAY_LISTEN,
            port=port,
            tls_port=graphics.tls_port,
        )

    def _close_displays(self) -> None:
        for display in self.displays:
            if display.port is not None:
                self.world.network.release_port(self.host, display.port)

    # -- events and life --------------------------------------------------------------------

    def emit(self, event: InstanceEvent) -> None:
        self.world.record_event(self.host, self.name, event=event)
        self.hub.publish(event)

    def emit_migration(self, status: MigrationStatus) -> None:
        """QEMU sends MIGRATION events only with the ``events`` capability on."""
        if self.capabilities["events"]:
            self.emit(_MIGRATION_EVENTS[status])

    def strike(self, fault: Fault) -> bool:
        """Do what ``fault`` does to the process itself: a crash, or a partition of its
        host. False for the kinds that act on a call or a migration instead."""
        if fault.kind is FaultKind.CRASH:
            self.die(CRASHED)
            return True
        if fault.kind is FaultKind.LINK_DOWN:
            self.world.isolate(self.host, duration_ms=fault.duration_ms)
            return True
        return False

    def die(self, detail: str) -> None:
        """The process ends: nothing of it answers any more."""
        if not self.alive:
            return
        self.alive = False
        self.close_listener()
        self._close_displays()
        self.world.remove_guest(self)
        self.emit(InstanceEvent(EventKind.EXITED, detail=detail))
        self.hub.close()
        self.gone.set()
        self._changed()

    # -- CPUs --------------------------------------------------------------------------------

    def stop_cpus(self, state: RunState) -> None:
        """Enter ``state``; a running guest stops (STOPPED event)."""
        was_running = self.run_state is RunState.RUNNING
        self.run_state = state
        if was_running:
            self.emit(_STOPPED)
            self._changed()

    def start_cpus(self) -> None:
        if self.run_state is not RunState.RUNNING:
            self.run_state = RunState.RUNNING
            self.emit(_RESUMED)
            self._changed()

    def _changed(self) -> None:
        """Let this guest's migrations look again at what they depend on."""
        for session in (self.outgoing, self.incoming):
            if session is not None:
                session.disturb()

    def pause(self) -> None:
        """``stop``: a guest waiting for its incoming migration just won't start after it."""
        if self.run_state is RunState.INMIGRATE:
            self.autostart = False
        elif self.run_state is RunState.RUNNING:
            self.stop_cpus(RunState.PAUSED)

    def resume(self) -> None:
        """``cont``. Raises: CommandFailed: the guest needs a reset."""
        if self.run_state in _NEEDS_RESET:
            raise self._refused("Resetting the Virtual Machine is required")
        if self.run_state is RunState.INMIGRATE:
            self.autostart = True
        else:
            self.start_cpus()

    def shutdown(self) -> None:
        """``system_powerdown``: a running guest powers off; QEMU stays (libvirt runs it with
        -no-shutdown). A guest whose CPUs are stopped cannot react."""
        if self.run_state is RunState.RUNNING:
            self.emit(_SHUTDOWN)
            self.stop_cpus(RunState.SHUTDOWN)

    # -- settings ----------------------------------------------------------------------------

    def parameter(self, name: str) -> int:
        value = self.parameters[name]
        assert isinstance(value, int)
        return value

    def set_capabilities(self, request: object) -> None:
        with self._named():
            self.capabilities = options.apply_capabilities(
                self.capabilities,
                request,
                parameters=self.parameters,
                migrating=self.outgoing is not None and self.outgoing.running,
            )

    def set_parameters(self, changes: Mapping[str, object]) -> None:
        with self._named():
            self.parameters = options.apply_parameters(
                self.parameters, changes, capabilities=self.capabilities
            )
        self._changed()

    def add_tls_credentials(self, object_id: str, *, endpoint: TLSEndpoint) -> None:
        """``object-add qom-type=tls-creds-x509``. Raises: CommandFailed: the id is taken."""
        if object_id in self.tls_credentials:
            raise self._refused(
                f"attempt to add duplicate property '{object_id}' to object (type 'container')"
            )
        self.tls_credentials[object_id] = endpoint

    def delete_object(self, object_id: str) -> None:
        """``object-del``. Raises: CommandFailed: there is no such object."""
        if self.tls_credentials.pop(object_id, None) is None:
            raise self._refused(f"object '{object_id}' not found")

    def tls_problem(self, endpoint: TLSEndpoint) -> str | None:
        """Why this process cannot take its end of the stream as ``endpoint`` when
        ``tls-creds`` is set (QEMU checks the object only when the stream connects); None
        when it can, or when TLS is off."""
        creds = self.parameters["tls-creds"]
        if not creds:
            return None
        found = self.tls_credentials.get(str(creds))
        if found is None:
            return f"No TLS credentials with id '{creds}'"
        if found is not endpoint:
            return f"Expected TLS credentials for a {endpoint.value} endpoint"
        return None

    # -- the incoming side -------------------------------------------------------------------

    def start_incoming(self, uri: str) -> str:
        """``migrate-incoming``: listen, and return the URI bound.

        Raises:
            CommandFailed: not started for an incoming migration, already listening, or the
                address cannot be bound.
        """
        self._check_incoming()
        bound = self._listen(uri, recovery=False)
        self._incoming_started = True
        self.set_incoming_status(MigrationStatus.SETUP)
        if self.world.faults.armed:
            point = FaultPoint.on_status(MigrationStatus.SETUP)
            fault = self.world.faults.fire(host=self.host, instance=self.name, point=point)
            if fault is not None and not self.strike(fault):
                self.setup_fault = fault
        return bound.uri

    def start_incoming_from_fd(self, fd: int) -> None:
        """``migrate-incoming uri=fd:``: load the stream from ``fd`` (a copy is kept).

        Raises:
            CommandFailed: not started for an incoming migration, or already loading.
        """
        self._check_incoming()
        self._incoming_started = True
        self.set_incoming_status(MigrationStatus.SETUP)
        FileLoad(self.world, self, fd).start()

    def _check_incoming(self) -> None:
        """Raises: CommandFailed: QEMU's refusals of ``migrate-incoming``."""
        if self._incoming_started:
            raise self._refused("The incoming migration has already been started")
        if self.run_state is not RunState.INMIGRATE:
            raise self._refused("'-incoming' was not specified on the command line")

    def recover_postcopy(self, uri: str) -> str:
        """``migrate-recover``: listen for the source to reconnect a paused post-copy; the
        URI actually bound.

        Raises:
            CommandFailed: post-copy is not paused here, or the address cannot be bound.
        """
        if self.incoming_status is not MigrationStatus.POSTCOPY_PAUSED:
            raise self._refused("Migrate recover can only be run when postcopy is paused.")
        self.close_listener()
        return self._listen(uri, recovery=True).uri

    def _listen(self, uri: str, *, recovery: bool) -> Address:
        with self._named():
            address = parse_uri(uri)
            bound = self.world.network.bind(
                self.host, address, listener=Listener(guest=self, recovery=recovery)
            )
        self._listening = bound.port
        return bound

    def close_listener(self) -> None:
        if self._listening is not None:
            self.world.network.unbind(self.host, self._listening)
            self._listening = None

    def set_incoming_status(self, status: MigrationStatus) -> None:
        self.incoming_status = status
        self.emit_migration(status)

    # -- the outgoing side -------------------------------------------------------------------

    def migrate(self, uri: str, *, resume: bool) -> None:
        """``migrate``: start sending this guest to ``uri``, or reconnect a paused post-copy.

        Raises:
            CommandFailed: QEMU's refusals (a migration in progress, nothing to resume, a
                guest waiting for its own incoming migration or already migrated, a bad URI).
        """
        session = self._network_session()
        if resume:
            if session is None or session.status is not MigrationStatus.POSTCOPY_PAUSED:
                raise self._refused("Cannot resume if there is no paused migration")
            if self.capabilities["release-ram"]:
                raise self._refused(
                    "Postcopy recovery cannot work when release-ram capability is set"
                )
            with self._named():
                session.resume(uri)
            return
        self._check_can_migrate()
        session = MigrationSession(self.world, self)
        self.outgoing = session
        with self._named():
            session.start(uri)

    def migrate_to_fd(self, fd: int) -> None:
        """``migrate uri=fd:``: send this guest into ``fd`` (a copy is kept until the end).

        Raises:
            CommandFailed: as :meth:`migrate`, for a new migration.
        """
        self._check_can_migrate()
        session = FileSave(self.world, self, fd)
        self.outgoing = session
        session.start()

    def _check_can_migrate(self) -> None:
        """Raises: CommandFailed: QEMU's refusals of a new outgoing migration."""
        if self.outgoing is not None and self.outgoing.running:
            raise self._refused("There's a migration process in progress")
        if self.run_state is RunState.INMIGRATE:
            raise self._refused("Guest is waiting for an incoming migration")
        if self.run_state is RunState.POSTMIGRATE:
            raise self._refused("Can't migrate the vm that was paused due to previous migration")

    def _network_session(self) -> MigrationSession | None:
        """The outgoing migration, if it goes to another guest (post-copy needs one)."""
        session = self.outgoing
        return session if isinstance(session, MigrationSession) else None

    def cancel_migration(self) -> None:
        """``migrate_cancel``: nothing happens unless a migration is running."""
        if self.outgoing is not None and self.outgoing.running:
            self.outgoing.cancel()

    def continue_migration(self) -> None:
        """``migrate-continue state=pre-switchover``.

        Raises:
            CommandFailed: the migration is not paused before switchover.
        """
        session = self._network_session()
        if session is None or session.status is not MigrationStatus.PRE_SWITCHOVER:
            status = MigrationStatus.NONE if self.outgoing is None else self.outgoing.status
            raise self._refused(f"Migration not in expected state: {status.value}")
        session.proceed()

    def start_postcopy(self) -> None:
        """``migrate-start-postcopy``: switch at the next step if there is still much to send
        (a migration that has finished, or one into a file, ignores it).

        Raises:
            CommandFailed: post-copy is not enabled, or no migration was started.
        """
        if not (self.capabilities["postcopy-ram"] or self.capabilities["dirty-bitmaps"]):
            raise self._refused(
                "Enable postcopy with migrate_set_capability before the start of migration"
            )
        if self.outgoing is None:
            raise self._refused("Postcopy must be started after migration has been started")
        session = self._network_session()
        if session is not None:
            session.request_postcopy()

    def pause_postcopy(self) -> None:
        """``migrate-pause``, on either side of a post-copy migration.

        Raises:
            CommandFailed: no post-copy migration is active here.
        """
        outgoing = self._network_session()
        if outgoing is not None and outgoing.status is MigrationStatus.POSTCOPY_ACTIVE:
            outgoing.break_channel()
        elif self.incoming is not None and (
            self.incoming_status is MigrationStatus.POSTCOPY_ACTIVE
        ):
            self.incoming.break_channel()
        else:
            raise self._refused(
                "migrate-pause is currently only supported during postcopy-active state"
            )

    def query_migration(self) -> MigrationProgress:
        """``query-migrate``: the outgoing migration's statistics, else the incoming status
        (QEMU reports only the status on the destination)."""
        if self.outgoing is not None:
            return self.outgoing.progress()
        return MigrationProgress(status=self.incoming_status)

    def relocate_graphics_clients(self, endpoint: GraphicsEndpoint) -> None:
        """``client_migrate_info``. Raises: CommandFailed: not SPICE, or no SPICE display."""
        if endpoint.type != "spice":
            raise self._refused("Parameter 'protocol' expects 'spice'")
        if not any(display.type == "spice" for display in self.displays):
            raise self._refused("SPICE is not in use")

    # -- helpers -----------------------------------------------------------------------------

    def _refused(self, message: str) -> CommandFailed:
        return CommandFailed(message, instance=self.name)

    @contextmanager
    def _named(self) -> Iterator[None]:
        """Name this instance in the command errors raised inside."""
        try:
            yield
        except CommandFailed as exc:
            exc.instance = self.name
            raise
