"""Injected faults, as data: what goes wrong, on which host and instance, and when.

A fault fires when its point is reached on its host (and instance, if named): a driver call
(:class:`Operation`) or a migration status that the instance's migration (outgoing on the
source, incoming on the destination) enters. Faults fire once unless ``repeat`` is set.
When several match a point, the first added fires: successive visits consume them in turn.

What each kind does:

==================  =========================================  ==================================
kind                at a call                                  at a migration status
==================  =========================================  ==================================
COMMAND_FAILURE     the call raises ``CommandFailed``           the migration fails there (in
                                                               post-copy: pauses)
CRASH               the process dies; the call raises          the process dies
                    ``InstanceGone``
HANG                the call, and every later call, never      the migration stops progressing
                    returns until the process dies             until cancelled or killed
LINK_DOWN           the host is cut off from every other       same
                    host for ``duration_ms``; the call runs
==================  =========================================  ==================================
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass

from migrator.drivers.base import MigrationStatus
from migrator.drivers.sim.errors import SimError


class Operation(enum.Enum):
    """A driver call; the value is the QMP command (or process action) it stands for."""

    START = "launch"
    RUN_STATE = "query-status"
    PAUSE = "stop"
    RESUME = "cont"
    SHUTDOWN = "system_powerdown"
    KILL = "kill"
    SUPPORTED_CAPABILITIES = "query-migrate-capabilities"
    QUERY_PARAMETERS = "query-migrate-parameters"
    SET_CAPABILITIES = "migrate-set-capabilities"
    SET_PARAMETERS = "migrate-set-parameters"
    ADD_OBJECT = "object-add"
    DELETE_OBJECT = "object-del"
    START_INCOMING = "migrate-incoming"
    MIGRATE = "migrate"
    CANCEL_MIGRATION = "migrate_cancel"
    CONTINUE_MIGRATION = "migrate-continue"
    START_POSTCOPY = "migrate-start-postcopy"
    PAUSE_POSTCOPY = "migrate-pause"
    RECOVER_POSTCOPY = "migrate-recover"
    QUERY_MIGRATION = "query-migrate"
    GRAPHICS = "query-display"
    RELOCATE_GRAPHICS = "client_migrate_info"


class FaultKind(enum.Enum):
    COMMAND_FAILURE = "command-failure"
    CRASH = "crash"
    HANG = "hang"
    LINK_DOWN = "link-down"


#: Statuses after which a migration has nothing left to fail or to stall.
_ENDING = frozenset(
    {
        MigrationStatus.CANCELLING,
        MigrationStatus.COMPLETED,
        MigrationStatus.FAILED,
        MigrationStatus.CANCELLED,
    }
)


@dataclass(frozen=True)
class FaultPoint:
    """Where a fault fires: a call, or a migration status (``pass_number``: the pre-copy
    pass, counted as ``dirty_sync_count`` is, for status ``ACTIVE`` only).

    Build one with :meth:`on_call`, :meth:`on_status` or :meth:`on_pass`.

    Raises:
        SimError: neither or both of a call and a status, a pass without ``ACTIVE``, a pass
            below 1, or a fault on ``kill`` (which never fails).
    """

    operation: Operation | None = None
    status: MigrationStatus | None = None
    pass_number: int | None = None

    def __post_init__(self) -> None:
        if (self.operation is None) == (self.status is None):
            raise SimError("a fault point is either a call or a status", field="point")
        if self.operation is Operation.KILL:
            raise SimError("kill cannot fail", field="operation")
        if self.pass_number is not None:
            if self.status is not MigrationStatus.ACTIVE:
                raise SimError("a pass number needs status 'active'", field="pass_number")
            if self.pass_number < 1:
                raise SimError("passes are counted from 1", field="pass_number")

    @classmethod
    @functools.cache
    def on_call(cls, operation: Operation) -> FaultPoint:
        return cls(operation=operation)

    @classmethod
    @functools.cache
    def on_status(cls, status: MigrationStatus) -> FaultPoint:
        return cls(status=status)

    @classmethod
    @functools.cache
    def on_pass(cls, pass_number: int) -> FaultPoint:
        return cls(status=MigrationStatus.ACTIVE, pass_number=pass_number)


@dataclass(frozen=True)
class Fault:
    """One injected fault. ``instance`` is a domain name, or ``None`` for any instance on
    ``host``; ``duration_ms`` is for ``LINK_DOWN`` only.

    Raises:
        SimError: a ``LINK_DOWN`` without a positive duration, a duration on another kind,
            or a failure or hang at a status after which nothing can fail or stall.
    """

    kind: FaultKind
    host: str
    point: FaultPoint
    instance: str | None = None
    duration_ms: float = 0.0
    repeat: bool = False

    def __post_init__(self) -> None:
        if self.kind is FaultKind.LINK_DOWN:
            if not self.duration_ms > 0:
                raise SimError("a link-down fault needs a positive duration", field="duration_ms")
        elif self.duration_ms:
            raise SimError("only a link-down fault has a duration", field="duration_ms")
        if self.kind in (FaultKind.COMMAND_FAILURE, FaultKind.HANG) and (
            self.point.status in _ENDING
        ):
            raise SimError(
                f"a {self.kind.value} fault cannot fire at status '{self.point.status.value}'",
                field="point",
            )

    def matches(self, *, host: str, instance: str, point: FaultPoint) -> bool:
        return self.host == host and self.instance in (None, instance) and self.point == point


class FaultBook:
    """The faults of a world that have not fired yet (and the repeating ones).

    ``on_fire`` is told of every fault that fires, with the instance it hit.
    """

    def __init__(self, on_fire: Callable[[Fault, str], None]) -> None:
        self._pending: list[Fault] = []
        self._on_fire = on_fire

    @property
    def pending(self) -> tuple[Fault, ...]:
        return tuple(self._pending)

    @property
    def armed(self) -> bool:
        """Whether any fault may still fire (callers skip building points otherwise)."""
        return bool(self._pending)

    def add(self, fault: Fault) -> None:
        self._pending.append(fault)

    def fire(self, *, host: str, instance: str, point: FaultPoint) -> Fault | None:
        """The fault that fires at ``point``: the first added that matches. One fault fires
        per point reached, so several faults on one point fire on successive visits."""
        for fault in self._pending:
            if fault.matches(host=host, instance=instance, point=point):
                if not fault.repeat:
                    self._pending.remove(fault)
                self._on_fire(fault, instance)
                return fault
        return None
