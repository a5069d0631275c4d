"""Errors of the host daemon."""

from __future__ import annotations

from pathlib import Path

from migrator.errors import MigratorError


class StateDirError(MigratorError):
    """The daemon's state directory cannot be opened, read or written.

    Attributes:
        path: the file or directory concerned, when there is one.
    """

    code = "state-dir"

    def __init__(self, message: str, *, path: Path | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.path = path
