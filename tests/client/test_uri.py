"""Daemon URIs: the two forms, the environment default, and one clear error otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.client import ClientError, parse_uri, tls_uri, unix_uri
from migrator.client.uri import Transport, resolve_tls_dir, resolve_uri


def test_the_two_forms_round_trip() -> None:
    unix = parse_uri("migrator+unix:///run/migrator/daemon.sock")
    assert (unix.transport, unix.path) == (Transport.UNIX, Path("/run/migrator/daemon.sock"))
    assert str(unix) == "migrator+unix:///run/migrator/daemon.sock"
    tls = parse_uri("migrator+tls://host-b.example:16509")
    assert (tls.transport, tls.host, tls.port) == (Transport.TLS, "host-b.example", 16509)
    assert str(parse_uri("migrator+tls://[::1]:16509")) == "migrator+tls://[::1]:16509"
    assert tls_uri("127.0.0.1", 4) == "migrator+tls://127.0.0.1:4"
    assert unix_uri(Path("/a b")) == "migrator+unix:///a b"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("http://host:1", "the scheme must be migrator+unix or migrator+tls"),
        ("migrator+unix://relative/path", "absolute path"),
        ("migrator+unix:relative", "absolute path"),
        ("migrator+tls://host", "a host and a port"),
        ("migrator+tls://host:port", "a host and a port"),
        ("migrator+tls://:16509", "a host and a port"),
        ("migrator+tls://host:1/path", "a host and a port"),
    ],
)
def test_malformed_uris_are_named(text: str, words: str) -> None:
    with pytest.raises(ClientError) as refused:
        parse_uri(text)
    assert refused.value.code == "invalid-argument"
    assert f"invalid daemon URI '{text}'" in refused.value.message
    assert words in refused.value.message


def test_the_default_uri_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIGRATOR_DEFAULT_URI", raising=False)
    with pytest.raises(ClientError) as missing:
        resolve_uri(None)
    assert missing.value.message == "no daemon URI: pass -c URI or set MIGRATOR_DEFAULT_URI"
    monkeypatch.setenv("MIGRATOR_DEFAULT_URI", "migrator+unix:///x.sock")
    assert resolve_uri(None).path == Path("/x.sock")
    assert resolve_uri("migrator+unix:///y.sock").path == Path("/y.sock")


def test_the_tls_directory_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIGRATOR_TLS_DIR", raising=False)
    assert resolve_tls_dir(None) is None
    monkeypatch.setenv("MIGRATOR_TLS_DIR", "/etc/tls")
    assert resolve_tls_dir(None) == Path("/etc/tls")
    assert resolve_tls_dir("/other") == Path("/other")
