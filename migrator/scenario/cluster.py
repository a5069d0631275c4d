"""What a scenario needs from the hosts it runs on, whatever runs them.

A :class:`Cluster` is two hosts with a daemon each: it starts the guest, migrates it with
given flags and typed parameters, breaks things on request (a QEMU crash, a daemon killed,
a dropped connection, a partition, a slow link, a full disk) and says where the guest runs,
which definitions exist and what is left over. It tells a :class:`PointHandler` every time
the protocol reaches a point where a fault may fire, and writes what happens to its trace.

One implementation runs in-process hosts on the simulator
(:class:`~migrator.scenario.simcluster.SimCluster`); one on real daemons and real QEMU can
take the same scenarios.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from migrator.scenario.model import GuestSpec, GuestState, Mode, Point, PointKind
from migrator.scenario.trace import Trace
from params import MigrationFlag


class Check(enum.Enum):
    """Checks only some clusters can make (they need a real guest)."""

    HEARTBEAT = "heartbeat"
    MEMORY_CHECKSUM = "memory checksum"


class PointHandler:
    """Told of every point reached; the base class does nothing at any of them."""

    def wants(self, kind: PointKind) -> bool:
        """Whether points of ``kind`` matter (a cluster may skip watching for them)."""
        return False

    async def reached(self, point: Point) -> None:
        """The protocol reached ``point``. Called from the task that reached it."""

    def relay_cookie(self, point: Point, cookie: bytes) -> bytes:
        """The cookie that goes on to the next phase after the phase of ``point`` (an
        ``after:`` point) emitted ``cookie``."""
        return cookie


class Cluster(ABC):
    """Two hosts with their daemons, named by :attr:`hosts`."""

    trace: Trace
    points: PointHandler
    hosts: tuple[str, ...]

    # -- the guest and the migration -----------------------------------------------------

    @abstractmethod
    async def start_guest(self, guest: GuestSpec, *, host: str) -> None:
        """Define ``guest`` on ``host`` (if persistent) and start it as the spec says."""

    @abstractmethod
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
        """Migrate ``name`` through the five phases.

        Raises:
            MigratorError, CookieError, ParamsError, OSError: the migration failed.
        """

    @abstractmethod
    async def resume_postcopy(
        self, name: str, *, source: str, destination: str, mode: Mode
    ) -> None:
        """Resume the failed post-copy migration of ``name``.

        Raises:
            MigratorError, OSError: the resume failed.
        """

    # -- operator actions ----------------------------------------------------------------

    @abstractmethod
    async def abort_job(self, name: str) -> None:
        """Abort the outgoing job of ``name`` on the host migrating it (``domjobabort``).

        Raises:
            MigratorError: the daemon refused, or no job runs.
        """

    @abstractmethod
    async def switch_to_postcopy(self, name: str) -> None:
        """Switch the running migration of ``name`` to post-copy.

        Raises:
            MigratorError: the daemon refused, or no job runs.
        """

    @abstractmethod
    async def suspend_guest(self, name: str) -> None:
        """Pause the guest's CPUs on the host migrating it, behind the engine's back.

        Raises:
            MigratorError: the guest does not run there.
        """

    @abstractmethod
    async def restart_daemon(self, host: str) -> None:
        """Stop the daemon on ``host`` (its guests keep running) and start it again."""

    @abstractmethod
    def migrating(self, name: str) -> bool:
        """Whether the migration of ``name`` is still under way."""

    # -- faults --------------------------------------------------------------------------

    @abstractmethod
    async def crash_qemu(self, host: str, name: str) -> None:
        """The QEMU process of ``name`` on ``host`` dies (if it runs)."""

    @abstractmethod
    async def kill_daemon(self, host: str, *, restart: bool) -> None:
        """The daemon on ``host`` dies; with ``restart`` it starts again and resolves its
        half-done jobs. Called from one of that daemon's own tasks, it does not return:
        the task is cancelled with the daemon."""

    @abstractmethod
    async def drop_connections(self) -> None:
        """The connections carrying the current migration drop; each daemon sees its peer
        (or its controlling client) go away."""

    @abstractmethod
    async def partition(self, seconds: float) -> None:
        """The hosts cannot reach each other for ``seconds``."""

    @abstractmethod
    async def set_link(self, *, rate_mib_s: float, delay_ms: float) -> None:
        """The link between the hosts carries ``rate_mib_s`` with ``delay_ms`` of delay."""

    @abstractmethod
    async def fill_disk(self, host: str) -> None:
        """From now on, writing a definition on ``host`` fails: no space left."""

    @abstractmethod
    def signing_key(self, host: str) -> Ed25519PrivateKey:
        """The key ``host`` signs its cookies with (to forge a well-signed cookie)."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass on the cluster's clock."""

    @abstractmethod
    def call_later(self, seconds: float, callback: Callable[[], None]) -> None:
        """Call ``callback`` once ``seconds`` have passed on the cluster's clock, without
        making them pass (a simulated clock moves only for what runs in it)."""

    # -- what is there -------------------------------------------------------------------

    @abstractmethod
    async def guest_state(self, host: str, name: str) -> GuestState:
        """How the QEMU process of ``name`` on ``host`` is: running, paused or absent."""

    @abstractmethod
    async def defined(self, host: str, name: str) -> bool:
        """Whether ``host``'s daemon has a persistent definition of ``name`` stored."""

    @abstractmethod
    async def open_jobs(self, host: str) -> list[str]:
        """The guests ``host``'s daemon holds a job record for."""

    @abstractmethod
    async def leftovers(self, name: str) -> list[str]:
        """What should not be there once every job ended: processes, ports, files."""

    @abstractmethod
    async def violations(self) -> list[str]:
        """Moments the guest ran on two hosts at once."""

    @property
    @abstractmethod
    def checks(self) -> frozenset[Check]:
        """The optional checks this cluster can make."""

    @abstractmethod
    async def check(self, check: Check, name: str) -> str | None:
        """Make ``check``; the problem found, or None."""

    @property
    @abstractmethod
    def elapsed_s(self) -> float:
        """Seconds on the cluster's clock since it started."""

    @abstractmethod
    async def settle(self) -> None:
        """Wait until what the last steps set off has played out."""

    @abstractmethod
    async def close(self) -> None:
        """Stop everything the cluster started."""
