"""Errors of the phase machines."""

from __future__ import annotations

from migrator.errors import MigratorError


class PhaseError(MigratorError):
    """Root of the phase machines' errors. ``side`` and ``state`` say where it happened."""

    code = "phase-error"

    def __init__(self, message: str, *, side: str, state: str) -> None:
        super().__init__(message)
        self.side = side
        self.state = state


class IllegalEvent(PhaseError):
    """The event is not legal in the side's current state; nothing changed."""

    code = "illegal-event"

    def __init__(self, *, side: str, state: str, event: str) -> None:
        super().__init__(
            f"{side}: event '{event}' is not allowed in phase '{state}'", side=side, state=state
        )
        self.event = event


class PhaseRefused(PhaseError):
    """The request is understood but refused in the current situation; nothing changed."""

    code = "operation-invalid"


class JobFailed(PhaseError):
    """The side hit an internal error earlier and stays failed; no further events apply."""

    code = "job-failed"
