"""The root of every error the ``migrator`` package raises on purpose.

Error tree (each subpackage derives its own errors from :class:`MigratorError`)::

    MigratorError
    +-- DomainError            migrator.domain: bad domain XML, unsupported elements, ABI mismatch
    +-- ...                    (engine, drivers, daemon: added with those parts)

Errors carry structured fields besides their message so that callers (the CLI, the
daemon's RPC layer, orchestrators) never have to parse strings.
"""

from __future__ import annotations


class MigratorError(Exception):
    """Root of all errors raised on purpose by the ``migrator`` package.

    ``code`` is a short stable identifier for machines; the message is for people.
    """

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message
