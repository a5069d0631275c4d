"""QEMU's run states and migration statuses, as plain enums the pure core can use."""

from __future__ import annotations

import enum


class RunState(enum.Enum):
    """The guest's run state as the hypervisor reports it (QEMU ``query-status`` names)."""

    RUNNING = "running"
    PAUSED = "paused"
    PRELAUNCH = "prelaunch"
    INMIGRATE = "inmigrate"
    POSTMIGRATE = "postmigrate"
    FINISH_MIGRATE = "finish-migrate"
    SHUTDOWN = "shutdown"
    INTERNAL_ERROR = "internal-error"
    IO_ERROR = "io-error"
    GUEST_PANICKED = "guest-panicked"
    SAVE_VM = "save-vm"
    RESTORE_VM = "restore-vm"
    DEBUG = "debug"
    SUSPENDED = "suspended"
    WATCHDOG = "watchdog"
    COLO = "colo"

    @property
    def cpus_running(self) -> bool:
        return self is RunState.RUNNING


class MigrationStatus(enum.Enum):
    """QEMU's migration status (``query-migrate`` and the ``MIGRATION`` event)."""

    NONE = "none"
    SETUP = "setup"
    ACTIVE = "active"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    PRE_SWITCHOVER = "pre-switchover"
    DEVICE = "device"
    WAIT_UNPLUG = "wait-unplug"
    POSTCOPY_ACTIVE = "postcopy-active"
    POSTCOPY_PAUSED = "postcopy-paused"
    POSTCOPY_RECOVER = "postcopy-recover"
    COLO = "colo"

    @property
    def finished(self) -> bool:
        """True for the statuses a migration never leaves by itself."""
        return self in _FINISHED

    @property
    def in_postcopy(self) -> bool:
        return self in _POSTCOPY


_FINISHED = frozenset(
    {MigrationStatus.COMPLETED, MigrationStatus.FAILED, MigrationStatus.CANCELLED}
)
_POSTCOPY = frozenset(
    {
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.POSTCOPY_PAUSED,
        MigrationStatus.POSTCOPY_RECOVER,
    }
)
