"""The hypervisor driver interface that the engine drives, shared by ``qemu`` and ``sim``.

A :class:`Driver` starts guests on one host and returns an :class:`Instance` per running
guest. Instances speak in QMP's terms (capability and parameter dictionaries, QEMU's
migration status names) so that the parameter table generates their input directly and the
two drivers are interchangeable.

Every coroutine may raise :class:`DriverError` (or a subclass); a call interrupted by the
instance going away raises :class:`InstanceGone`, whose outcome is unknown to the caller.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from migrator.errors import MigratorError
from migrator.status import MigrationStatus, RunState

if TYPE_CHECKING:
    from migrator.domain import Domain

__all__ = [
    "TLS_CREDENTIALS_ID",
    "CommandFailed",
    "Driver",
    "DriverError",
    "EventKind",
    "GraphicsEndpoint",
    "Instance",
    "InstanceEvent",
    "InstanceGone",
    "MigrationProgress",
    "MigrationStatus",
    "RunState",
    "StartMode",
    "TLSEndpoint",
]

#: The id of the TLS credentials object a migration creates in its hypervisor (QMP
#: ``tls-creds`` names it). A guest has one migration at a time, so one id serves every job.
TLS_CREDENTIALS_ID: Final = "migrator-tls0"


class DriverError(MigratorError):
    """A hypervisor operation failed.

    Attributes:
        instance: name of the guest the operation was for, if any.
        detail: extra diagnostics, such as QEMU's last stderr lines.
    """

    code = "driver-error"

    def __init__(self, message: str, *, instance: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.instance = instance
        self.detail = detail


class InstanceGone(DriverError):
    """The hypervisor process exited or crashed; whatever was in flight has an unknown outcome."""

    code = "instance-gone"


class CommandFailed(DriverError):
    """The hypervisor refused a command (for QEMU: a QMP error reply).

    Attributes:
        error_class: the hypervisor's class of the error, if it reports one (QMP's
            ``class``, such as ``GenericError`` or ``DeviceNotActive``).
    """

    code = "command-failed"

    def __init__(
        self,
        message: str,
        *,
        instance: str | None = None,
        detail: str = "",
        error_class: str | None = None,
    ) -> None:
        super().__init__(message, instance=instance, detail=detail)
        self.error_class = error_class


class StartMode(enum.Enum):
    """How a guest starts."""

    RUNNING = "running"
    PAUSED = "paused"
    #: Paused, waiting for an incoming migration stream.
    INCOMING = "incoming"


class TLSEndpoint(enum.Enum):
    """Which end of the migration stream's TLS session a host's credentials are for."""

    #: The source: it connects, and checks the destination's certificate.
    CLIENT = "client"
    #: The destination: it accepts, and checks the source's certificate.
    SERVER = "server"


@dataclass(frozen=True)
class MigrationProgress:
    """One ``query-migrate`` sample, with QEMU's field names in snake case.

    Byte counts are bytes, times are milliseconds, rates as QEMU reports them
    (``mbps`` in megabits per second, ``dirty_pages_rate`` in pages per second).
    """

    status: MigrationStatus
    total_time: int | None = None
    setup_time: int | None = None
    downtime: int | None = None
    expected_downtime: int | None = None
    transferred: int = 0
    remaining: int = 0
    total: int = 0
    duplicate: int = 0
    normal: int = 0
    normal_bytes: int = 0
    dirty_pages_rate: int = 0
    mbps: float = 0.0
    dirty_sync_count: int = 0
    page_size: int = 4096
    postcopy_requests: int = 0
    cpu_throttle_percentage: int = 0
    xbzrle_cache_size: int = 0
    xbzrle_bytes: int = 0
    xbzrle_pages: int = 0
    xbzrle_cache_miss: int = 0
    xbzrle_overflow: int = 0
    error_desc: str | None = None


@dataclass(frozen=True)
class GraphicsEndpoint:
    """Where a guest's display listens, for relocating clients after a migration."""

    type: str
    listen: str
    port: int | None
    tls_port: int | None = None


class EventKind(enum.Enum):
    """What happened to an instance."""

    MIGRATION = "migration"
    STOPPED = "stopped"
    RESUMED = "resumed"
    SHUTDOWN = "shutdown"
    #: The hypervisor process is gone (exited or crashed).
    EXITED = "exited"


@dataclass(frozen=True)
class InstanceEvent:
    """One event from an instance. ``status`` is set for ``MIGRATION`` events; ``detail``
    carries the exit reason or QEMU's last stderr lines for ``EXITED``."""

    kind: EventKind
    status: MigrationStatus | None = None
    detail: str = ""


