"""``migrator daemon`` as a process: its ready line, its options and configuration file, one
error line for a bad start, SIGTERM, and what a restarted daemon still knows."""

from __future__ import annotations

import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.client import Client, DomainState
from migrator.domain import format_domain
from tests.runtime.cluster import make_domain

from .processes import GUARD_S, DaemonProcess, short_directory


@pytest.fixture
def root() -> Iterator[Path]:
    with short_directory() as path:
        yield path


def run_daemon(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migrator", "daemon", *arguments],
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        check=False,
    )


async def test_ready_line_sigterm_and_restart(root: Path) -> None:
    daemon = DaemonProcess("host-a", root / "state", driver="sim").start()
    try:
        assert daemon.uris == [f"migrator+unix://{root}/state/daemon.sock"]
        assert stat.S_IMODE((root / "state" / "daemon.sock").stat().st_mode) == 0o600
        async with await Client.connect(daemon.unix_uri) as client:
            await client.define(format_domain(make_domain("kept")))
            await client.define(format_domain(make_domain("running")))
            await client.start("running")
            uuid = (await client.host_info()).uuid
        assert daemon.stop() == 0
        assert not (root / "state" / "daemon.sock").exists()

        daemon.start()
        async with await Client.connect(daemon.unix_uri) as client:
            assert (await client.host_info()).uuid == uuid
            listed = await client.list_domains(include_inactive=True)
            # A simulated guest lives as long as its daemon's process.
            assert {(d.name, d.state) for d in listed} == {
                ("kept", DomainState.SHUTOFF),
                ("running", DomainState.SHUTOFF),
            }
        assert "running no longer runs here" in daemon.log_text()
        assert "migrator.daemon.events kept defined (updated) domain=kept" in daemon.log_text()
    finally:
        daemon.kill()


async def test_configuration_file_with_options_winning(root: Path) -> None:
    config = root / "daemon.toml"
    config.write_text(
        f'state_dir = "{root}/state"\nhost_name = "from-file"\ndriver = "sim"\n'
        f'unix = "{root}/file.sock"\n'
    )
    daemon = DaemonProcess("from-option", root / "state", driver="sim")
    daemon.extra = ("--config", str(config))
    daemon.start()
    try:
        assert daemon.unix_uri == f"migrator+unix://{root}/file.sock"
        async with await Client.connect(daemon.unix_uri) as client:
            assert (await client.host_info()).name == "from-option"
    finally:
        assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--listen", "nowhere"), "error: listen must be HOST:PORT, not 'nowhere'"),
        (("--listen", "127.0.0.1:0"), "error: listen needs tls_dir (this host's certificates)"),
        (("--host-uuid", "x"), "error: invalid host UUID 'x' (from --host-uuid)"),
    ],
)
def test_a_bad_start_prints_one_error_line(
    root: Path, arguments: tuple[str, ...], message: str
) -> None:
    result = run_daemon("--state-dir", str(root / "state"), "--driver", "sim", *arguments)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in result.stderr


def test_a_second_daemon_on_the_same_state_directory_is_refused(root: Path) -> None:
    first = DaemonProcess("host-a", root / "state", driver="sim").start()
    try:
        result = run_daemon("--state-dir", str(root / "state"), "--driver", "sim")
        assert result.returncode == 1
        assert "is in use by another daemon" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        assert first.stop() == 0
