"""`migrator certs`: the CA, host directories in QEMU's layout, and `show`."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from migrator.cli.certs_cmd import certs_group
from transport import CertificateError, TLSClientConfig, TLSServerConfig
from transport.certdir import HOST_FILES, load_certificate


def _run(*args: str) -> str:
    result = CliRunner().invoke(certs_group, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    _run("create-ca", str(tmp_path / "pki"))
    return tmp_path / "pki"


def test_create_ca_writes_a_ca_with_a_private_key(ca_dir: Path) -> None:
    assert _mode(ca_dir / "ca-key.pem") == 0o600
    certificate = load_certificate(ca_dir / "ca-cert.pem")
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign


def test_create_ca_refuses_to_overwrite_a_ca(ca_dir: Path) -> None:
    before = (ca_dir / "ca-key.pem").read_bytes()
    result = CliRunner().invoke(certs_group, ["create-ca", str(ca_dir)])
    assert isinstance(result.exception, CertificateError)
    assert "refusing to overwrite" in str(result.exception)
    assert (ca_dir / "ca-key.pem").read_bytes() == before


def test_issue_writes_the_qemu_layout_with_both_usages_and_the_sans(ca_dir: Path) -> None:
    _run(
        "issue",
        str(ca_dir),
        "--name",
        "host-a",
        "--ip",
        "192.0.2.7",
        "--ip",
        "::1",
        "--dns",
        "host-a.example",
        "--days",
        "30",
    )
    host_dir = ca_dir / "host-a"
    assert sorted(p.name for p in host_dir.iterdir()) == sorted(HOST_FILES)
    for key in ("server-key.pem", "client-key.pem"):
        assert _mode(host_dir / key) == 0o600
    assert (host_dir / "ca-cert.pem").read_bytes() == (ca_dir / "ca-cert.pem").read_bytes()
    certificate = load_certificate(host_dir / "server-cert.pem")
    assert (host_dir / "client-cert.pem").read_bytes() == (
        host_dir / "server-cert.pem"
    ).read_bytes()
    assert certificate.subject.rfc4514_string() == "CN=host-a"
    alt_names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt_names.get_values_for_type(x509.DNSName) == ["host-a", "host-a.example"]
    assert alt_names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("::1"),
    ]
    usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and not key_usage.key_cert_sign
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.days == 30
    TLSServerConfig.from_dir(host_dir, allowed_clients={"host-b"}).context()
    TLSClientConfig.from_dir(host_dir).context()


def test_an_ip_address_name_becomes_an_ip_san(ca_dir: Path) -> None:
    _run("issue", str(ca_dir), "--name", "10.1.2.3")
    certificate = load_certificate(ca_dir / "10.1.2.3" / "server-cert.pem")
    alt_names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt_names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "host_a"], "not a valid host name"),
        (["--name", "../escape"], "not a valid host name"),
        (["--name", "host-a", "--ip", "300.1.1.1"], "not an IP address"),
        (["--name", "host-a", "--dns", "-bad"], "not a valid host name"),
    ],
)
def test_issue_refuses_bad_names(ca_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(certs_group, ["issue", str(ca_dir), *args])
    assert isinstance(result.exception, CertificateError)
    assert message in str(result.exception)
    assert not (ca_dir / "host-a").exists()


def test_issue_refuses_to_overwrite_a_host(ca_dir: Path) -> None:
    _run("issue", str(ca_dir), "--name", "host-a")
    result = CliRunner().invoke(certs_group, ["issue", str(ca_dir), "--name", "host-a"])
    assert isinstance(result.exception, CertificateError)
    assert "refusing to overwrite" in str(result.exception)


def test_issue_needs_a_ca(tmp_path: Path) -> None:
    result = CliRunner().invoke(certs_group, ["issue", str(tmp_path), "--name", "host-a"])
    assert isinstance(result.exception, CertificateError)
    assert "ca-cert.pem" in str(result.exception)


def test_show_prints_subject_sans_and_validity(ca_dir: Path) -> None:
    _run("issue", str(ca_dir), "--name", "host-a", "--ip", "127.0.0.1", "--days", "10")
    output = _run("show", str(ca_dir / "host-a" / "server-cert.pem"))
    certificate = load_certificate(ca_dir / "host-a" / "server-cert.pem")
    assert "subject:      CN=host-a" in output
    assert "issuer:       CN=migrator-ca" in output
    assert "DNS names:    host-a" in output
    assert "IP addresses: 127.0.0.1" in output
    assert f"not after:    {certificate.not_valid_after_utc.isoformat()}" in output
    assert "key usages:   serverAuth, clientAuth" in output
    assert "CA:           no" in output


def test_show_refuses_a_file_that_is_not_a_certificate(ca_dir: Path) -> None:
    result = CliRunner().invoke(certs_group, ["show", str(ca_dir / "ca-key.pem")])
    assert isinstance(result.exception, CertificateError)
    assert "cannot read a PEM certificate" in str(result.exception)


def test_an_expected_failure_is_one_line_through_the_migrator_command(ca_dir: Path) -> None:
    from migrator.cli import main

    result = CliRunner().invoke(main, ["certs", "create-ca", str(ca_dir)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: ") and "refusing to overwrite" in result.output
