"""Errors of the ``params`` package: one root, :class:`ParamsError`.

Every validation failure names the parameter (``name``: libvirt's typed-parameter name or
QMP name as the input used it) when one is at fault.
"""

from __future__ import annotations


class ParamsError(ValueError):
    """Root of all errors raised by the ``params`` package.

    Attributes:
        message: what is wrong, for people.
        name: the parameter or capability at fault, when there is one.
    """

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name

    def __str__(self) -> str:
        return self.message
