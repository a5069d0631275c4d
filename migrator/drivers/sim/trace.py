"""The world's trace: every command an instance received, every event it emitted and every
fault that fired, in order, with virtual timestamps, so that two runs can be diffed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from migrator.drivers.base import InstanceEvent
from migrator.drivers.sim.faults import Fault, Operation


@dataclass(frozen=True)
class CommandRecord:
    """An instance received a command; ``arguments`` are QMP's."""

    at_ms: float
    host: str
    instance: str
    operation: Operation
    arguments: Mapping[str, object]


@dataclass(frozen=True)
class EventRecord:
    """An instance emitted an event."""

    at_ms: float
    host: str
    instance: str
    event: InstanceEvent


@dataclass(frozen=True)
class FaultRecord:
    """An injected fault fired on an instance."""

    at_ms: float
    host: str
    instance: str
    fault: Fault


TraceRecord = CommandRecord | EventRecord | FaultRecord
