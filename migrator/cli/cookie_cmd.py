"""`migrator cookie ...`: Decode and inspect migration cookies."""

from __future__ import annotations

import click


@click.group("cookie")
def cookie_group() -> None:
    """Decode and inspect migration cookies."""
