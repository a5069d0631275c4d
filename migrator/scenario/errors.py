"""Errors of the scenario package.

Error tree::

    ScenarioError              root: a scenario cannot be loaded or replayed
    +-- ScenarioFileError      a scenario file is unreadable or says something wrong
    +-- ConnectionLost         an in-process caller's connection to a daemon is gone
    +-- DriverUnavailable      no cluster can replay scenarios on the driver asked for
"""

from __future__ import annotations

from pathlib import Path

from migrator.errors import MigratorError


class ScenarioError(MigratorError):
    """Root of the scenario package's errors."""

    code = "scenario-error"


class ScenarioFileError(ScenarioError):
    """A scenario file cannot be read or is wrong.

    Attributes:
        path: the file.
        field: where in the file (``faults[2].at``), empty for the file as a whole.
    """

    code = "bad-scenario"

    def __init__(self, message: str, *, path: Path, field: str = "") -> None:
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.field = field


class ConnectionLost(ScenarioError):
    """The daemon on ``host`` went away, or the connection to it dropped, while a call to
    it was pending or about to be made."""

    code = "connection-lost"

    def __init__(self, message: str, *, host: str) -> None:
        super().__init__(message)
        self.host = host


class DriverUnavailable(ScenarioError):
    """Scenarios cannot be replayed on ``driver`` (yet)."""

    code = "driver-unavailable"

    def __init__(self, message: str, *, driver: str) -> None:
        super().__init__(message)
        self.driver = driver
