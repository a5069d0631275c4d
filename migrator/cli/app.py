"""The root ``migrator`` command group.

Expected failures print one line on stderr and exit non-zero; no traceback reaches a user.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from migrator import __version__
from migrator.cli.errors import EXIT_FAILURE, EXPECTED_ERRORS


class MigratorGroup(click.Group):
    """A click group that turns the packages' own errors into one clear line."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILURE)


@click.group(cls=MigratorGroup)
@click.version_option(__version__, prog_name="migrator")
def main() -> None:
    """Live-migrate, save, restore and snapshot QEMU/KVM virtual machines."""
