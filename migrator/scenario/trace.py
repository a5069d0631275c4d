"""The trace of one scenario run, and golden traces to compare it with.

A trace is a list of records, one line each: ``KIND HOST TEXT``. It holds what the
protocol did, not when: phase transitions as each side stores them, the features of every
cookie exchanged, the QMP commands the engine sent (queries left out: how often QEMU is
polled depends on timing), the faults fired, what a restarted daemon decided, and the
result of each step. A golden trace is a scenario's recorded trace, one line per record; a
replay reports the first line where the two part.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from migrator.daemon.atomic import atomic_write

GOLDEN_DIRECTORY = "golden"
GOLDEN_SUFFIX = ".trace"


class TraceKind(enum.Enum):
    STEP = "step"
    PHASE = "phase"
    JOB_END = "end"
    COOKIE = "cookie"
    QMP = "qmp"
    FAULT = "fault"
    DAEMON = "daemon"
    RECOVERY = "recovery"
    RESULT = "result"


@dataclass(frozen=True)
class TraceRecord:
    kind: TraceKind
    host: str
    text: str

    @property
    def line(self) -> str:
        return f"{self.kind.value} {self.host} {self.text}".rstrip()


class Trace:
    """Records in order; ``listeners`` are told of each record as it is added."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []
        self.listeners: list[Callable[[TraceRecord], None]] = []

    def add(self, kind: TraceKind, host: str, text: str = "") -> None:
        record = TraceRecord(kind, host, text)
        self.records.append(record)
        for listener in self.listeners:
            listener(record)

    @property
    def lines(self) -> list[str]:
        return [record.line for record in self.records]


@dataclass(frozen=True)
class Divergence:
    """Where a trace parts from its golden trace: ``line`` counts from 1; ``expected`` or
    ``actual`` is None past the end of that trace."""

    line: int
    expected: str | None
    actual: str | None

    @property
    def text(self) -> str:
        if self.actual is None:
            return f"trace line {self.line}: expected '{self.expected}', the trace ended"
        if self.expected is None:
            return f"trace line {self.line}: unexpected '{self.actual}' past the golden trace"
        return f"trace line {self.line}: expected '{self.expected}', got '{self.actual}'"


def first_divergence(expected: Sequence[str], actual: Sequence[str]) -> Divergence | None:
    """The first line where ``actual`` differs from ``expected``; None when they agree."""
    for index in range(max(len(expected), len(actual))):
        want = expected[index] if index < len(expected) else None
        got = actual[index] if index < len(actual) else None
        if want != got:
            return Divergence(index + 1, want, got)
    return None


def golden_path(scenario: Path, *, driver: str) -> Path:
    """Where the golden trace of ``scenario`` on ``driver`` is kept."""
    return scenario.parent / GOLDEN_DIRECTORY / f"{scenario.stem}.{driver}{GOLDEN_SUFFIX}"


def read_golden(path: Path) -> list[str] | None:
    """The lines of a golden trace; None when there is none.

    Raises:
        OSError: the file exists but cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return text.splitlines()


def write_golden(path: Path, lines: Sequence[str]) -> None:
    """Store ``lines`` as a golden trace, atomically and durably.

    Raises:
        OSError: the directory cannot be made.
        StateDirError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{line}\n" for line in lines).encode()
    atomic_write(path, data, mode=0o644)
