"""A rollback journal per job: each compensating action is recorded before its side effect.

When a job ends in a way its phase table did not plan for (an internal error in the
machine), the runtime drains the journal newest-first to put things back.
"""

from __future__ import annotations

from collections import deque

from migrator.phases.actions import (
    Action,
    ApplyParams,
    CreateTLSCredentials,
    DeleteTLSCredentials,
    KillGuest,
    PauseGuest,
    RestoreParams,
    ResumeGuest,
    StartIncoming,
)

#: The action that undoes each side effect that has an undo.
COMPENSATIONS: dict[type[Action], Action] = {
    StartIncoming: KillGuest(),
    CreateTLSCredentials: DeleteTLSCredentials(),
    ApplyParams: RestoreParams(),
    PauseGuest: ResumeGuest(),
}


class RollbackJournal:
    """Compensations in the order they were recorded."""

    def __init__(self, entries: list[Action] | None = None) -> None:
        self._entries: deque[Action] = deque(entries or [])

    def record(self, action: Action) -> None:
        """Note, before ``action`` is carried out, what would undo it; an action that is
        itself a recorded compensation (a planned rollback) settles that entry."""
        if action in self._entries:
            self._entries.remove(action)
        undo = COMPENSATIONS.get(type(action))
        if undo is not None and undo not in self._entries:
            self._entries.append(undo)

    def drain(self) -> list[Action]:
        """Every recorded compensation, newest first; the journal is empty afterwards."""
        pending = list(reversed(self._entries))
        self._entries.clear()
        return pending

    def names(self) -> list[str]:
        return [entry.name for entry in self._entries]

    def __len__(self) -> int:
        return len(self._entries)
