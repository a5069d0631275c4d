"""Certificate directories on disk: the cluster CA and one directory per host.

Layout (host directories use the file names QEMU's ``tls-creds-x509`` looks for in its
``dir``, so the same directory serves QEMU's migration stream, as server or as client)::

    DIR/ca-cert.pem              the CA certificate
    DIR/ca-key.pem               the CA private key (0600): keep it off the hosts
    DIR/<host>/ca-cert.pem       copy of the CA certificate
    DIR/<host>/server-cert.pem   the host certificate (serverAuth + clientAuth)
    DIR/<host>/server-key.pem    its private key (0600)
    DIR/<host>/client-cert.pem   the same certificate, under the client's name
    DIR/<host>/client-key.pem    the same key (0600)

Nothing is ever overwritten: a CA or host directory that already holds these files is
refused.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from transport.errors import CertificateError
from transport.pki import Credentials, issue_host, new_ca

CA_CERT = "ca-cert.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server-cert.pem"
SERVER_KEY = "server-key.pem"
CLIENT_CERT = "client-cert.pem"
CLIENT_KEY = "client-key.pem"

#: Every file of a host directory.
HOST_FILES = (CA_CERT, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY)

_PRIVATE = 0o600
_PUBLIC = 0o644


def create_ca(directory: Path, *, name: str = "migrator-ca", days: int = 3650) -> Path:
    """Create a CA in ``directory`` (made if missing); return the CA certificate's path.

    Raises:
        CertificateError: a CA already exists there.
        OSError: the files cannot be written.
    """
    _refuse_existing(directory, (CA_CERT, CA_KEY), what="a CA")
    ca = new_ca(name=name, valid_for=dt.timedelta(days=days))
    directory.mkdir(parents=True, exist_ok=True)
    _write_key(directory / CA_KEY, ca.key)
    _write_certificate(directory / CA_CERT, ca.certificate)
    return directory / CA_CERT


def issue(
    directory: Path,
    *,
    name: str,
    ips: Sequence[str] = (),
    dns: Sequence[str] = (),
    days: int = 365,
) -> Path:
    """Issue a certificate for host ``name`` with the CA in ``directory``.

    Writes the host layout into ``directory/name`` and returns that path.

    Raises:
        CertificateError: no readable CA in ``directory``; the host directory already holds
            certificates; a bad name, DNS name or IP address.
        OSError: the files cannot be written.
    """
    host_dir = directory / name
    _refuse_existing(host_dir, HOST_FILES, what="certificates")
    ca = load_ca(directory)
    host = issue_host(ca, name=name, ips=ips, dns=dns, valid_for=dt.timedelta(days=days))
    write_host_directory(host_dir, ca_certificate=ca.certificate, host=host)
    return host_dir


def write_host_directory(
    host_dir: Path, *, ca_certificate: x509.Certificate, host: Credentials
) -> None:
    """Write the host layout for ``host`` into ``host_dir`` (made if missing).

    Raises:
        CertificateError: ``host_dir`` already holds one of the files.
        OSError: the files cannot be written.
    """
    host_dir.mkdir(parents=True, exist_ok=True)
    _write_certificate(host_dir / CA_CERT, ca_certificate)
    for cert_file, key_file in ((SERVER_CERT, SERVER_KEY), (CLIENT_CERT, CLIENT_KEY)):
        _write_key(host_dir / key_file, host.key)
        _write_certificate(host_dir / cert_file, host.certificate)


def load_ca(directory: Path) -> Credentials:
    """The CA kept in ``directory``.

    Raises:
        CertificateError: the CA files are missing or unreadable, or the key is not EC.
    """
    certificate = load_certificate(directory / CA_CERT)
    key_path = directory / CA_KEY
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(
            f"cannot read the CA key {key_path}: {exc}", details={"path": str(key_path)}
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{key_path} is not an EC private key")
    return Credentials(key, certificate)


def load_certificate(path: Path) -> x509.Certificate:
    """The PEM certificate at ``path``.

    Raises:
        CertificateError: the file is missing, unreadable or not a PEM certificate.
    """
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CertificateError(
            f"cannot read a PEM certificate from {path}: {reason}", details={"path": str(path)}
        ) from exc


def _refuse_existing(directory: Path, names: Sequence[str], *, what: str) -> None:
    present = [name for name in names if (directory / name).exists()]
    if present:
        raise CertificateError(
            f"{directory} already holds {what} ({', '.join(present)}); refusing to overwrite",
            details={"path": str(directory)},
        )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(path, pem, mode=_PRIVATE)


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    _write_new(path, certificate.public_bytes(serialization.Encoding.PEM), mode=_PUBLIC)


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` with ``mode`` from the start (a key is never readable by others)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise CertificateError(f"{path} already exists; refusing to overwrite") from None
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), mode)  # the umask may have taken bits away from a public file
        file.write(data)
