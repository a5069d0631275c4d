"""A private certificate authority and host certificates, in memory (no files).

EC P-256 keys and SHA-256 signatures. A host certificate carries both extended key usages
(serverAuth and clientAuth), so one certificate serves a host as a TLS server and as a
client, for this transport and for QEMU's ``tls-creds-x509`` alike.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from transport.errors import CertificateError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Certificates start this long before their issue time, to absorb clock skew between hosts.
BACKDATE = dt.timedelta(minutes=5)

_USAGE_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
}

_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Credentials:
    """A private key and the certificate for it."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class CertificateSummary:
    """What ``migrator certs show`` prints about a certificate."""

    subject: str
    issuer: str
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    is_ca: bool
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    extended_key_usages: tuple[str, ...]
    sha256_fingerprint: str


def new_ca(
    *, name: str = "migrator-ca", valid_for: dt.timedelta, now: dt.datetime | None = None
) -> Credentials:
    """A self-signed CA that may sign host certificates (and no further CAs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or _now()) - BACKDATE
    certificate = (
        _builder(subject=_name(name), issuer=_name(name), key=key, start=start, valid_for=valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Credentials(key, certificate)


def issue_host(
    ca: Credentials,
    *,
    name: str,
    ips: Sequence[str] = (),
    dns: Sequence[str] = (),
    valid_for: dt.timedelta,
    now: dt.datetime | None = None,
) -> Credentials:
    """A host certificate signed by ``ca``, valid from ``now`` (less :data:`BACKDATE`).

    The subject CN is ``name``; the subject alternative names are ``name`` (as an IP address
    if it is one, else as a DNS name), then ``dns`` and ``ips``.

    Raises:
        CertificateError: ``name`` or a ``dns`` entry is not a valid host name, or an ``ips``
            entry is not an IP address.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or _now()) - BACKDATE
    ca_public = ca.key.public_key()
    certificate = (
        _builder(
            subject=_name(name),
            issuer=ca.certificate.subject,
            key=key,
            start=start,
            valid_for=valid_for,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(_alt_names(name, ips, dns)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Credentials(key, certificate)


def certificate_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """The names a certificate claims: its subject CN (first), then its DNS alternative names."""
    names = [
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    names.extend(_dns_names(certificate))
    return tuple(dict.fromkeys(names))


def summarize(certificate: x509.Certificate) -> CertificateSummary:
    """The facts about ``certificate`` that people check."""
    try:
        is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usage_names = tuple(_USAGE_NAMES.get(oid, oid.dotted_string) for oid in usages)
    except x509.ExtensionNotFound:
        usage_names = ()
    return CertificateSummary(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial=certificate.serial_number,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=is_ca,
        dns_names=_dns_names(certificate),
        ip_addresses=_ip_addresses(certificate),
        extended_key_usages=usage_names,
        sha256_fingerprint=certificate.fingerprint(hashes.SHA256()).hex(":"),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    start: dt.datetime,
    valid_for: dt.timedelta,
) -> x509.CertificateBuilder:
    if valid_for <= dt.timedelta(0):
        raise CertificateError(f"validity must be positive, not {valid_for}")
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + BACKDATE + valid_for)
    )


def _key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _alt_names(name: str, ips: Sequence[str], dns: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    name_ip = _as_ip(name)
    names.append(x509.IPAddress(name_ip) if name_ip else x509.DNSName(_check_host_name(name)))
    names.extend(x509.DNSName(_check_host_name(entry)) for entry in dns)
    for entry in ips:
        address = _as_ip(entry)
        if address is None:
            raise CertificateError(f"not an IP address: {entry!r}")
        names.append(x509.IPAddress(address))
    return list(dict.fromkeys(names))


def _as_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _check_host_name(name: str) -> str:
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise CertificateError(
            f"not a valid host name: {name!r} (letters, digits and hyphens, dot-separated)"
        )
    return name


def _alt_names_of(certificate: x509.Certificate) -> x509.SubjectAlternativeName | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None


def _dns_names(certificate: x509.Certificate) -> tuple[str, ...]:
    alt_names = _alt_names_of(certificate)
    return tuple(alt_names.get_values_for_type(x509.DNSName)) if alt_names else ()


def _ip_addresses(certificate: x509.Certificate) -> tuple[str, ...]:
    alt_names = _alt_names_of(certificate)
    if alt_names is None:
        return ()
    return tuple(str(address) for address in alt_names.get_values_for_type(x509.IPAddress))
