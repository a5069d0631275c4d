"""`migrator cookie show` through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cookies import Cookie, dump_public_key, encode, generate_signing_key, to_xml
from migrator.cli import main
from tests.cookies.conftest import LIBVIRT_COOKIE, SOURCE_HOST


def _show(*arguments: str) -> Result:
    return CliRunner().invoke(main, ["cookie", "show", *arguments])


def test_shows_the_libvirt_example() -> None:
    result = _show(str(LIBVIRT_COOKIE))
    assert result.exit_code == 0, result.output
    for expected in ("vm1", "src.example", "lockstate (mandatory)", "sanlock", "multifd"):
        assert expected in result.stdout
    assert "pause-before-switchover (auto)" in result.stdout


def test_json_for_an_xml_cookie(tmp_path: Path, cookie: Cookie) -> None:
    path = tmp_path / "cookie.xml"
    path.write_text(to_xml(cookie))
    result = _show("--json", str(path))
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["form"], shown["signature"], shown["signer"]) == ("xml", "unsigned", None)
    assert shown["cookie"]["lockstate"] == {"driver": "sanlock", "leases": "vm1:lease:0"}
    assert shown["cookie"]["graphics"]["tls_port"] == 5902
    assert shown["cookie"]["network"] is None
    assert shown["cookie"]["mandatory"] == ["lockstate", "persistent"]


def test_signed_cookie_without_a_key_is_marked_not_verified(
    tmp_path: Path, cookie: Cookie, signing_key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "cookie.bin"
    path.write_bytes(encode(cookie, signing_key=signing_key))
    table = _show(str(path))
    assert table.exit_code == 0, table.output
    assert "signature not verified" in table.stdout
    shown = json.loads(_show("--json", str(path)).stdout)
    assert (shown["form"], shown["signature"], shown["signer"]) == (
        "msgpack",
        "not verified",
        SOURCE_HOST,
    )
    assert shown["cookie"]["statistics"]["downtime"] == 40


def test_signed_cookie_with_its_key_is_verified(
    tmp_path: Path, cookie: Cookie, signing_key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "cookie.bin"
    path.write_bytes(encode(cookie, signing_key=signing_key))
    key = tmp_path / "host.pub"
    key.write_bytes(dump_public_key(signing_key.public_key()))
    result = _show("--key", str(key), str(path))
    assert result.exit_code == 0, result.output
    assert "signature verified" in result.stdout


def test_wrong_key_is_one_line_error(
    tmp_path: Path, cookie: Cookie, signing_key: Ed25519PrivateKey
) -> None:
    path = tmp_path / "cookie.bin"
    path.write_bytes(encode(cookie, signing_key=signing_key))
    key = tmp_path / "other.pub"
    key.write_bytes(dump_public_key(generate_signing_key().public_key()))
    result = _show("--key", str(key), str(path))
    assert result.exit_code == 1
    assert result.stderr == "error: cookie signature is invalid\n"


def test_bad_file_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage"
    path.write_bytes(b"\x94\x01\xc1 definitely not a cookie")
    result = _show(str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: malformed cookie envelope")
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""


def test_bad_xml_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "cookie.xml"
    path.write_text("<qemu-migration><name>vm1</name></qemu-migration>")
    result = _show(str(path))
    assert result.exit_code == 1
    assert result.stderr == "error: missing uuid element in migration data\n"


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    result = _show(str(tmp_path / "absent"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1


def test_key_for_an_xml_cookie_is_a_usage_error(tmp_path: Path) -> None:
    key = tmp_path / "host.pub"
    key.write_bytes(bytes(32))
    result = _show("--key", str(key), str(LIBVIRT_COOKIE))
    assert result.exit_code == 2
    assert "--key applies to signed msgpack cookies" in result.stderr
