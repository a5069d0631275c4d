"""Errors of the ``migrator.demo`` package: one root, :class:`DemoError`."""

from __future__ import annotations

from migrator.errors import MigratorError


class DemoError(MigratorError):
    """A step of the demo failed; what it had started has been stopped.

    Attributes:
        step: the step that failed, in words ("start host-a", "wait for heartbeats", ...).
    """

    code = "demo-failed"

    def __init__(self, message: str, *, step: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step
