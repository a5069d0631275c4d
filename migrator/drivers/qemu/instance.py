"""One running QEMU, as the engine sees it: :class:`QEMUInstance`."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from qemu.qmp import ExecuteError, QMPError

from migrator.domain import GraphicsType
from migrator.drivers.base import (
    TLS_CREDENTIALS_ID,
    CommandFailed,
    DriverError,
    EventKind,
    GraphicsEndpoint,
    Instance,
    InstanceEvent,
    InstanceGone,
    MigrationProgress,
    MigrationStatus,
    RunState,
    TLSEndpoint,
)
from migrator.drivers.events import EventHub
from migrator.drivers.qemu import qmpmap
from migrator.drivers.qemu.monitor import Monitor
from migrator.drivers.qemu.process import QemuProcess
from migrator.drivers.qemu.streamsocket import connect_stream
from migrator.drivers.uri import tcp_address

#: The fd names that QEMU gets for migrations to and from a file descriptor.
OUTGOING_FD = "migrate-out"
INCOMING_FD = "migrate-in"


class Lifecycle(enum.Enum):
    """Where an instance is in its life."""

    #: Following a running QEMU.
    RUNNING = "running"
    #: QEMU exited (or was killed).
    EXITED = "exited"
    #: The driver was closed; QEMU runs on, unwatched, for another daemon to attach to.
    DETACHED = "detached"


class QEMUInstance(Instance):
    """A QEMU process and its QMP connection.

    A watcher follows the process and the connection. Whichever ends first, the instance
    ends: a monitor that broke while QEMU runs on is ended by killing QEMU, as libvirt does.
    Then ``EXITED`` (with QEMU's exit and last stderr lines) ends every subscription, and calls
    in flight or made later raise :class:`InstanceGone`.

    Save and restore migrate to and from file descriptors (:meth:`migrate_to_fd`,
    :meth:`start_incoming_from_fd`), passed to QEMU with ``getfd``: QEMU reads and writes the
    stream itself.
    """

    def __init__(
        self,
        *,
        name: str,
        process: QemuProcess,
        monitor: Monitor,
        hub: EventHub,
        displays: Sequence[GraphicsType],
        grace_s: float,
        on_end: Callable[[QEMUInstance], None],
        tls_dir: Path | None = None,
    ) -> None:
        """``monitor`` is connected and delivers its events to ``hub``; ``tls_dir`` is the
        host's certificate directory for encrypted migration streams, if it has one."""
        self.name = name
        self._process = process
        self._monitor = monitor
        self._hub = hub
        self._displays = tuple(displays)
        self._grace_s = grace_s
        self._on_end = on_end
        self._tls_dir = tls_dir
        self._lifecycle = Lifecycle.RUNNING
        self._detail = ""
        self._ended = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch(), name=f"qemu {name} watcher")

    def __repr__(self) -> str:
        return (
            f"<QEMUInstance name={self.name!r} pid={self._process.pid} "
            f"lifecycle={self._lifecycle.value}>"
        )

    @property
    def pid(self) -> int:
        """QEMU's process id."""
        return self._process.pid

    @property
    def lifecycle(self) -> Lifecycle:
        return self._lifecycle

    # -- following the process ----------------------------------------------------------

    async def _watch(self) -> None:
        exited = asyncio.ensure_future(self._process.wait())
        closed = asyncio.ensure_future(self._monitor.wait_closed())
        try:
            await asyncio.wait((exited, closed), return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                await asyncio.wait((exited,), timeout=self._grace_s)
                if not exited.done():
                    await self._process.kill()
            # QEMU's last events are still in the socket when it exits; they come first.
            await asyncio.wait((closed,), timeout=self._grace_s)
        finally:
            exited.cancel()
            closed.cancel()
        await self._monitor.close()
        detail = f"QEMU (pid {self._process.pid}) {self._process.describe_exit()}"
        if tail := self._process.stderr_tail:
            detail = f"{detail}; its last messages:\n{tail}"
        self._end(Lifecycle.EXITED, detail)

    def _end(self, lifecycle: Lifecycle, detail: str) -> None:
        self._lifecycle = lifecycle
        self._detail = detail
        if lifecycle is Lifecycle.EXITED:
            self._hub.publish(InstanceEvent(EventKind.EXITED, detail=detail))
        self._hub.close()
        self._ended.set()
        self._on_end(self)

    async def detach(self) -> None:
        """Stop following QEMU and close its QMP connection; QEMU keeps running. Calls in
        flight raise :class:`DriverError`; subscriptions end without ``EXITED``."""
        if self._lifecycle is not Lifecycle.RUNNING:
            return
        self._watcher.cancel()
        await asyncio.gather(self._watcher, return_exceptions=True)
        await self._monitor.close()
        self._process.release()
        self._end(Lifecycle.DETACHED, "")

    def _not_running(self) -> DriverError:
        if self._lifecycle is Lifecycle.DETACHED:
            return DriverError(
                f"domain '{self.name}' is detached: its driver was closed", instance=self.name
            )
        return InstanceGone(
            f"QEMU of domain '{self.name}' is gone", instance=self.name, detail=self._detail
        )

    def _check_running(self) -> None:
        if self._lifecycle is not Lifecycle.RUNNING:
            raise self._not_running()

    @contextlib.asynccontextmanager
    async def _talking(self, what: str) -> AsyncIterator[None]:
        """Map what QMP raises inside the block to the driver's errors.

        Raises:
            CommandFailed: QEMU refused the command (its ``desc`` and error class).
            InstanceGone: QEMU is gone, or went away before it answered.
            DriverError: the instance is detached, or QMP broke while QEMU runs on.
        """
        self._check_running()
        try:
            yield
        except ExecuteError as err:
            raise CommandFailed(str(err), instance=self.name, error_class=err.error_class) from err
        except (QMPError, OSError) as err:
            if self._monitor.connected:
                raise DriverError(f"{what} failed: {err}", instance=self.name) from err
            await self._ended.wait()
            raise self._not_running() from err

    async def execute(self, command: str, arguments: Mapping[str, object] | None = None) -> object:
        """Run any QMP command (for what the driver interface has no method for); its reply.

        Raises:
            CommandFailed, InstanceGone, DriverError: as :meth:`_talking`; DriverError also
                for arguments that are not JSON.
        """
        try:
            json.dumps(arguments)
        except (TypeError, ValueError) as err:
            raise DriverError(
                f"arguments of QMP command '{command}' are not JSON: {err}", instance=self.name
            ) from err
        async with self._talking(f"QMP command '{command}'"):
            reply = await self._monitor.execute(command, arguments)
        return reply

    # -- Instance -----------------------------------------------------------------------

    def listen(self) -> AbstractAsyncContextManager[AsyncIterator[InstanceEvent]]:
        return self._hub.subscribe()

    @property
    def alive(self) -> bool:
        """True while this instance follows a running QEMU (False once it exited or the
        instance was detached)."""
        return self._lifecycle is Lifecycle.RUNNING

    async def run_state(self) -> RunState:
        state = qmpmap.run_state(await self.execute("query-status"))
        if state is RunState.FINISH_MIGRATE:
            # The migration thread reports "completed" a moment before it takes the main
            # loop's lock to set "postmigrate"; in between QEMU still says finish-migrate.
            migration = await self.query_migration()
            if migration.status is MigrationStatus.COMPLETED:
                return RunState.POSTMIGRATE
        return state

    async def pause(self) -> None:
        await self.execute("stop")

    async def resume(self) -> None:
        await self.execute("cont")

    async def shutdown(self) -> None:
        await self.execute("system_powerdown")

    async def kill(self) -> None:
        """SIGKILL QEMU and wait until it is reaped and ``EXITED`` is out.

        Raises:
            DriverError: the instance is detached.
        """
        if self._lifecycle is Lifecycle.DETACHED:
            raise self._not_running()
        await self._process.kill()
        await self._ended.wait()

    async def capability_states(self) -> Mapping[str, bool]:
        return qmpmap.capability_states(await self.execute("query-migrate-capabilities"))

    async def query_parameters(self) -> Mapping[str, object]:
        reply = await self.execute("query-migrate-parameters")
        return dict(qmpmap.as_mapping(reply, what="query-migrate-parameters"))

    async def set_capabilities(self, capabilities: list[dict[str, object]]) -> None:
        await self.execute("migrate-set-capabilities", {"capabilities": capabilities})

    async def set_parameters(self, parameters: Mapping[str, object]) -> None:
        await self.execute("migrate-set-parameters", dict(parameters))

    async def add_tls_credentials(self, endpoint: TLSEndpoint) -> None:
        if self._tls_dir is None:
            raise DriverError(
                f"cannot encrypt the migration stream of domain '{self.name}': this host "
                "has no certificate directory (tls_dir)",
                instance=self.name,
            )
        arguments = {
            "qom-type": "tls-creds-x509",
            "id": TLS_CREDENTIALS_ID,
            "dir": str(self._tls_dir.absolute()),
            "endpoint": endpoint.value,
            "verify-peer": True,
        }
        await self.execute("object-add", arguments)

    async def delete_tls_credentials(self) -> None:
        try:
            await self.execute("object-del", {"id": TLS_CREDENTIALS_ID})
        except CommandFailed:
            children = await self.execute("qom-list", {"path": "/objects"})
            if TLS_CREDENTIALS_ID in qmpmap.child_names(children):
                raise

    async def start_incoming(self, uri: str) -> str:
        await self.execute("migrate-incoming", {"uri": uri})
        return qmpmap.bound_uri(uri, await self.execute("query-migrate"))

    async def migrate(
        self, uri: str, *, resume: bool = False, own_connection: bool = False
    ) -> None:
        address = tcp_address(uri) if own_connection and not resume else None
        if address is not None:
            host, port = address
            with await connect_stream(host, port, instance=self.name) as connection:
                await self._pass_fd(connection.fileno(), OUTGOING_FD)
            await self.execute("migrate", {"uri": f"fd:{OUTGOING_FD}"})
            return
        arguments: dict[str, object] = {"uri": uri}
        if resume:
            arguments["resume"] = True
        await self.execute("migrate", arguments)

    async def cancel_migration(self) -> None:
        await self.execute("migrate_cancel")

    async def continue_migration(self) -> None:
        await self.execute("migrate-continue", {"state": "pre-switchover"})

    async def start_postcopy(self) -> None:
        await self.execute("migrate-start-postcopy")

    async def pause_postcopy(self) -> None:
        await self.execute("migrate-pause")

    async def recover_postcopy(self, uri: str) -> str:
        await self.execute("migrate-recover", {"uri": uri})
        return qmpmap.bound_uri(uri, await self.execute("query-migrate"))

    async def query_migration(self) -> MigrationProgress:
        return qmpmap.migration_progress(await self.execute("query-migrate"))

    async def graphics(self) -> list[GraphicsEndpoint]:
        endpoints: list[GraphicsEndpoint] = []
        for display in self._displays:
            if display is GraphicsType.VNC:
                endpoint = qmpmap.vnc_endpoint(await self.execute("query-vnc"))
            else:
                endpoint = qmpmap.spice_endpoint(await self.execute("query-spice"))
            if endpoint is not None:
                endpoints.append(endpoint)
        return endpoints

    async def relocate_graphics_clients(self, endpoint: GraphicsEndpoint) -> None:
        """SPICE: ``client_migrate_info``; VNC clients cannot be told, so nothing."""
        self._check_running()
        if endpoint.type != GraphicsType.SPICE.value:
            return
        arguments: dict[str, object] = {"protocol": "spice", "hostname": endpoint.listen}
        if endpoint.port is not None:
            arguments["port"] = endpoint.port
        if endpoint.tls_port is not None:
            arguments["tls-port"] = endpoint.tls_port
        await self.execute("client_migrate_info", arguments)

    # -- file descriptors ---------------------------------------------------------------

    async def migrate_to_fd(self, fd: int) -> None:
        """Start sending this guest's migration stream into ``fd`` (a pipe or a file opened
        for writing; it stays open here). Follow it like any migration.

        Raises:
            CommandFailed, InstanceGone, DriverError: as for :meth:`migrate`.
        """
        await self._pass_fd(fd, OUTGOING_FD)
        await self.execute("migrate", {"uri": f"fd:{OUTGOING_FD}"})

    async def start_incoming_from_fd(self, fd: int) -> None:
        """On a guest started for an incoming migration, read the stream from ``fd`` (it
        stays open here).

        Raises:
            CommandFailed, InstanceGone, DriverError: as for :meth:`start_incoming`.
        """
        await self._pass_fd(fd, INCOMING_FD)
        await self.execute("migrate-incoming", {"uri": f"fd:{INCOMING_FD}"})

    async def _pass_fd(self, fd: int, name: str) -> None:
        async with self._talking("passing a file descriptor to QEMU"):
            await self._monitor.pass_fd(fd, name)
