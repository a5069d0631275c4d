"""`migrator params ...`: Show and convert migration parameters (the parameter table)."""

from __future__ import annotations

import click


@click.group("params")
def params_group() -> None:
    """Show and convert migration parameters (the parameter table)."""
