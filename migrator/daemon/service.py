"""The host daemon: :class:`Daemon`, usable in-process (a test, the demo) or by
``migrator daemon``.

Starting opens (and locks) the state directory, reconnects to the guests that run here,
resolves the migration jobs a previous daemon left half done (libvirt's recovery table, so
that a guest ends on exactly one host), and then listens. Stopping stops listening and
leaves every guest running, their jobs recorded for the next start.
"""

from __future__ import annotations

import logging
from types import TracebackType

from migrator.client.types import HostInfo
from migrator.client.uri import tls_uri, unix_uri
from migrator.daemon import faultpoints
from migrator.daemon.claims import DomainJobs
from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.daemon.domains import Domains
from migrator.daemon.events import EventHub
from migrator.daemon.guests import GuestWatcher
from migrator.daemon.host import DaemonHost
from migrator.daemon.migration import Migrations
from migrator.daemon.peers import Peers
from migrator.daemon.ports import MigrationPorts
from migrator.daemon.progress import JobReporter
from migrator.daemon.rpc import method_table
from migrator.daemon.saves import Saves
from migrator.daemon.state import StateDir
from migrator.drivers.base import Driver
from migrator.drivers.qemu import QEMUDriver
from migrator.drivers.sim import SimDriver, SimWorld
from migrator.errors import MigratorError
from migrator.runtime.destination import DestinationSide
from migrator.runtime.restart import reattach
from migrator.runtime.source import SourceSide
from transport import Limits, Server, TLSServerConfig

log = logging.getLogger("migrator.daemon")

#: Where the qemu driver keeps each guest's QMP socket and pidfile, in the state directory.
RUN_DIR = "run"


