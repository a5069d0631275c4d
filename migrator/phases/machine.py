"""The shared executor of the source and destination phase tables.

Rules of this package (as h11 states for its core):

1. Everything that decides a phase change lives in the transition tables of
   ``source.py`` and ``destination.py``; code here only runs them.
2. The machines do no I/O. They take events and return the actions to carry out.
3. An event that no table row accepts raises :class:`IllegalEvent` and changes nothing. An
   unexpected exception inside a callback puts the side in its FAILED state, which is
   sticky: every later event raises :class:`JobFailed`.

Each side has one ``transitions.Machine`` shared by all its jobs, so that starting a job
costs almost nothing. Every callback name in a table is resolved
against the model class when the machine is built, so a typo fails at import time.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from transitions import EventData, Machine, MachineError

from migrator.phases.actions import Action
from migrator.phases.errors import IllegalEvent, JobFailed, PhaseRefused
from migrator.phases.events import Event, StatusChanged
from migrator.status import MigrationStatus
from params import MigrationFlag

#: Migration statuses after which the stream is not moving: failed, cancelled, or paused in
#: post-copy.
BROKEN = frozenset(
    {MigrationStatus.FAILED, MigrationStatus.CANCELLED, MigrationStatus.POSTCOPY_PAUSED}
)


@dataclass(frozen=True)
class Row:
    """One transition: ``trigger`` moves ``source`` to ``dest`` (None: stays) when every
    condition holds and no ``unless`` does; ``after`` names the action planner."""

    trigger: str
    source: enum.Enum | tuple[enum.Enum, ...]
    dest: enum.Enum | None
    conditions: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    after: str | None = None

    def as_transition(self) -> dict[str, Any]:
        sources = list(self.source) if isinstance(self.source, tuple) else [self.source]
        spec: dict[str, Any] = {"trigger": self.trigger, "source": sources, "dest": self.dest}
        if self.conditions:
            spec["conditions"] = list(self.conditions)
        if self.unless:
            spec["unless"] = list(self.unless)
        if self.after:
            spec["after"] = self.after
        return spec


def row(
    trigger: str,
    source: enum.Enum | tuple[enum.Enum, ...],
    dest: enum.Enum | None,
    *,
    when: str | tuple[str, ...] = (),
    unless: str | tuple[str, ...] = (),
    then: str | None = None,
) -> Row:
    """Shorthand for a :class:`Row` (``when`` = conditions, ``then`` = after)."""
    return Row(
        trigger=trigger,
        source=source,
        dest=dest,
        conditions=(when,) if isinstance(when, str) else when,
        unless=(unless,) if isinstance(unless, str) else unless,
        after=then,
    )


class PhaseJob:
    """Base of one side's migration job: the model that a shared machine drives.

    Subclasses set ``side``, ``states`` (the phase Enum), ``initial``, ``failed`` and
    ``table`` and define the conditions and planners the table names.
    """

    side: ClassVar[str]
    states: ClassVar[type[enum.Enum]]
    initial: ClassVar[enum.Enum]
    failed: ClassVar[enum.Enum]
    finished: ClassVar[frozenset[enum.Enum]]
    #: Phases in which no phase request drives the job: it waits for the user (a resume)
    #: or for QEMU to finish by itself.
    waiting: ClassVar[frozenset[enum.Enum]]
    table: ClassVar[Sequence[Row]]
    _machine: ClassVar[Machine]

    state: enum.Enum  # set by the machine
    flags: MigrationFlag
    last_status: MigrationStatus
    #: Someone asked to abort the job: a stream that breaks from then on broke because of it
    #: (QEMU may report a cancel that interrupts a blocked stream as "failed").
    abort_requested: bool = False

    def __init__(self, *, phase: enum.Enum | None = None) -> None:
        self._actions: list[Action] = []
        self._event: Event | None = None
        # The shared machine drives this job without registering it as a model: it reads
        # and writes ``state`` and resolves callbacks on the job, and nothing is left behind
        # in the machine when the job is dropped.
        self.state = phase or self.initial

    @classmethod
    def build_machine(cls) -> None:
        """Check the table against this class and build the side's shared machine.

        Raises:
            TypeError: the table names a callback this class lacks, or a foreign state.
        """
        for entry in cls.table:
            names = [*entry.conditions, *entry.unless, *([entry.after] if entry.after else [])]
            for name in names:
                if not callable(getattr(cls, name, None)):
                    raise TypeError(f"{cls.__name__} table names unknown callback '{name}'")
            sources = entry.source if isinstance(entry.source, tuple) else (entry.source,)
            for state in (*sources, *([entry.dest] if entry.dest else [])):
                if not isinstance(state, cls.states):
                    raise TypeError(f"{cls.__name__} table uses foreign state {state!r}")
        cls._machine = Machine(
            model=None,
            states=cls.states,
            transitions=[entry.as_transition() for entry in cls.table],
            initial=cls.initial,
            auto_transitions=False,
            send_event=True,
            ignore_invalid_triggers=False,
        )

    # -- the one entry point -------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        """Apply ``event`` and return the actions to carry out, in order.

        Raises:
            IllegalEvent: no table row accepts the event in the current phase.
            PhaseRefused: the request is refused as things stand (nothing changed).
            JobFailed: this side failed earlier.
        """
        if self.state is self.failed:
            raise JobFailed(
                f"{self.side} migration job failed earlier", side=self.side, state=self.phase
            )
        self._actions = []
        self._event = event
        try:
            moved = self._machine.events[event.trigger].trigger(self, event=event)
        except (MachineError, KeyError):
            raise IllegalEvent(side=self.side, state=self.phase, event=event.trigger) from None
        except PhaseRefused:
            raise
        except Exception:
            self._machine.set_state(self.failed, model=self)
            raise
        finally:
            self._event = None
        if not moved:
            raise IllegalEvent(side=self.side, state=self.phase, event=event.trigger)
        return self._actions

    @property
    def stream_cancelled(self) -> bool:
        """Whether the migration stream ended cancelled, or broke once an abort was asked."""
        return self.last_status is MigrationStatus.CANCELLED or (
            self.abort_requested and self.last_status is MigrationStatus.FAILED
        )

    @property
    def phase(self) -> str:
        return str(self.state.value)

    @property
    def unattended(self) -> bool:
        """True while no phase request drives the job (libvirt's unattended migration): if
        QEMU's events end it now, nobody else will close it."""
        return self.state in self.waiting

    @property
    def done(self) -> bool:
        """True once the job has reached an end: no more events are expected."""
        return self.state in self.finished or self.state is self.failed

    # -- conditions both sides use ---------------------------------------------------------

    def offline(self, _: EventData) -> bool:
        return MigrationFlag.OFFLINE in self.flags

    def completed(self, data: EventData) -> bool:
        return self.status_in(data) is MigrationStatus.COMPLETED

    def broken(self, data: EventData) -> bool:
        """The migration stream failed, was cancelled, or paused in post-copy."""
        return self.status_in(data) in BROKEN

    def note_status(self, data: EventData) -> None:
        """Remember the migration status a ``status_changed`` event carries."""
        status = self.status_in(data)
        if status is not None:
            self.last_status = status

    # -- helpers for subclasses --------------------------------------------------------------

    def plan(self, *actions: Action) -> None:
        self._actions.extend(actions)

    @classmethod
    def status_in(cls, data: EventData) -> MigrationStatus | None:
        """The migration status a ``status_changed`` event carries, else None."""
        event = cls.event_of(data)
        return event.status if isinstance(event, StatusChanged) else None

    @staticmethod
    def event_of(data: EventData) -> Event:
        event = data.kwargs["event"]
        assert isinstance(event, Event)
        return event
