"""Errors of the network lab."""

from __future__ import annotations

from migrator.errors import MigratorError


class NetLabError(MigratorError):
    """A network-lab command failed.

    Attributes:
        command: the command line that failed (empty when none ran).
        stderr: what it printed on stderr.
    """

    code = "netlab"

    def __init__(self, message: str, *, command: tuple[str, ...] = (), stderr: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.stderr = stderr


class NetLabUnsupported(NetLabError):
    """This machine cannot do what was asked (not root, no iproute2, a queueing discipline
    missing from the kernel)."""

    code = "netlab-unsupported"
