"""Two real daemons (``migrator daemon`` subprocesses, mutual TLS between them) running the
test guest on real QEMU: the cluster scenarios replay on with ``--driver qemu``.

Both hosts are this machine: on the loopback interface, or, for a scenario that cuts or
slows the link between them, each in a network namespace of its own
(:mod:`migrator.netlab`), talking TLS over the lab's veth link, migration streams included
(the runner reaches each daemon over its unix socket). The daemons report every fault point
to the cluster over a unix socket and wait there while the fault fires
(:mod:`migrator.daemon.faultpoints`), so that a fault acts at the very point the scenario
names: a QEMU crash is a SIGKILL to the QEMU whose pidfile is in the daemon's run directory,
a killed daemon a SIGKILL to the daemon (restarted on the same state directory), a dropped
connection a reset of the connections relayed to a daemon's TLS port (on loopback), a
partition the lab's link down for a while, a slow link a token bucket on it.

The guest is the test guest with the scenario's working set and dirty rate; its memory is
capped at :data:`MAX_MEMORY_MIB` and its working set kept between :data:`MIN_WORKING_SET_MIB`
and :data:`MAX_WORKING_SET_MIB`: sizes meant for the simulator would only make the replay
slow; the dirty rate is the scenario's (the guest dirties as fast as it can up to it). Its
heartbeat is followed from every QEMU that runs it: two copies running at once show as
heartbeats out of order, and the guest's own check of its memory pages as bad-page reports.
Points reached while the guest is set up (it starts paused, until its heartbeat is
followed) are not the scenario's: faults are armed from the first migration on. COM1 is a
unix socket in the cluster's directory, which the runner reaches from any namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cookies import load_private_key
from migrator import netlab
from migrator.client import Client, ClientError
from migrator.client.types import DomainState
from migrator.daemon.atomic import TEMP_SUFFIX
from migrator.daemon.definitions import SUFFIX as DEFINITION_SUFFIX
from migrator.daemon.faultpoints import read_message, write_message
from migrator.daemon.state import DEFINITIONS_DIR, KEY_FILE, STATUS_DIR
from migrator.daemon.status_store import SUFFIX as STATUS_SUFFIX
from migrator.domain import (
    Arch,
    CharSource,
    CharType,
    Devices,
    Domain,
    DomainType,
    Os,
    Serial,
    SourceMode,
    format_domain,
)
from migrator.netlab import NetLab
from migrator.scenario.cluster import Check, Cluster, PointHandler
from migrator.scenario.errors import ConnectionLost, ScenarioError
from migrator.scenario.inprocess import cookie_features
from migrator.scenario.model import (
    FaultKind,
    GuestSpec,
    GuestStart,
    GuestState,
    Mode,
    Phase,
    Point,
    Role,
    Scenario,
)
from migrator.scenario.qemuhosts import LOOPBACK, DaemonProcess, Relay
from migrator.scenario.trace import Trace, TraceKind
from migrator.status import MigrationStatus
from migrator.testguest.errors import SerialSourceError
from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.heartbeat_log import AnomalyKind
from migrator.testguest.kernel import build_kernel
from migrator.testguest.vm import guest_memory_mib
from params import MigrationFlag
from transport import certdir
from transport.limits import Limits

#: The guest's memory on qemu, at most (scenario sizes are meant for the simulator).
MAX_MEMORY_MIB = 128
#: The working set the guest rewrites, at most.
MAX_WORKING_SET_MIB = 32
#: The working set at least: the guest checks only the pages of its working set, and the
#: memory checksum check needs it to.
MIN_WORKING_SET_MIB = 8
#: The certificate name the cluster uses as a client of the daemons.
ADMIN = "admin"
#: The longest pause of the heartbeat the heartbeat check accepts, in seconds (a guest
#: paused at a fault point or by a post-copy failure is not what it is about).
HEARTBEAT_PAUSE_S = 10.0
#: Heartbeats the guest must send where it runs at the end for the heartbeat check.
FINAL_BEATS = 20
#: Wall-clock seconds given to what the last steps set off before the outcome is looked at.
SETTLE_S = 1.0
#: How long a check waits for heartbeats, and a follower for a serial port (guards only).
GUARD_S = 20.0
#: Sweeps of its memory the guest verifies after the migration before memory counts as intact.
SWEEPS_AFTER = 2
#: How often a follower tries a serial port that does not listen yet.
RETRY_S = 0.01
MiB = 1024 * 1024
#: How long a partition waits for the destination to load the guest's devices in post-copy.
POSTCOPY_LOAD_S = 5.0
#: Seconds after a cut by which both daemons have given up on each other (their keepalive
#: notices a silent peer within one ping after it has been silent for long enough).
PARTITION_FELT_S = Limits().silence_allowed + Limits().keepalive_interval


class UnsupportedHere(ScenarioError):
    """The scenario cannot be replayed on this machine: ``reason`` says why."""


def needs_lab(scenario: Scenario) -> bool:
    """Whether ``scenario`` cuts or shapes the link: it runs in the network lab."""
    kinds = {fault.kind for fault in scenario.faults}
    return (
        FaultKind.PARTITION in kinds
        or FaultKind.SLOW_LINK in kinds
        or scenario.hosts.rate_mib_s is not None
    )


def unsupported(scenario: Scenario) -> str | None:
    """Why ``scenario`` cannot be replayed on this cluster here, or None when it can."""
    if scenario.hosts.delay_ms or any(fault.delay_ms for fault in scenario.faults):
        return "a delay on the link needs the kernel's netem queueing discipline"
    if not needs_lab(scenario):
        return None
    reason = netlab.unavailable()
    if reason is not None:
        return f"partitions and slow links need the network lab: {reason}"
    if scenario.migration.mode is Mode.DIRECT:
        return "a direct migration in the lab needs TLS from outside its namespaces"
    if any(fault.kind is FaultKind.PEER_DROPPED for fault in scenario.faults):
        return "dropped connections are relayed on loopback only, not in the lab"
    return None


def rate_kbit(rate_mib_s: float) -> int:
    """``rate_mib_s`` in kbit/s, at least 1."""
    return max(1, int(rate_mib_s * MiB * 8 / 1000))


def serial_at(path: Path) -> Serial:
    """COM1 on a unix socket listening at ``path``."""
    return Serial(type=CharType.UNIX, source=CharSource(path=str(path), mode=SourceMode.BIND))


def guest_domain(name: str, *, kernel: Path, memory_mib: int, serial: Path) -> Domain:
    """A q35 guest booting the test-guest ``kernel``, COM1 on a unix socket at ``serial``."""
    return Domain(
        type=DomainType.KVM,
        name=name,
        uuid=uuid.uuid5(uuid.NAMESPACE_DNS, name),
        memory_kib=memory_mib * 1024,
        os=Os(arch=Arch.X86_64, machine="q35", kernel=str(kernel)),
        devices=Devices(serials=(serial_at(serial),)),
    )


def moved(domain: Domain, *, serial: Path) -> Domain:
    """``domain`` with COM1 on the socket at ``serial``: its definition on the other host
    (both hosts are this machine, so each needs a socket of its own)."""
    devices = dataclasses.replace(domain.devices, serials=(serial_at(serial),))
    return dataclasses.replace(domain, devices=devices)


def serial_path(domain: Domain) -> Path:
    path = domain.devices.serials[0].source.path
    assert path is not None
    return Path(path)


class QemuCluster(Cluster):
    """Daemons for ``hosts`` (source first) in a fresh directory; build with :meth:`create`."""

    def __init__(
        self,
        root: Path,
        *,
        hosts: tuple[str, str],
        same_uuid: bool,
        in_lab: bool = False,
        rate_mib_s: float | None = None,
    ) -> None:
        self.trace = Trace()
        self.points = PointHandler()
        self.hosts = hosts
        self.roles = dict(zip(hosts, Role, strict=True))
        self.root = root
        self._same_uuid = same_uuid
        self._in_lab = in_lab
        self._rate_mib_s = rate_mib_s
        #: The network lab the daemons run in (None: on loopback).
        self.lab: NetLab | None = None
        self._serials = 0
        #: The migration status QEMU last entered on each host.
        self._status: dict[str, MigrationStatus] = {}
        self._status_changed = asyncio.Condition()
        #: When the guest's post-copy stalled (a host entered postcopy-paused), if it is.
        self._stalled_since: float | None = None
        #: Seconds the guest's post-copy has been stalled before.
        self._stalled_s = 0.0
        #: Until when what the last partition set off may still play out.
        self._partition_felt_until = 0.0
        #: The link's rates are the scenario's scaled down as the guest's working set is:
        #: whether a migration converges stays the scenario's.
        self._link_scale = 1.0
        self._points_path = root / "points.sock"
        self._points_server: asyncio.Server | None = None
        self.daemons: dict[str, DaemonProcess] = {}
        self.relays: dict[str, Relay] = {}
        self.clients: dict[str, Client] = {}
        self.monitor = HeartbeatMonitor()
        self._followers: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._phases: dict[tuple[str, str, str], str] = {}
        self._disk_full: set[str] = set()
        self._killed: list[str] = []
        #: How often the connections were dropped.
        self._drops = 0
        self._started = time.monotonic()
        self._domain: Domain | None = None
        #: The heartbeat source of the QEMU the guest runs in on each host, latest first.
        self._serial_of: dict[str, str] = {}
        self._serial_count = 0
        self._migration: asyncio.Task[None] | None = None
        self._migrating_from: str | None = None
        self._restarts: set[asyncio.Future[None]] = set()
        #: Whether points reach the scenario's faults (from the first migration on).
        self._armed = False

    @classmethod
    def for_scenario(cls, scenario: Scenario) -> QemuCluster:
        """The cluster ``scenario`` replays on; its daemons start with the guest.

        Raises:
            UnsupportedHere: the scenario needs what this machine cannot give.
        """
        reason = unsupported(scenario)
        if reason is not None:
            raise UnsupportedHere(reason)
        hosts = (scenario.hosts.source, scenario.hosts.destination)
        root = Path(tempfile.mkdtemp(prefix="mq", dir="/tmp"))
        return cls(
            root,
            hosts=hosts,
            same_uuid=scenario.hosts.same_uuid,
            in_lab=needs_lab(scenario),
            rate_mib_s=scenario.hosts.rate_mib_s,
        )

    def _fresh_serial(self) -> Path:
        self._serials += 1
        return self.root / f"com{self._serials}.sock"

    async def _start(self) -> None:
        """Certificates, the fault-point socket and both daemons, started.

        Raises:
            ScenarioError: a daemon did not start.
            NetLabError: the network lab could not be built or shaped.
        """
        if self._in_lab:
            self.lab = await NetLab.create(names=(self.hosts[0], self.hosts[1]))
            if self._rate_mib_s is not None:
                await self.lab.shape(rate_kbit=rate_kbit(self._rate_mib_s * self._link_scale))
        lab_hosts = dict(zip(self.hosts, self.lab.hosts, strict=True)) if self.lab else {}
        certs = self.root / "certs"
        certdir.create_ca(certs)
        for name in (*self.hosts, ADMIN):
            where = lab_hosts.get(name)
            certdir.issue(certs, name=name, ips=[where.address if where else LOOPBACK])
        self._points_server = await asyncio.start_unix_server(
            self._serve_point, path=str(self._points_path)
        )
        # Cloned machines report one host UUID.
        shared = str(uuid.uuid4()) if self._same_uuid else None
        for index, name in enumerate(self.hosts):
            other = self.hosts[1 - index]
            self.daemons[name] = DaemonProcess(
                name,
                self.root / f"s{index}",
                tls_dir=certs / name,
                allow=[other, ADMIN],
                points=self._points_path,
                log=self.root / f"{name}.log",
                host_uuid=shared,
                lab_host=lab_hosts.get(name),
            )
        await asyncio.gather(*(daemon.start() for daemon in self.daemons.values()))
        for name, daemon in self.daemons.items():
            if self.lab is None:
                relay = Relay(daemon.tls_port)
                await relay.start()
                self.relays[name] = relay
            self.clients[name] = await Client.connect(daemon.unix_uri)

    # -- fault points ------------------------------------------------------------------------

    async def _serve_point(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            message = await read_message(reader)
            answer = await self._point(message)
            await write_message(writer, answer)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass  # the daemon died while it waited: that is what the fault was
        finally:
            writer.close()

    async def _point(self, message: dict[str, Any]) -> dict[str, object]:
        host = str(message.get("host", ""))
        kind = message.get("kind")
        answer: dict[str, object] = {}
        if host not in self.roles or not self._armed:
            return answer
        role = self.roles[host]
        if kind == "command":
            command, detail = str(message["command"]), str(message.get("detail", ""))
            self.trace.add(TraceKind.QMP, host, f"{command} {detail}".rstrip())
            await self.points.reached(Point.on_command(command, role))
        elif kind == "status":
            with contextlib.suppress(ValueError):
                status = MigrationStatus(message["status"])
                self._note_stall(status)
                async with self._status_changed:
                    self._status[host] = status
                    self._status_changed.notify_all()
                await self.points.reached(Point.on_status(status, role))
        elif kind == "before":
            await self.points.reached(Point.before(Phase(message["phase"])))
        elif kind == "after":
            phase = Phase(message["phase"])
            cookie = message.get("cookie")
            if isinstance(cookie, bytes):
                self.trace.add(TraceKind.COOKIE, host, f"{phase.value} {cookie_features(cookie)}")
                answer["cookie"] = self.points.relay_cookie(Point.after(phase), cookie)
            await self.points.reached(Point.after(phase))
        elif kind in ("phase", "end"):
            key = (host, str(message["side"]), str(message["domain"]))
            text = f"{message['side']} {message['phase']}"
            if kind == "end":
                self._phases.pop(key, None)
                self.trace.add(TraceKind.JOB_END, host, text)
            elif self._phases.get(key) != message["phase"]:
                self._phases[key] = str(message["phase"])
                self.trace.add(TraceKind.PHASE, host, text)
        if host in self._disk_full:
            answer["disk_full"] = True
        return answer

    def _note_stall(self, status: MigrationStatus) -> None:
        now = time.monotonic()
        if status is MigrationStatus.POSTCOPY_PAUSED:
            if self._stalled_since is None:
                self._stalled_since = now
        elif self._stalled_since is not None:
            self._stalled_s += now - self._stalled_since
            self._stalled_since = None

    def _postcopy_stalled_s(self) -> float:
        """Seconds the guest waited for pages a broken post-copy could not bring."""
        if self._stalled_since is None:
            return self._stalled_s
        return self._stalled_s + time.monotonic() - self._stalled_since

    # -- the guest and the migration ---------------------------------------------------------

    async def start_guest(self, guest: GuestSpec, *, host: str) -> None:
        working_set = min(max(guest.working_set_mib, MIN_WORKING_SET_MIB), MAX_WORKING_SET_MIB)
        if guest.working_set_mib > working_set:
            self._link_scale = working_set / guest.working_set_mib
        await self._start()
        kernel = self.root / "guest.kernel"
        kernel.write_bytes(
            build_kernel(working_set_mib=working_set, dirty_rate_mib_s=guest.dirty_rate_mib_s)
        )
        memory = max(min(guest.memory_mib, MAX_MEMORY_MIB), guest_memory_mib(working_set))
        domain = guest_domain(
            guest.name, kernel=kernel, memory_mib=memory, serial=self._fresh_serial()
        )
        self._domain = domain
        client = self.clients[host]
        await client.define(format_domain(domain))
        if guest.start is GuestStart.SHUTOFF:
            return
        await client.start(guest.name, paused=True)
        await self._follow(host, domain)
        if not guest.persistent:
            await client.undefine(guest.name)
        if guest.start is GuestStart.RUNNING:
            await client.resume(guest.name)

    async def _follow(self, host: str, domain: Domain) -> None:
        """Follow the heartbeat of the QEMU on ``host`` serving ``domain``'s COM1."""
        self._serial_count += 1
        source = f"{host}#{self._serial_count}"
        self._serial_of[host] = source
        async with asyncio.timeout(GUARD_S):
            while True:
                try:
                    await self.monitor.attach(serial_path(domain), name=source)
                except SerialSourceError:
                    await asyncio.sleep(RETRY_S)
                else:
                    return

    def _follow_soon(self, host: str, domain: Domain) -> None:
        async def follow() -> None:
            with contextlib.suppress(TimeoutError):
                await self._follow(host, domain)

        task = asyncio.get_running_loop().create_task(follow())
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

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
        typed = dict(typed)
        if MigrationFlag.OFFLINE not in flags and self._domain is not None:
            target = moved(self._domain, serial=self._fresh_serial())
            typed["destination_xml"] = format_domain(target)
            self._follow_soon(destination, target)
        await self._run(
            name, source=source, destination=destination, mode=mode, flags=flags, typed=typed
        )
        if MigrationFlag.OFFLINE not in flags and self._domain is not None:
            self._domain = target

    async def resume_postcopy(
        self, name: str, *, source: str, destination: str, mode: Mode
    ) -> None:
        flags = MigrationFlag.LIVE | MigrationFlag.POSTCOPY | MigrationFlag.POSTCOPY_RESUME
        if mode is Mode.P2P:
            flags |= MigrationFlag.PEER2PEER
        await self._run(
            name, source=source, destination=destination, mode=mode, flags=flags, typed={}
        )

    async def _run(
        self,
        name: str,
        *,
        source: str,
        destination: str,
        mode: Mode,
        flags: MigrationFlag,
        typed: dict[str, object],
    ) -> None:
        killed, drops = len(self._killed), self._drops
        self._armed = True
        self._migrating_from = source
        dest_uri = self._tls_uri(destination)
        tls = self.root / "certs" / ADMIN
        client_uri = self.daemons[source].unix_uri if mode is Mode.P2P else self._tls_uri(source)
        work = asyncio.get_running_loop().create_task(
            self._call_migrate(
                client_uri,
                tls,
                name,
                dest_uri,
                flags=flags,
                typed=typed,
                direct=mode is Mode.DIRECT,
            )
        )
        self._migration = work
        try:
            try:
                await work
            finally:
                await self._restarted()
        except ClientError as exc:
            # Said as the scenarios say it (and as the in-process hosts report it).
            gone = self._killed[killed:]
            if gone:
                raise ConnectionLost(
                    f"the daemon on {gone[0]} went away: {exc}", host=gone[0]
                ) from None
            if self._drops > drops:
                raise ConnectionLost(
                    f"the connection to {source} went away: {exc}", host=source
                ) from None
            raise

    def _tls_uri(self, host: str) -> str:
        """Where the other host (or a client) reaches ``host``'s daemon over TLS: its relay
        on loopback, its own address in the lab."""
        daemon = self.daemons[host]
        if daemon.lab_host is not None:
            return f"migrator+tls://{daemon.address}:{daemon.tls_port}"
        return self.relays[host].uri

    @staticmethod
    async def _call_migrate(
        uri: str,
        tls: Path,
        name: str,
        dest_uri: str,
        *,
        flags: MigrationFlag,
        typed: dict[str, object],
        direct: bool,
    ) -> None:
        async with await Client.connect(uri, tls_dir=tls) as client:
            await client.migrate(name, dest_uri, flags=flags, typed=typed, direct=direct)

    def migrating(self, name: str) -> bool:
        return self._migration is not None and not self._migration.done()

    def _source_client(self) -> Client:
        if self._migrating_from is None:
            raise ScenarioError("no migration has been started")
        return self.clients[self._migrating_from]

    # -- operator actions --------------------------------------------------------------------

    async def abort_job(self, name: str) -> None:
        await self._source_client().domjobabort(name)

    async def switch_to_postcopy(self, name: str) -> None:
        await self._source_client().migrate_postcopy(name)

    async def suspend_guest(self, name: str) -> None:
        await self._source_client().suspend(name)

    async def restart_daemon(self, host: str) -> None:
        await self.kill_daemon(host, restart=True)

    # -- faults ------------------------------------------------------------------------------

    async def crash_qemu(self, host: str, name: str) -> None:
        pid = self.daemons[host].qemu_pids().get(name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    async def kill_daemon(self, host: str, *, restart: bool) -> None:
        daemon = self.daemons[host]
        self.trace.add(TraceKind.DAEMON, host, "killed")
        self._killed.append(host)
        await daemon.kill()
        with contextlib.suppress(Exception):
            await self.clients[host].close()
        if restart:
            restarted = asyncio.get_running_loop().create_future()
            self._restarts.add(restarted)
            try:
                self.trace.add(TraceKind.DAEMON, host, "started")
                await daemon.start()
                self.clients[host] = await Client.connect(daemon.unix_uri)
            finally:
                restarted.set_result(None)
                self._restarts.discard(restarted)

    async def _restarted(self) -> None:
        """Wait for the daemons being started again (a step must not look at a host whose
        daemon is on its way back)."""
        while self._restarts:
            await asyncio.gather(*list(self._restarts))

    async def drop_connections(self) -> None:
        self._drops += 1
        for relay in self.relays.values():
            relay.cut()

    async def partition(self, seconds: float) -> None:
        """Cut the lab's link now, breaking the migration streams on it; it heals
        ``seconds`` later, in the background (the point that set it off goes on meanwhile).

        Raises:
            ScenarioError: the cluster is not in the network lab.
            NetLabError: ``ip`` or ``ss`` failed.
        """
        lab = self._need_lab("partitions")
        await self._postcopy_loaded()
        # TCP alone would retry across the cut for minutes: the migration streams break at
        # once, as QEMU sees a stream whose peer is gone; the daemons' connections ride it
        # out until their keepalive gives up.
        await lab.partition()
        self._partition_felt_until = time.monotonic() + min(seconds, PARTITION_FELT_S)
        await lab.reset_connections(sparing=[daemon.tls_port for daemon in self.daemons.values()])
        healing = asyncio.get_running_loop().create_task(self._heal_after(lab, seconds))
        self._background.add(healing)
        healing.add_done_callback(self._background.discard)

    async def _postcopy_loaded(self) -> None:
        """Once the source runs post-copy, wait (a little) for the destination to have
        loaded the guest's devices: a stream broken before that ends the destination's QEMU,
        and on a real link TCP would have carried the devices across long before the cut
        showed."""
        if self._migrating_from is None:
            return
        destination = next(host for host in self.hosts if host != self._migrating_from)
        if self._status.get(self._migrating_from) is not MigrationStatus.POSTCOPY_ACTIVE:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POSTCOPY_LOAD_S):
                async with self._status_changed:
                    await self._status_changed.wait_for(
                        lambda: self._status.get(destination) is MigrationStatus.POSTCOPY_ACTIVE
                    )

    @staticmethod
    async def _heal_after(lab: NetLab, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await lab.heal()

    async def set_link(self, *, rate_mib_s: float, delay_ms: float) -> None:
        """Shape the lab's link to ``rate_mib_s``.

        Raises:
            ScenarioError: the cluster is not in the network lab.
            NetLabUnsupported: a delay needs netem, which this kernel lacks.
            NetLabError: ``tc`` failed.
        """
        lab = self._need_lab("slow links")
        await lab.shape(
            rate_kbit=rate_kbit(rate_mib_s * self._link_scale), delay_ms=delay_ms or None
        )

    def _need_lab(self, what: str) -> NetLab:
        if self.lab is None:
            raise ScenarioError(f"{what} need the network lab")
        return self.lab

    async def fill_disk(self, host: str) -> None:
        self._disk_full.add(host)

    def signing_key(self, host: str) -> Ed25519PrivateKey:
        return load_private_key((self.daemons[host].state_dir / KEY_FILE).read_bytes())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_later(seconds, callback)

    # -- what is there -----------------------------------------------------------------------

    async def guest_state(self, host: str, name: str) -> GuestState:
        daemon = self.daemons[host]
        if daemon.alive:
            for summary in await self.clients[host].list_domains():
                if summary.name == name:
                    if summary.state is DomainState.RUNNING:
                        return GuestState.RUNNING
                    return GuestState.PAUSED
            return GuestState.ABSENT
        if name not in daemon.qemu_pids():
            return GuestState.ABSENT
        # Nobody can ask this QEMU: its heartbeat says whether it runs.
        return GuestState.RUNNING if await self._beating(host) else GuestState.PAUSED

    async def _beating(self, host: str) -> bool:
        source = self._serial_of.get(host)
        if source is None:
            return False
        with contextlib.suppress(SerialSourceError):
            seen = self.monitor.report().source(source).heartbeats
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self.monitor.wait_for(
                        lambda report: report.source(source).heartbeats > seen
                    )
                    return True
        return False

    async def defined(self, host: str, name: str) -> bool:
        path = self.daemons[host].state_dir / DEFINITIONS_DIR / f"{name}{DEFINITION_SUFFIX}"
        return path.exists()

    async def open_jobs(self, host: str) -> list[str]:
        directory = self.daemons[host].state_dir / STATUS_DIR
        if not directory.is_dir():
            return []
        return sorted(
            path.name.removesuffix(STATUS_SUFFIX)
            for path in directory.iterdir()
            if path.name.endswith(STATUS_SUFFIX) and not path.name.startswith(".")
        )

    async def leftovers(self, name: str) -> list[str]:
        found = []
        for host, daemon in self.daemons.items():
            temp = sorted(str(p.name) for p in daemon.state_dir.rglob(f".*{TEMP_SUFFIX}"))
            if temp:
                found.append(f"{host}: temporary files left: {', '.join(temp)}")
            if not daemon.alive or await self.open_jobs(host):
                continue
            known = {summary.name for summary in await self.clients[host].list_domains()}
            for guest in daemon.qemu_pids():
                if guest not in known:
                    found.append(f"{host}: a QEMU process of '{guest}' its daemon does not know")
            if daemon.run_dir.is_dir():
                for directory in daemon.run_dir.iterdir():
                    if directory.name not in known:
                        found.append(f"{host}: run files of '{directory.name}' left")
        return found

    async def _memory_verified(self) -> str | None:
        """Whether the guest verified a whole sweep of its working set where it ended: two
        more reports than now (the next one may have begun before the switchover)."""
        seen = self.monitor.report().verified_sweeps
        with contextlib.suppress(TimeoutError, SerialSourceError):
            async with asyncio.timeout(GUARD_S):
                await self.monitor.wait_for(
                    lambda r: r.verified_sweeps >= seen + SWEEPS_AFTER or r.bad_page_reports > 0
                )
        report = self.monitor.report()
        if report.bad_page_reports:
            return f"the guest found {report.bad_page_reports} damaged page(s)"
        if report.verified_sweeps < seen + SWEEPS_AFTER:
            return "the guest reported no verified sweep of its memory after the migration"
        return None

    async def violations(self) -> list[str]:
        report = self.monitor.report()
        return [
            f"the guest's heartbeat went back ({a.source} sent {a.seq} after {a.expected}):"
            " it ran twice"
            for a in report.anomalies
            if a.kind is AnomalyKind.REPEAT
        ][:5]

    @property
    def checks(self) -> frozenset[Check]:
        return frozenset(Check)

    async def check(self, check: Check, name: str) -> str | None:
        if check is Check.MEMORY_CHECKSUM:
            return await self._memory_verified()
        report = self.monitor.report()
        where = [
            host for host in self.hosts if await self.guest_state(host, name) is GuestState.RUNNING
        ]
        if len(where) != 1:
            return f"the guest runs on {len(where)} hosts"
        source = self._serial_of.get(where[0])
        if source is None:
            return f"no heartbeat followed on {where[0]}"
        try:
            seen = report.source(source).heartbeats
            async with asyncio.timeout(GUARD_S):
                report = await self.monitor.wait_for(
                    lambda r: r.source(source).heartbeats >= seen + FINAL_BEATS
                )
        except (TimeoutError, SerialSourceError):
            return f"the guest on {where[0]} sends no heartbeat"
        # A guest stalled by a broken post-copy is not what the check is about.
        if report.largest_gap > HEARTBEAT_PAUSE_S + self._postcopy_stalled_s():
            return f"the heartbeat stopped for {report.largest_gap:.1f} s"
        return None

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    async def settle(self) -> None:
        await self._restarted()
        # The daemons notice a partition only when their keepalive gives up.
        await asyncio.sleep(max(SETTLE_S, self._partition_felt_until - time.monotonic()))
        await self._restarted()

    async def close(self) -> None:
        for task in [*self._followers, *self._background]:
            task.cancel()
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.close()
        for daemon in self.daemons.values():
            await daemon.stop()
            for pid in daemon.qemu_pids().values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for relay in self.relays.values():
            await relay.close()
        await self.monitor.close()
        if self._points_server is not None:
            self._points_server.close()
        if self.lab is not None:
            await self.lab.close()
        shutil.rmtree(self.root, ignore_errors=True)