class Daemon:
    """One host's daemon. ``await start()``, then serve until ``await stop()``; or use it
    as an async context manager.

    ``driver`` replaces the driver the configuration names (a test's own driver);
    ``sim_world`` is the world a ``sim`` driver joins (several in-process daemons in one
    world can migrate between each other; by default each gets a world of its own).
    """

    def __init__(
        self,
        config: DaemonConfig,
        *,
        driver: Driver | None = None,
        sim_world: SimWorld | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.config = config
        self._driver = driver
        self._sim_world = sim_world
        self._limits = limits
        self._state: StateDir | None = None
        self._server: Server | None = None
        self._tls_address: tuple[str, int] | None = None
        self._parts: _Parts | None = None

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what it is --------------------------------------------------------------------------

    @property
    def host(self) -> DaemonHost:
        """The host this daemon runs (once started)."""
        return self._running().host

    @property
    def unix_uri(self) -> str:
        return unix_uri(self.config.socket_path)

    @property
    def tls_uri(self) -> str | None:
        """The TLS listener's URI (once listening), or None without one."""
        if self._tls_address is None:
            return None
        host, port = self._tls_address
        if host in ("0.0.0.0", "::"):
            host = self.config.host_name
        return tls_uri(host, port)

    @property
    def uris(self) -> list[str]:
        return [self.unix_uri, *([self.tls_uri] if self.tls_uri else [])]

    def host_info(self) -> HostInfo:
        host = self.host
        return HostInfo(name=host.name, uuid=host.uuid, driver=host.driver.name, uri=self.tls_uri)

    # -- start and stop ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the state directory, reconnect to the guests, resolve half-done jobs, listen.

        Raises:
            StateDirError: the state directory is in use or unusable.
            ConfigError: a listener cannot be set up (socket in use, certificates).
        """
        config = self.config
        state = StateDir(config.state_dir, host_uuid=config.host_uuid)
        self._state = state
        try:
            self._parts = parts = _Parts.build(config, state, driver=self._make_driver())
            faultpoints.install(parts, host=config.host_name)  # scenario replay only
            await parts.recover()
            server = Server(
                method_table(
                    host_info=self.host_info,
                    domains=parts.domains,
                    migrations=parts.migrations,
                    saves=parts.saves,
                    hub=parts.hub,
                ),
                limits=self._limits,
                name=config.host_name,
            )
            self._server = server
            await server.listen_unix(config.socket_path)
            if config.listen is not None and config.tls_dir is not None:
                tls = TLSServerConfig.from_dir(config.tls_dir, allowed_clients=config.allow_clients)
                self._tls_address = await server.listen_tls(*config.listen, tls=tls)
        except BaseException:
            await self.stop()
            raise
        log.info("%s (%s) serving on %s", config.host_name, state.host_uuid, " ".join(self.uris))

    async def stop(self) -> None:
        """Stop serving; guests keep running and their jobs stay recorded. Never raises."""
        if self._parts is not None:
            # Connections are about to close: that must not count as their jobs' peers
            # going away, nor cancel a save or restore (the next start resolves it).
            self._parts.migrations.quiesce()
            self._parts.saves.quiesce()
        if self._server is not None:
            await self._server.close()
            self._server = None
        if self._parts is not None:
            await self._parts.close()
            self._parts = None
        if self._state is not None:
            self._state.close()
            self._state = None
        self._tls_address = None

    # -- helpers -----------------------------------------------------------------------------

    def _make_driver(self) -> Driver:
        if self._driver is not None:
            return self._driver
        config = self.config
        if config.driver is DriverKind.SIM:
            world = self._sim_world or SimWorld(record_trace=False)
            return SimDriver(world, config.host_name, tls_dir=config.tls_dir)
        return QEMUDriver(config.state_dir / RUN_DIR, tls_dir=config.tls_dir)

    def _running(self) -> _Parts:
        if self._parts is None:
            raise MigratorError("the daemon is not running", code="not-running")
        return self._parts


class _Parts:
    """What a running daemon is made of, wired together."""

    def __init__(
        self,
        *,
        host: DaemonHost,
        hub: EventHub,
        watcher: GuestWatcher,
        reporter: JobReporter,
        source: SourceSide,
        destination: DestinationSide,
        domains: Domains,
        migrations: Migrations,
        saves: Saves,
    ) -> None:
        self.host = host
        self.hub = hub
        self.watcher = watcher
        self.reporter = reporter
        self.source = source
        self.destination = destination
        self.domains = domains
        self.migrations = migrations
        self.saves = saves

    @classmethod
    def build(cls, config: DaemonConfig, state: StateDir, *, driver: Driver) -> _Parts:
        hub = EventHub()
        jobs = DomainJobs()
        watcher = GuestWatcher(hub, busy=jobs.busy)
        reporter = JobReporter(hub)
        host = DaemonHost(
            name=config.host_name,
            uuid=state.host_uuid,
            driver=driver,
            signing_key=state.signing_key,
            definitions=state.definitions(),
            live=state.live_definitions(),
            status=state.status,
            incoming_address=config.incoming_address,
            on_definitions_changed=state.sync_definitions,
            on_job_phase=reporter.on_phase,
            state=state,
            observer=watcher,
        )
        watcher.host = host
        ports = config.migration_ports if config.driver is DriverKind.QEMU else None
        source = SourceSide(host)
        destination = DestinationSide(
            host, listen_uri=MigrationPorts(config.incoming_address, ports).listen_uri
        )
        jobs.follow(source, destination)
        saves = Saves(host, jobs=jobs, hub=hub, reporter=reporter)
        return cls(
            host=host,
            hub=hub,
            watcher=watcher,
            reporter=reporter,
            source=source,
            destination=destination,
            domains=Domains(
                host,
                jobs=jobs,
                watcher=watcher,
                hub=hub,
                saves=saves,
                incoming=reporter.incoming,
            ),
            migrations=Migrations(
                host=host,
                source=source,
                destination=destination,
                jobs=jobs,
                reporter=reporter,
                watcher=watcher,
                peers=Peers(host, tls_dir=config.tls_dir),
            ),
            saves=saves,
        )

    async def recover(self) -> None:
        """Reconnect to the guests running here and resolve the jobs left half done
        (migrations, then saves and restores); forget the live definitions of guests that
        are gone."""
        host = self.host
        for resolved in await reattach(host, source=self.source, destination=self.destination):
            self.watcher.settle(resolved.domain)
        for name in await self.saves.recover():
            self.watcher.settle(name)
        for name in [name for name in host.live if name not in host.guests]:
            host.live.pop(name)
            host.state.remove_live(name)
            log.info("%s no longer runs here", name, extra={"domain": name})

    async def close(self) -> None:
        """Let go of everything; guests keep running. Never raises."""
        await self.migrations.close()
        await self.reporter.close()
        await self.watcher.close()
        await self.source.detach()
        await self.destination.detach()
        await self.hub.close()
        await self.host.driver.close()