class Instance(ABC):
    """One running guest on this host: a QEMU process, or its simulation."""

    name: str

    @abstractmethod
    def listen(self) -> AbstractAsyncContextManager[AsyncIterator[InstanceEvent]]:
        """A scoped subscription: every event from entering the context until leaving it,
        in order, without loss. Several subscriptions may be open at once. The iteration
        ends after the ``EXITED`` event (at once if the process is already gone)."""

    @property
    @abstractmethod
    def alive(self) -> bool:
        """False once the hypervisor process has exited."""

    @abstractmethod
    async def run_state(self) -> RunState:
        """The guest's current run state."""

    @abstractmethod
    async def pause(self) -> None:
        """Stop the guest's CPUs."""

    @abstractmethod
    async def resume(self) -> None:
        """Start the guest's CPUs."""

    @abstractmethod
    async def shutdown(self) -> None:
        """Ask the guest to power off (ACPI), without waiting for it."""

    @abstractmethod
    async def kill(self) -> None:
        """End the hypervisor process now and reap it. Never raises for an already-gone
        process."""

    @abstractmethod
    async def capability_states(self) -> Mapping[str, bool]:
        """Each migration capability this hypervisor offers (QMP names), and whether it is
        on."""

    async def supported_capabilities(self) -> frozenset[str]:
        """The migration capabilities this hypervisor offers (QMP names)."""
        return frozenset(await self.capability_states())

    @abstractmethod
    async def query_parameters(self) -> Mapping[str, object]:
        """The current migration parameters, as a ``query-migrate-parameters`` reply."""

    @abstractmethod
    async def set_capabilities(self, capabilities: list[dict[str, object]]) -> None:
        """Apply ``migrate-set-capabilities`` arguments."""

    @abstractmethod
    async def set_parameters(self, parameters: Mapping[str, object]) -> None:
        """Apply ``migrate-set-parameters`` arguments."""

    @abstractmethod
    async def add_tls_credentials(self, endpoint: TLSEndpoint) -> None:
        """Create the TLS credentials object :data:`TLS_CREDENTIALS_ID` (QEMU's
        ``tls-creds-x509``) from this host's certificate directory, for ``endpoint``, with
        the peer's certificate verified. Migration parameter ``tls-creds`` names it.

        Raises:
            DriverError: this host has no certificate directory (``tls_dir``).
            CommandFailed: the hypervisor refused (the object exists already, or the
                directory lacks a file it needs).
        """

    @abstractmethod
    async def delete_tls_credentials(self) -> None:
        """Delete the object :meth:`add_tls_credentials` created; one that is already gone
        (or was never created) is fine."""

    @abstractmethod
    async def start_incoming(self, uri: str) -> str:
        """Listen for the incoming migration on ``uri`` (``tcp:HOST:PORT``, port 0 for any)
        and return the URI actually bound."""

    @abstractmethod
    async def migrate(
        self, uri: str, *, resume: bool = False, own_connection: bool = False
    ) -> None:
        """Start sending this guest to ``uri``; returns once the migration has started.
        With ``resume``, reconnect a paused post-copy migration. With ``own_connection``
        (a ``tcp:`` URI only), this process connects and hands the socket to the hypervisor,
        tuned for the stream's last small writes (no Nagle delay at switchover).

        Raises:
            DriverError: the hypervisor refused, or ``own_connection`` could not connect.
        """

    @abstractmethod
    async def migrate_to_fd(self, fd: int) -> None:
        """Start sending this guest's migration stream into ``fd`` (a file opened for
        writing at the offset where the stream goes, or the write end of a pipe); returns
        once the migration has started. The instance keeps its own copy of ``fd`` until the
        migration ends; the caller may close its copy after this returns."""

    @abstractmethod
    async def start_incoming_from_fd(self, fd: int) -> None:
        """On a guest started ``INCOMING``, load the migration stream from ``fd`` (a file at
        the offset where the stream starts, or the read end of a pipe); returns once loading
        has started. A stream that fails to load ends the process, as QEMU's incoming side
        does."""

    @abstractmethod
    async def cancel_migration(self) -> None:
        """Cancel an outgoing migration (``migrate_cancel``)."""

    @abstractmethod
    async def continue_migration(self) -> None:
        """Let a migration waiting in ``pre-switchover`` (capability
        ``pause-before-switchover``) go on (``migrate-continue``)."""

    @abstractmethod
    async def start_postcopy(self) -> None:
        """Switch a running migration to post-copy."""

    @abstractmethod
    async def pause_postcopy(self) -> None:
        """Force a post-copy migration into ``postcopy-paused`` (``migrate-pause``)."""

    @abstractmethod
    async def recover_postcopy(self, uri: str) -> str:
        """On the destination, wait for a paused post-copy migration to reconnect at ``uri``
        (``tcp:HOST:PORT``, port 0 for any); return the URI actually bound."""

    @abstractmethod
    async def query_migration(self) -> MigrationProgress:
        """The current migration status and statistics."""

    @abstractmethod
    async def graphics(self) -> list[GraphicsEndpoint]:
        """Where the guest's displays listen (empty without graphics)."""

    @abstractmethod
    async def relocate_graphics_clients(self, endpoint: GraphicsEndpoint) -> None:
        """Tell connected display clients where the guest will be (SPICE only)."""


class Driver(ABC):
    """Starts guests on one host."""

    name: str
    #: This host's certificate directory for encrypted migration streams (the
    #: ``transport.certdir`` layout, which is QEMU's ``tls-creds-x509`` one), or None: the
    #: host cannot take part in a migration with TLS.
    tls_dir: Path | None = None

    @abstractmethod
    async def start(self, domain: Domain, *, mode: StartMode) -> Instance:
        """Start ``domain`` and return its instance once the hypervisor answers, with the
        capabilities a hypervisor keeps for its whole life (``events``) already on."""

    @abstractmethod
    async def attach(self, domain: Domain) -> Instance | None:
        """Reconnect to a guest this host already runs (after a daemon restart), or None."""

    @abstractmethod
    async def close(self) -> None:
        """Release the driver's own resources; running guests keep running."""
