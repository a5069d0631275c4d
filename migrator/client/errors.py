"""The error every client call raises: :class:`ClientError`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.errors import MigratorError

#: Codes the daemon answers with that callers act on (the CLI among them).
NO_DOMAIN = "no-domain"
BUSY = "busy"
INVALID_STATE = "invalid-state"
INVALID_ARGUMENT = "invalid-argument"
MIGRATION_FAILED = "migration-failed"
UNREACHABLE = "unreachable"


class ClientError(MigratorError):
    """A call to a daemon failed.

    Attributes:
        code: the daemon's error code (``no-domain``, ``busy``, ``invalid-state``,
            ``invalid-argument``, ``migration-failed``, ...), or ``unreachable`` when the
            daemon could not be reached or the connection broke.
        message: what is wrong, for people.
        details: structured facts the daemon sent along.
    """

    code = "client-error"

    def __init__(
        self, message: str, *, code: str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.details: dict[str, Any] = dict(details or {})
