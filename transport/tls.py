"""Mutual TLS 1.3 settings, and the identity checks made on top of certificate verification.

TLS proves that a peer's certificate comes from the cluster CA; the application then checks
whom it names. A client checks that the server's certificate names the host it meant to
reach (``ssl`` hostname checking against the subject alternative names); a server checks that
the client certificate's CN or a DNS alternative name is on its allow-list.

Both configurations load from a host directory laid out by :mod:`transport.certdir`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from transport.certdir import CA_CERT, CLIENT_CERT, CLIENT_KEY, SERVER_CERT, SERVER_KEY
from transport.errors import AuthenticationError, ConfigError
from transport.pki import certificate_names


@dataclass(frozen=True)
class TLSServerConfig:
    """What a TLS listener presents and whom it lets in.

    Attributes:
        ca_cert: the cluster CA certificate; client certificates must chain to it.
        cert: this host's certificate; key: its private key.
        allowed_clients: names (certificate CN or DNS alternative name) that may connect.
    """

    ca_cert: Path
    cert: Path
    key: Path
    allowed_clients: frozenset[str]

    def __post_init__(self) -> None:
        if not self.allowed_clients:
            raise ConfigError("a TLS server needs at least one allowed client name")

    @classmethod
    def from_dir(cls, directory: Path, *, allowed_clients: Iterable[str]) -> TLSServerConfig:
        """The server files of the host directory ``directory``."""
        return cls(
            ca_cert=directory / CA_CERT,
            cert=directory / SERVER_CERT,
            key=directory / SERVER_KEY,
            allowed_clients=frozenset(allowed_clients),
        )

    def context(self) -> ssl.SSLContext:
        """A TLS 1.3 server context that requires a client certificate from the CA.

        Raises:
            ConfigError: a certificate or key file is missing or unreadable.
        """
        context = _context(server_side=True, ca_cert=self.ca_cert, cert=self.cert, key=self.key)
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def admit(self, peer_certificate_der: bytes | None) -> str:
        """The name under which the client with this (already verified) certificate may connect.

        Raises:
            AuthenticationError: no certificate, or none of its names is on the allow-list.
        """
        if not peer_certificate_der:
            raise AuthenticationError("the client presented no certificate")
        names = certificate_names(x509.load_der_x509_certificate(peer_certificate_der))
        for name in names:
            if name in self.allowed_clients:
                return name
        raise AuthenticationError(
            f"client certificate for {', '.join(names) or 'no name'} is not on the allow-list",
            details={"names": list(names)},
        )


@dataclass(frozen=True)
class TLSClientConfig:
    """What a TLS client presents and which CA it trusts.

    Attributes:
        ca_cert: the cluster CA certificate; the server's certificate must chain to it.
        cert: this host's certificate; key: its private key.
    """

    ca_cert: Path
    cert: Path
    key: Path

    @classmethod
    def from_dir(cls, directory: Path) -> TLSClientConfig:
        """The client files of the host directory ``directory``."""
        return cls(
            ca_cert=directory / CA_CERT, cert=directory / CLIENT_CERT, key=directory / CLIENT_KEY
        )

    def context(self) -> ssl.SSLContext:
        """A TLS 1.3 client context that verifies the server's certificate and name.

        Raises:
            ConfigError: a certificate or key file is missing or unreadable.
        """
        context = _context(server_side=False, ca_cert=self.ca_cert, cert=self.cert, key=self.key)
        context.check_hostname = True
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def _context(*, server_side: bool, ca_cert: Path, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_verify_locations(cafile=ca_cert)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA certificate {ca_cert}: {exc}") from exc
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the certificate {cert} with key {key}: {exc}") from exc
    return context
