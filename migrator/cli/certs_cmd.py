"""`migrator certs ...`: Create a private CA and host certificates for mutual TLS."""

from __future__ import annotations

import click


@click.group("certs")
def certs_group() -> None:
    """Create a private CA and host certificates for mutual TLS."""
