"""The simulated universe: several hosts in one event loop, sharing a virtual clock, a
network, the guests' workloads, the injected faults and a trace."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from migrator.drivers.base import InstanceEvent
from migrator.drivers.sim.clock import VirtualClock
from migrator.drivers.sim.errors import SimError
from migrator.drivers.sim.faults import Fault, FaultBook, Operation
from migrator.drivers.sim.network import DEFAULT_LINK, Link, Network
from migrator.drivers.sim.trace import CommandRecord, EventRecord, FaultRecord, TraceRecord
from migrator.drivers.sim.workload import IDLE, Workload

if TYPE_CHECKING:
    from migrator.drivers.sim.guest import SimGuest
    from migrator.drivers.sim.outgoing import OutgoingMigration


class SimWorld:
    """Hosts, links, workloads, faults and the trace of one simulation.

    Everything is deterministic: the same calls in the same order give the same trace and
    the same statistics. Create one :class:`~migrator.drivers.sim.SimDriver` per host;
    hosts are linked to each other with ``default_link`` unless :meth:`set_link` says
    otherwise. With ``record_trace`` off, :attr:`trace` stays empty (for long benchmarks).

    Virtual time passes only while something acts in it (a running migration, a caller of
    :meth:`sleep`), jumping from one step to the next; a wall-clock wait sees none pass.
    """

    def __init__(self, *, default_link: Link = DEFAULT_LINK, record_trace: bool = True) -> None:
        self.clock = VirtualClock()
        self.network = Network(default_link=default_link)
        self._faults = FaultBook(self._record_fault)
        self._record_trace = record_trace
        # Records are built when the trace is read: appending plain tuples keeps recording
        # cheap on the migration path.
        self._trace: list[tuple[Callable[..., TraceRecord], tuple[object, ...]]] = []
        self._workloads: dict[str, Workload] = {}
        self._guests: dict[tuple[str, str], SimGuest] = {}
        self._sessions: set[OutgoingMigration] = set()

    # -- the public knobs ---------------------------------------------------------------------

    @property
    def now_ms(self) -> float:
        """Virtual milliseconds since the world began."""
        return self.clock.now_ms

    @property
    def hosts(self) -> frozenset[str]:
        return self.network.hosts

    def add_host(self, name: str) -> None:
        """Raises: SimError: a name that is a local address."""
        self.network.add_host(name)

    def link(self, a: str, b: str) -> Link:
        return self.network.link(a, b)

    def set_link(self, a: str, b: str, *, link: Link) -> None:
        """Replace the link between two hosts; running migrations adapt at once (a link
        going down breaks them).

        Raises:
            SimError: an unknown host.
        """
        self.network.set_link(a, b, link=link)
        self.disturb()

    def isolate(self, host: str, *, duration_ms: float) -> None:
        """Cut ``host`` off from every other host for ``duration_ms`` of virtual time."""
        self.network.isolate(host)
        self.clock.call_later(duration_ms, lambda: self._rejoin(host))
        self.disturb()

    def _rejoin(self, host: str) -> None:
        self.network.rejoin(host)
        self.disturb()

    def workload(self, domain: str) -> Workload:
        return self._workloads.get(domain, IDLE)

    def set_workload(self, domain: str, workload: Workload) -> None:
        """What the guest named ``domain`` does to its memory, wherever it runs (it follows
        the guest through migrations). Takes effect at once."""
        self._workloads[domain] = workload
        self.disturb()

    def inject(self, fault: Fault) -> None:
        self._faults.add(fault)

    @property
    def pending_faults(self) -> tuple[Fault, ...]:
        """Faults that have not fired yet, and the repeating ones."""
        return self._faults.pending

    @property
    def trace(self) -> tuple[TraceRecord, ...]:
        return tuple(record(*fields) for record, fields in self._trace)

    async def sleep(self, duration_ms: float) -> None:
        """Let ``duration_ms`` of virtual time pass (with running migrations progressing).

        Raises:
            SimError: a negative duration.
        """
        if duration_ms < 0:
            raise SimError("a virtual sleep cannot be negative", field="duration_ms")
        with self.clock.actor():
            await self.clock.sleep(duration_ms)

    # -- for the simulated processes ----------------------------------------------------------

    @property
    def faults(self) -> FaultBook:
        return self._faults

    def guest(self, host: str, name: str) -> SimGuest | None:
        return self._guests.get((host, name))

    def add_guest(self, guest: SimGuest) -> None:
        self._guests[(guest.host, guest.name)] = guest

    def remove_guest(self, guest: SimGuest) -> None:
        if self._guests.get((guest.host, guest.name)) is guest:
            del self._guests[(guest.host, guest.name)]

    def add_session(self, session: OutgoingMigration) -> None:
        self._sessions.add(session)

    def remove_session(self, session: OutgoingMigration) -> None:
        self._sessions.discard(session)

    def disturb(self) -> None:
        """Something every running migration depends on changed: let them look again."""
        for session in self._sessions:
            session.disturb()

    def record_command(
        self, host: str, instance: str, *, operation: Operation, arguments: Mapping[str, object]
    ) -> None:
        if self._record_trace:
            snapshot = {key: _snapshot(value) for key, value in arguments.items()}
            self._trace.append(
                (CommandRecord, (self.clock.now_ms, host, instance, operation, snapshot))
            )

    def record_event(self, host: str, instance: str, *, event: InstanceEvent) -> None:
        if self._record_trace:
            self._trace.append((EventRecord, (self.clock.now_ms, host, instance, event)))

    def _record_fault(self, fault: Fault, instance: str) -> None:
        if self._record_trace:
            self._trace.append((FaultRecord, (self.clock.now_ms, fault.host, instance, fault)))


def _snapshot(value: object) -> object:
    """A copy of QMP arguments (dicts, lists and scalars) that later changes cannot reach."""
    if isinstance(value, Mapping):
        return {key: _snapshot(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_snapshot(item) for item in value]
    return value
