"""Errors of the host daemon: one root, :class:`DaemonError`, under ``MigratorError``.

Error tree::

    DaemonError
    +-- StateDirError      the state directory cannot be opened, read or written
    +-- DaemonConfigError  a bad option or configuration file
    +-- RequestError       a client's request is refused; ``code`` is what the client sees
                           (``no-domain``, ``busy``, ``invalid-state``, ``invalid-argument``,
                           ``migration-failed``, ``unreachable``)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migrator.errors import MigratorError


class DaemonError(MigratorError):
    """Root of the daemon's errors."""

    code = "daemon-error"


class StateDirError(DaemonError):
    """The daemon's state directory cannot be opened, read or written.

    Attributes:
        path: the file or directory concerned, when there is one.
    """

    code = "state-dir"

    def __init__(self, message: str, *, path: Path | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.path = path


class DaemonConfigError(DaemonError):
    """An option or the configuration file is invalid.

    Attributes:
        key: the option concerned (its name in the configuration file).
    """

    code = "config-error"

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class RequestError(DaemonError):
    """A request is refused; ``code`` and ``details`` are what the client receives."""

    code = "request-error"

    def __init__(
        self, message: str, *, code: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.details: dict[str, Any] = dict(details or {})
