"""A migration scenario as data: the hosts, the guest, the migration, the faults injected
along the way, the steps after it, and the outcome expected.

Hosts are named by their *role* in the scenario's first migration: ``source`` and
``destination``. A fault fires at a :class:`Point`: before or after a protocol phase
(``before:perform``), at a QEMU migration status on one side (``status:active@source``), or
as the engine sends one QMP command on one side (``command:cont@destination``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from migrator.status import MigrationStatus
from params import MigrationFlag


class DriverName(enum.Enum):
    """The hypervisor drivers a scenario can be replayed on."""

    SIM = "sim"
    QEMU = "qemu"


class Role(enum.Enum):
    """A host's part in the scenario's first migration."""

    SOURCE = "source"
    DESTINATION = "destination"

    @property
    def other(self) -> Role:
        return Role.DESTINATION if self is Role.SOURCE else Role.SOURCE


class Phase(enum.Enum):
    """A protocol phase, as one daemon runs it."""

    BEGIN = "begin"
    PREPARE = "prepare"
    PERFORM = "perform"
    FINISH = "finish"
    CONFIRM = "confirm"
    BEGIN_RESUME = "begin_resume"
    PREPARE_RESUME = "prepare_resume"
    PERFORM_RESUME = "perform_resume"
    FINISH_RESUME = "finish_resume"
    CONFIRM_RESUME = "confirm_resume"

    @property
    def role(self) -> Role:
        """The side that runs this phase."""
        return Role.DESTINATION if self in _DESTINATION_PHASES else Role.SOURCE

    @property
    def emits_cookie(self) -> bool:
        return self in _COOKIE_PHASES


_DESTINATION_PHASES = frozenset(
    {Phase.PREPARE, Phase.FINISH, Phase.PREPARE_RESUME, Phase.FINISH_RESUME}
)
_COOKIE_PHASES = frozenset(
    {Phase.BEGIN, Phase.PREPARE, Phase.PERFORM, Phase.FINISH, Phase.BEGIN_RESUME}
)

#: The QMP commands (and process actions) a fault can be attached to: what the engine sends.
COMMANDS = frozenset(
    {
        "launch",
        "stop",
        "cont",
        "system_powerdown",
        "kill",
        "migrate-set-capabilities",
        "migrate-set-parameters",
        "migrate-incoming",
        "migrate",
        "migrate_cancel",
        "migrate-continue",
        "migrate-start-postcopy",
        "migrate-pause",
        "migrate-recover",
        "client_migrate_info",
    }
)


class PointKind(enum.Enum):
    BEFORE = "before"
    AFTER = "after"
    STATUS = "status"
    COMMAND = "command"


@dataclass(frozen=True)
class Point:
    """Where a fault fires. Phase points name the phase (its side is the phase's);
    status and command points name the side they happen on."""

    kind: PointKind
    role: Role
    phase: Phase | None = None
    status: MigrationStatus | None = None
    command: str | None = None

    @classmethod
    def before(cls, phase: Phase) -> Point:
        return cls(PointKind.BEFORE, phase.role, phase=phase)

    @classmethod
    def after(cls, phase: Phase) -> Point:
        return cls(PointKind.AFTER, phase.role, phase=phase)

    @classmethod
    def on_status(cls, status: MigrationStatus, role: Role) -> Point:
        return cls(PointKind.STATUS, role, status=status)

    @classmethod
    def on_command(cls, command: str, role: Role) -> Point:
        return cls(PointKind.COMMAND, role, command=command)

    @property
    def text(self) -> str:
        """The point as scenario files write it."""
        if self.phase is not None:
            return f"{self.kind.value}:{self.phase.value}"
        what = self.status.value if self.status is not None else self.command
        return f"{self.kind.value}:{what}@{self.role.value}"


class FaultKind(enum.Enum):
    """What goes wrong (or what an operator does) at a point."""

    #: The QEMU process of the guest on the target host dies.
    QEMU_CRASH = "qemu-crash"
    #: The target host's daemon dies; with ``restart`` it starts again at once.
    DAEMON_KILLED = "daemon-killed"
    #: The connection carrying the protocol drops (both daemons see their peer go).
    PEER_DROPPED = "peer-dropped"
    #: The two hosts cannot reach each other for ``seconds``.
    PARTITION = "partition"
    #: The link between the hosts becomes slow (``rate_mib_s``, ``delay_ms``).
    SLOW_LINK = "slow-link"
    #: The operator aborts the job (``domjobabort``).
    CANCEL = "cancel"
    #: ``seconds`` later, if the migration still runs, ``action`` is taken.
    TIMEOUT = "timeout"
    #: The target host's disk is full: writing a definition fails.
    DISK_FULL = "disk-full"
    #: The phase's cookie is altered on its way to the next phase.
    COOKIE_TAMPERED = "cookie-tampered"
    #: The phase's cookie announces a mandatory feature nobody knows (signed by its sender).
    COOKIE_UNKNOWN_FEATURE = "cookie-unknown-feature"
    #: The operator switches the migration to post-copy.
    SWITCH_TO_POSTCOPY = "switch-to-postcopy"

    @property
    def alters_cookie(self) -> bool:
        return self in (FaultKind.COOKIE_TAMPERED, FaultKind.COOKIE_UNKNOWN_FEATURE)

    @property
    def calls_daemon(self) -> bool:
        """Whether the fault's effect calls into a daemon's jobs (and so must not run from
        inside one of them)."""
        return self in _CALLS_DAEMON


_CALLS_DAEMON = frozenset(
    {
        FaultKind.PEER_DROPPED,
        FaultKind.CANCEL,
        FaultKind.TIMEOUT,
        FaultKind.SWITCH_TO_POSTCOPY,
    }
)


class TimeoutAction(enum.Enum):
    """What a timeout does to a migration still running (virsh's and Nova's choices)."""

    ABORT = "abort"
    POSTCOPY = "postcopy"
    SUSPEND = "suspend"


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` at ``at``, acting on the ``target`` host."""

    kind: FaultKind
    at: Point
    target: Role
    restart: bool = True
    seconds: float = 0.0
    rate_mib_s: float = 0.0
    delay_ms: float = 0.0
    action: TimeoutAction = TimeoutAction.ABORT

    @property
    def text(self) -> str:
        return f"{self.kind.value} on {self.target.value} at {self.at.text}"


class GuestStart(enum.Enum):
    """How the guest is found when the scenario begins."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shutoff"


@dataclass(frozen=True)
class GuestSpec:
    """The guest: its memory and what it does to it."""

    name: str = "vm"
    memory_mib: int = 1024
    working_set_mib: int = 0
    dirty_rate_mib_s: int = 0
    start: GuestStart = GuestStart.RUNNING
    persistent: bool = True


@dataclass(frozen=True)
class HostsSpec:
    """The two hosts and the link between them (``rate_mib_s`` None: the driver's default)."""

    source: str = "host-a"
    destination: str = "host-b"
    rate_mib_s: float | None = None
    delay_ms: float = 0.0
    #: Both hosts report the same host UUID (cloned machines).
    same_uuid: bool = False

    def name(self, role: Role) -> str:
        return self.source if role is Role.SOURCE else self.destination

    def role(self, host: str) -> Role:
        return Role.SOURCE if host == self.source else Role.DESTINATION


class Mode(enum.Enum):
    """Who drives the five phases."""

    #: The source daemon, talking to the destination daemon (``PEER2PEER``).
    P2P = "p2p"
    #: A client, calling each phase on each daemon and carrying the cookies.
    DIRECT = "direct"


@dataclass(frozen=True)
class MigrationSpec:
    """The migration; ``repeat`` times, each from where the guest runs to the other host."""

    mode: Mode = Mode.P2P
    flags: MigrationFlag = MigrationFlag.LIVE | MigrationFlag.PEER2PEER
    typed: dict[str, object] = field(default_factory=dict)
    repeat: int = 1


class JobResult(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"


class StepKind(enum.Enum):
    """What the scenario does after the migration."""

    #: Let ``seconds`` pass.
    WAIT = "wait"
    #: Migrate again, from where the guest runs to the other host.
    MIGRATE = "migrate"
    #: Resume the failed post-copy migration.
    RESUME_POSTCOPY = "resume-postcopy"
    #: Kill the daemon on ``host`` and start it again.
    RESTART_DAEMON = "restart-daemon"


@dataclass(frozen=True)
class Step:
    """One step after the migration, with its expected result (migrate and resume)."""

    kind: StepKind
    seconds: float = 0.0
    host: Role = Role.SOURCE
    result: JobResult | None = None
    error: str | None = None


class GuestState(enum.Enum):
    """The guest on one host, as its QEMU process shows it."""

    RUNNING = "running"
    PAUSED = "paused"
    ABSENT = "absent"


@dataclass(frozen=True)
class Expectation:
    """The outcome expected once every step has run.

    ``result`` and ``error`` (a substring of the error message) are the first migration's;
    ``open_jobs`` are the hosts whose daemon still holds a job record at the end.
    ``heartbeat`` and ``memory_checksum`` are checked on drivers that run a real guest.
    """

    result: JobResult
    guest: dict[Role, GuestState]
    defined_on: frozenset[Role]
    error: str | None = None
    open_jobs: frozenset[Role] = frozenset()
    heartbeat: bool = False
    memory_checksum: bool = False


@dataclass(frozen=True)
class KnownIssue:
    """A defect a scenario shows and that is not fixed yet: ``reason`` says what is wrong,
    ``differences`` are substrings of exactly the differences it causes."""

    reason: str
    differences: tuple[str, ...]


@dataclass(frozen=True)
class Scenario:
    """One scenario file."""

    name: str
    path: Path
    description: str
    drivers: frozenset[DriverName]
    hosts: HostsSpec
    guest: GuestSpec
    migration: MigrationSpec
    faults: tuple[Fault, ...]
    steps: tuple[Step, ...]
    expect: Expectation
    #: A defect the scenario shows and that is not fixed yet: the replay is expected to
    #: differ from the expectation in exactly these ways, and passing is reported (so that
    #: the note is removed).
    known_issue: KnownIssue | None = None
