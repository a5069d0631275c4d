"""The part of a cluster that does not depend on the hypervisor driver: hosts whose daemons
run in this process (:class:`~migrator.scenario.inprocess.InProcessDaemon`), migrations
driven peer-to-peer by the source daemon or directly by a client, and the taps that turn
every command, status and job record into trace lines and fault points.

A subclass supplies the driver side: starting the guest, crashing QEMU, the network, the
clock, and what a host's processes and ports look like.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import params
from cookies import generate_signing_key
from migrator.drivers.base import Driver, EventKind, Instance
from migrator.runtime.host import Host, MemoryStatusStore
from migrator.runtime.protocol import resume_postcopy, run_migration
from migrator.runtime.records import JobRecord
from migrator.scenario.cluster import Cluster, PointHandler
from migrator.scenario.errors import ConnectionLost, ScenarioError
from migrator.scenario.inprocess import (
    ClockHold,
    Connection,
    DestinationEndpoint,
    InProcessDaemon,
    SourceEndpoint,
)
from migrator.scenario.model import Mode, Point, PointKind, Role
from migrator.scenario.taps import TappedDriver, TappedStatusStore
from migrator.scenario.trace import Trace, TraceKind
from params import MigrationFlag, Side
from transport.limits import Limits

#: How long a partition may last before the daemons' connection counts as lost (the
#: transport's keepalive gives up after this much silence).
PEER_SILENCE_S = Limits().silence_allowed


#: Drives one operation through the source's and the destination's phases.
_Drive = Callable[[SourceEndpoint, DestinationEndpoint], Coroutine[Any, Any, None]]


@dataclass
class _Operation:
    """The migration (or resume) under way: its guest, hosts and connections."""

    name: str
    source: InProcessDaemon
    destination: InProcessDaemon
    mode: Mode
    #: The connections that carry the protocol between the two sides: the daemons' own
    #: (peer-to-peer) or the client's to each daemon (direct).
    carriers: list[Connection] = field(default_factory=list)
    done: bool = False


class InProcessCluster(Cluster):
    """Hosts named as ``drivers`` says, each with its driver and an in-process daemon.
    ``roles`` maps each host to its role in the scenario (by default: in order); ``clock``
    is what the daemons hold while a call is in flight (see :class:`InProcessDaemon`)."""

    def __init__(
        self,
        drivers: Mapping[str, Driver],
        *,
        resume_timeout: float,
        roles: Mapping[str, Role] | None = None,
        same_uuid: bool = False,
        clock: tuple[Callable[[], None], Callable[[], None]] | None = None,
    ) -> None:
        self.trace = Trace()
        self.points = PointHandler()
        self.hosts = tuple(drivers)
        self.roles = dict(roles or zip(self.hosts, Role, strict=True))
        self.daemons: dict[str, InProcessDaemon] = {}
        for name, driver in drivers.items():
            host = Host(
                name=name,
                uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                driver=TappedDriver(driver, host=name, sink=self),
                signing_key=generate_signing_key(),
                incoming_address=name,
            )
            host.status = TappedStatusStore(MemoryStatusStore(), host=name, sink=self)
            self.daemons[name] = InProcessDaemon(host, resume_timeout=resume_timeout, clock=clock)
        self._clock = clock
        first, second = (daemon.host for daemon in self.daemons.values())
        if same_uuid:
            second.uuid = first.uuid
        first.trust(second)
        self.names: set[str] = set()
        self._operation: _Operation | None = None
        self._phases: dict[tuple[str, str, str], str] = {}
        self._observed: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        #: When the hosts can hear each other again (clock seconds).
        self._network_back = 0.0

    def host(self, name: str) -> Host:
        return self.daemons[name].host

    # -- the migration ---------------------------------------------------------------------

    async def migrate(
        self,
        name: str,
        *,
        source: str,
        destination: str,
        mode: Mode,
        flags: MigrationFlag,
        typed: dict[str, object],
    ) -> None:
        pset = params.from_typed(typed, flags=flags, side=Side.SOURCE)
        destination_typed, _ = params.destination_typed(pset)

        def drive(src: SourceEndpoint, dst: DestinationEndpoint) -> Coroutine[Any, Any, None]:
            return run_migration(
                src, dst, name, flags=flags, typed=typed, destination_typed=destination_typed
            )

        await self._run(name, source=source, destination=destination, mode=mode, drive=drive)

    async def resume_postcopy(
        self, name: str, *, source: str, destination: str, mode: Mode
    ) -> None:
        def drive(src: SourceEndpoint, dst: DestinationEndpoint) -> Coroutine[Any, Any, None]:
            return resume_postcopy(src, dst, name)

        await self._run(name, source=source, destination=destination, mode=mode, drive=drive)

    async def _run(
        self,
        name: str,
        *,
        source: str,
        destination: str,
        mode: Mode,
        drive: _Drive,
    ) -> None:
        src, dst = self.daemons[source], self.daemons[destination]
        operation = _Operation(name, src, dst, mode)
        self._operation = operation
        try:
            if mode is Mode.P2P:
                # The client makes one call; the source daemon drives, with its own
                # connection to the destination daemon.
                peer = Connection(dst, network=partial(self._between_hosts, dst.host.name))
                operation.carriers.append(peer)
                await Connection(src).call(
                    drive(
                        self._source_endpoint(Connection(src, local=True)),
                        self._destination_endpoint(peer),
                    )
                )
            else:
                links = [Connection(src), Connection(dst)]
                operation.carriers.extend(links)
                await drive(self._source_endpoint(links[0]), self._destination_endpoint(links[1]))
        finally:
            operation.done = True

    def _source_endpoint(self, connection: Connection) -> SourceEndpoint:
        return SourceEndpoint(connection, points=self.points, trace=self.trace)

    def _destination_endpoint(self, connection: Connection) -> DestinationEndpoint:
        return DestinationEndpoint(connection, points=self.points, trace=self.trace)

    def migrating(self, name: str) -> bool:
        operation = self._operation
        return operation is not None and operation.name == name and not operation.done

    def _current(self, name: str) -> _Operation:
        operation = self._operation
        if operation is None or operation.name != name:
            raise ScenarioError(f"no migration of '{name}' has been started")
        return operation

    # -- operator actions --------------------------------------------------------------------

    async def abort_job(self, name: str) -> None:
        daemon = self._current(name).source
        await daemon.serve(daemon.source.cancel(name))

    async def switch_to_postcopy(self, name: str) -> None:
        daemon = self._current(name).source
        await daemon.serve(daemon.source.switch_to_postcopy(name))

    async def suspend_guest(self, name: str) -> None:
        host = self._current(name).source.host
        await host.guest(name).instance.pause()

    async def restart_daemon(self, host: str) -> None:
        await self._kill(self.daemons[host], restart=True)

    # -- faults ----------------------------------------------------------------------------

    async def kill_daemon(self, host: str, *, restart: bool) -> None:
        # The daemon dies at this instant: the clock waits until it is gone.
        hold = None if self._clock is None else ClockHold(*self._clock)
        if hold is not None:
            hold.take()
        work = asyncio.get_running_loop().create_task(
            self._kill(self.daemons[host], restart=restart, hold=hold)
        )
        self._keep(work)
        # Called from one of the dying daemon's tasks, this is where that task ends.
        await asyncio.shield(work)

    async def _kill(
        self, daemon: InProcessDaemon, *, restart: bool, hold: ClockHold | None = None
    ) -> None:
        self.trace.add(TraceKind.DAEMON, daemon.host.name, "killed")
        operation = self._operation
        # Decided before the daemon stops: stopping ends the operation it was driving.
        connected = (
            operation is not None
            and not operation.done
            and operation.mode is Mode.P2P
            and daemon in (operation.source, operation.destination)
        )
        try:
            await daemon.stop()
        finally:
            if hold is not None:
                hold.drop()
        if connected and operation is not None:
            # The process is gone, and with it its end of the daemons' connection.
            survivor = operation.destination if daemon is operation.source else operation.source
            for carrier in operation.carriers:
                carrier.drop()
            await survivor.peer_gone(operation.name, driving=survivor is operation.source)
        if restart:
            await self._start(daemon)

    async def _start(self, daemon: InProcessDaemon) -> None:
        host = daemon.host.name
        self.trace.add(TraceKind.DAEMON, host, "started")
        for resolved in await daemon.start():
            actions = ",".join(action.name for action in resolved.recovery.actions) or "nothing"
            phase = resolved.recovery.phase
            outcome = "ended" if phase is None else f"kept in {phase.value}"
            self.trace.add(TraceKind.RECOVERY, host, f"{resolved.side.value}: {actions}, {outcome}")

    async def drop_connections(self) -> None:
        operation = self._operation
        if operation is None or operation.done:
            return
        for carrier in operation.carriers:
            carrier.drop()
        driving = operation.mode is Mode.P2P
        await operation.source.peer_gone(operation.name, driving=driving)
        await operation.destination.peer_gone(operation.name, driving=False)

    def _partitioned(self, seconds: float) -> None:
        """The hosts stop hearing each other for ``seconds``. Calls between their daemons
        wait (TCP retries) until it heals; past the keepalive's patience, the connection
        carrying the migration under way is lost."""
        self._network_back = max(self._network_back, self.elapsed_s + seconds)
        operation = self._operation
        if seconds < PEER_SILENCE_S or operation is None:
            return

        def expire() -> None:
            if operation is self._operation:
                self._keep(asyncio.get_running_loop().create_task(self.drop_connections()))

        self.call_later(PEER_SILENCE_S, expire)

    async def _between_hosts(self, peer: str) -> None:
        """Return once a message to or from ``peer`` can cross between the hosts.

        Raises:
            ConnectionLost: it cannot within the keepalive's patience.
        """
        waiting = self._network_back - self.elapsed_s
        if waiting <= 0:
            return
        await self.sleep(min(waiting, PEER_SILENCE_S))
        if waiting > PEER_SILENCE_S:
            raise ConnectionLost(f"no answer from {peer} for {PEER_SILENCE_S:g} s", host=peer)

    async def fill_disk(self, host: str) -> None:
        self.daemons[host].disk_full = True

    def signing_key(self, host: str) -> Ed25519PrivateKey:
        return self.daemons[host].host.signing_key

    # -- what is there -----------------------------------------------------------------------

    async def defined(self, host: str, name: str) -> bool:
        return name in self.daemons[host].stored

    async def open_jobs(self, host: str) -> list[str]:
        return self.daemons[host].host.status.names()

    # -- the taps' reports ---------------------------------------------------------------------

    async def command(self, host: str, command: str, detail: str) -> None:
        self.trace.add(TraceKind.QMP, host, f"{command} {detail}".rstrip())
        await self.points.reached(Point.on_command(command, self.roles[host]))

    async def started(self, host: str, name: str, instance: Instance) -> None:
        self.names.add(name)
        if not self.points.wants(PointKind.STATUS):
            return
        watching = self._observed.get((host, name))
        if watching is not None and not watching.done():
            return
        ready = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._observe(host, instance, ready))
        self._observed[(host, name)] = task
        await ready.wait()

    async def _observe(self, host: str, instance: Instance, ready: asyncio.Event) -> None:
        role = self.roles[host]
        async with instance.listen() as events:
            ready.set()
            async for event in events:
                if event.kind is EventKind.MIGRATION and event.status is not None:
                    await self.points.reached(Point.on_status(event.status, role))

    def saved(self, host: str, record: JobRecord) -> None:
        key = (host, record.side.value, record.domain)
        if self._phases.get(key) != record.phase:
            self._phases[key] = record.phase
            self.trace.add(TraceKind.PHASE, host, f"{record.side.value} {record.phase}")

    def deleted(self, host: str, record: JobRecord) -> None:
        self._phases.pop((host, record.side.value, record.domain), None)
        self.trace.add(TraceKind.JOB_END, host, f"{record.side.value} {record.phase}")

    # -- housekeeping --------------------------------------------------------------------------

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        tasks = [*self._background, *self._observed.values()]
        for task in tasks:
            task.cancel()
        for daemon in self.daemons.values():
            if daemon.alive:
                await daemon.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for daemon in self.daemons.values():
            with contextlib.suppress(Exception):
                await daemon.host.driver.close()
