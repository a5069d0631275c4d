"""Errors of the ``cookies`` package: one root, :class:`CookieError`."""

from __future__ import annotations


class CookieError(ValueError):
    """Root of all errors raised by the ``cookies`` package.

    Attributes:
        message: what is wrong, for people.
        feature: the cookie feature at fault, when there is one.
    """

    def __init__(self, message: str, *, feature: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.feature = feature

    def __str__(self) -> str:
        return self.message
