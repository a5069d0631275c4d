"""Drive a source and a destination machine together, with no I/O (h11's ConnectionPair)."""

from __future__ import annotations

from dataclasses import dataclass, field

from migrator.phases import DestinationJob, SourceJob
from migrator.phases.actions import Action
from migrator.phases.events import Event
from params import MigrationFlag


def names(actions: list[Action]) -> list[str]:
    return [action.name for action in actions]


@dataclass
class Pair:
    flags: MigrationFlag
    source: SourceJob = field(init=False)
    destination: DestinationJob = field(init=False)
    log: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.source = SourceJob(flags=self.flags)
        self.destination = DestinationJob(flags=self.flags)

    def src(self, event: Event) -> list[str]:
        done = names(self.source.handle(event))
        self.log.append(("source", event.trigger, done))
        return done

    def dst(self, event: Event) -> list[str]:
        done = names(self.destination.handle(event))
        self.log.append(("destination", event.trigger, done))
        return done
