"""Expected failures through the real command line: one ``error:`` line on stderr, exit 1,
no traceback; nothing here needs a running daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from migrator.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def assert_one_error_line(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_an_unreachable_daemon_is_named_with_the_reason(tmp_path: Path) -> None:
    uri = f"migrator+unix://{tmp_path}/nobody.sock"
    result = run("-c", uri, "list")
    assert_one_error_line(result, uri, "No such file or directory")


def test_an_unreachable_tls_daemon(tmp_path: Path) -> None:
    from migrator.demo.certificates import create_certificates

    client = create_certificates(tmp_path / "pki", hosts=()).client
    uri = "migrator+tls://127.0.0.1:9"
    result = run("-c", uri, "--tls-dir", str(client), "dominfo", "vm")
    assert_one_error_line(result, uri)


def test_no_uri_at_all() -> None:
    result = run("list", env={"MIGRATOR_DEFAULT_URI": ""})
    assert_one_error_line(result, "no daemon URI: pass -c URI or set MIGRATOR_DEFAULT_URI")


def test_a_malformed_uri() -> None:
    result = run("-c", "qemu:///system", "list")
    assert_one_error_line(result, "invalid daemon URI 'qemu:///system'")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--live", "--offline"], "Options --live and --offline are mutually exclusive"),
        (["--p2p", "--direct"], "Options --p2p and --direct are mutually exclusive"),
        (["--live", "--parallel-connections", "4"], "Turn parallel migration on to tune it"),
        (["--live", "--bandwidth", "fast"], "invalid value 'fast' for migration parameter"),
        (["--live", "--timeout-postcopy", "--timeout", "5"], "Option --postcopy is required"),
        (["--offline", "--persistent", "--timeout", "5"], "Unexpected timeout for offline"),
        (["--live", "--param", "warp=9"], "parameter 'warp' not supported"),
        (["--live", "--xml", "/nonexistent/dest.xml"], "/nonexistent/dest.xml"),
    ],
)
def test_bad_migrate_options_are_refused_before_connecting(arguments, message) -> None:
    # The URI names no daemon: the command must fail on its options first.
    result = run("-c", "migrator+unix:///nonexistent.sock", "migrate", "vm", "x", *arguments)
    assert_one_error_line(result, message)


def test_an_unknown_option_is_a_usage_error() -> None:
    result = run("migrate", "vm", "uri", "--warp")
    assert result.exit_code == 2
    assert "No such option '--warp'" in result.stderr
