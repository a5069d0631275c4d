"""The error of a command line whose options contradict each other."""

from __future__ import annotations

from migrator.errors import MigratorError


class OptionError(MigratorError):
    """Options that exclude or need each other, or a value the command cannot use.

    Attributes:
        option: the option at fault, without its dashes.
    """

    code = "invalid-argument"

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option
