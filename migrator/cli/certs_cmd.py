"""`migrator certs ...`: Create a private CA and host certificates for mutual TLS.

The host directories that ``issue`` writes also serve QEMU's ``tls-creds-x509`` (its ``dir``
property), as server and as client; see :mod:`transport.certdir` for the layout.
"""

from __future__ import annotations

from pathlib import Path

import click

from transport import certdir
from transport.pki import summarize

_DIRECTORY = click.Path(file_okay=False, path_type=Path)


@click.group("certs")
def certs_group() -> None:
    """Create a private CA and host certificates for mutual TLS."""


@certs_group.command("create-ca")
@click.argument("directory", type=_DIRECTORY)
@click.option("--name", default="migrator-ca", show_default=True, help="The CA's common name.")
@click.option(
    "--days", type=click.IntRange(min=1), default=3650, show_default=True, help="Validity."
)
def create_ca(directory: Path, name: str, days: int) -> None:
    """Create the cluster CA in DIRECTORY (ca-cert.pem, and ca-key.pem with mode 0600).

    Refuses to overwrite an existing CA. Keep ca-key.pem off the hosts.
    """
    cert_path = certdir.create_ca(directory, name=name, days=days)
    click.echo(f"created CA {name!r}: {cert_path}")


@certs_group.command("issue")
@click.argument("directory", type=_DIRECTORY)
@click.option("--name", required=True, help="Host name: the certificate's CN and first SAN.")
@click.option("--ip", "ips", multiple=True, help="An IP address the host is reached at.")
@click.option("--dns", "dns", multiple=True, help="Another DNS name of the host.")
@click.option(
    "--days", type=click.IntRange(min=1), default=365, show_default=True, help="Validity."
)
def issue(
    directory: Path, name: str, ips: tuple[str, ...], dns: tuple[str, ...], days: int
) -> None:
    """Issue a certificate for host NAME with the CA in DIRECTORY.

    Writes DIRECTORY/NAME/ with ca-cert.pem, server-cert.pem, server-key.pem,
    client-cert.pem and client-key.pem (keys 0600): the layout QEMU's tls-creds-x509
    expects, usable by the host as TLS server and as client.
    """
    host_dir = certdir.issue(directory, name=name, ips=ips, dns=dns, days=days)
    click.echo(f"issued certificate for {name!r}: {host_dir}")


@certs_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def show(file: Path) -> None:
    """Print the subject, alternative names and validity of the PEM certificate FILE."""
    summary = summarize(certdir.load_certificate(file))
    lines = [
        ("subject", summary.subject),
        ("issuer", summary.issuer),
        ("serial", f"{summary.serial:x}"),
        ("not before", summary.not_before.isoformat()),
        ("not after", summary.not_after.isoformat()),
        ("CA", "yes" if summary.is_ca else "no"),
        ("DNS names", ", ".join(summary.dns_names) or "-"),
        ("IP addresses", ", ".join(summary.ip_addresses) or "-"),
        ("key usages", ", ".join(summary.extended_key_usages) or "-"),
        ("SHA-256", summary.sha256_fingerprint),
    ]
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        click.echo(f"{label + ':':<{width + 1}} {value}")
