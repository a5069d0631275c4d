"""Two ``migrator daemon`` subprocesses on real QEMU with mutual TLS, driven through the
command line, for the CLI's real-QEMU tests."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from migrator.cli import main
from migrator.demo.certificates import CLIENT_NAME, create_certificates
from migrator.demo.daemons import DaemonProcess, DaemonSpec
from migrator.demo.guest import (
    definition_xml,
    free_serial_port,
    guest_definition,
    with_serial_port,
)
from migrator.domain import parse_domain
from migrator.testguest.kernel import build_kernel
from tests.cli.conftest import HOSTS, BackgroundLoop

#: At 8 MiB/s a guest that rewrites 8 MiB every 125 ms never converges: each pass finds
#: its whole working set dirty again.
SLOW = ("--bandwidth", "8")
#: Guard only: how long a migration may take before the test gives up on it.
GUARD_S = 120


@dataclass
class QemuHosts:
    directory: Path
    daemons: dict[str, DaemonProcess]
    client_tls_dir: Path

    def options(self, host: str) -> list[str]:
        return ["-c", self.daemons[host].tls_uri, "--tls-dir", str(self.client_tls_dir)]

    def cli(self, *arguments: str, host: str = "host-a") -> Result:
        return CliRunner().invoke(main, [*self.options(host), *arguments])

    def migrate(
        self, name: str, *arguments: str, give_up_on: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``migrate NAME`` from host-a to host-b, as a subprocess. It is interrupted (which
        aborts the job) if its stderr shows ``give_up_on``, or if it hangs (then the test
        fails)."""
        command = [sys.executable, "-m", "migrator", *self.options("host-a"), "migrate", name]
        errors = self.directory / f"{name}.stderr"
        with errors.open("w") as stderr:
            process = subprocess.Popen(
                [*command, self.daemons["host-b"].tls_uri, *arguments],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        deadline = time.monotonic() + GUARD_S
        try:
            while process.poll() is None:
                if give_up_on is not None and give_up_on in errors.read_text():
                    break
                assert time.monotonic() < deadline, f"migrate hangs: {errors.read_text()}"
                time.sleep(0.1)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                stdout, _ = process.communicate(timeout=GUARD_S)
            finally:
                process.kill()
        return subprocess.CompletedProcess(
            process.args, process.returncode, stdout, errors.read_text()
        )

    def start_restless_guest(self, name: str) -> None:
        kernel = self.directory / f"{name}.kernel"
        kernel.write_bytes(build_kernel(working_set_mib=8, dirty_rate_mib_s=64))
        port = free_serial_port()
        domain = guest_definition(name, kernel=kernel, memory_mib=64, serial_port=port)
        path = self.directory / f"{name}.xml"
        path.write_text(definition_xml(domain))
        for command in (("define", str(path)), ("start", name)):
            result = self.cli(*command)
            assert result.exit_code == 0, result.output

    def destination_xml(self, name: str) -> str:
        """A file with ``name``'s definition for host-b: another serial port, since both
        hosts are this machine (what a user does with ``dumpxml --migratable``)."""
        dumped = self.cli("dumpxml", name, "--migratable")
        assert dumped.exit_code == 0, dumped.output
        domain = with_serial_port(parse_domain(dumped.output), free_serial_port())
        path = self.directory / f"{name}.destination.xml"
        path.write_text(definition_xml(domain))
        return str(path)

    def state(self, host: str, name: str) -> str | None:
        result = self.cli("list", "--all", "--json", host=host)
        assert result.exit_code == 0, result.output
        return {item["name"]: item["state"] for item in json.loads(result.output)}.get(name)


@pytest.fixture(scope="module")
def qemu_hosts() -> Iterator[QemuHosts]:
    directory = Path(tempfile.mkdtemp(prefix="mq", dir="/tmp"))
    certificates = create_certificates(directory / "pki", hosts=HOSTS)
    background = BackgroundLoop()
    daemons: dict[str, DaemonProcess] = {}
    try:
        for name in HOSTS:
            spec = DaemonSpec(
                name=name,
                directory=directory / name,
                tls_dir=certificates.hosts[name],
                driver="qemu",
                allowed_clients=(*(other for other in HOSTS if other != name), CLIENT_NAME),
            )
            daemons[name] = background.run(DaemonProcess.start(spec))
        yield QemuHosts(directory, daemons, certificates.client)
    finally:
        for daemon in daemons.values():
            background.run(daemon.stop())
        background.close()
        shutil.rmtree(directory, ignore_errors=True)
