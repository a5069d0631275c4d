"""The daemon's settings: options and TOML keys, with one clear error per bad value."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from migrator.daemon.config import (
    DaemonConfig,
    DriverKind,
    PortRange,
    build_config,
    load_file,
    parse_listen,
    parse_ports,
)
from migrator.daemon.errors import DaemonConfigError
from migrator.daemon.ports import MigrationPorts, NoMigrationPort


def test_a_full_file_is_read(tmp_path: Path) -> None:
    file = tmp_path / "daemon.toml"
    file.write_text(
        """
        state-dir = "/srv/state"
        unix = "/run/m.sock"
        listen = "[::1]:16509"
        tls_dir = "/etc/tls/a"
        host_name = "host-a"
        host_uuid = "9d7f3a52-0c1c-4e4b-8f0a-0a4c2f1d2e3f"
        driver = "sim"
        migration_ports = [49152, 49215]
        migration_address = "192.0.2.10"
        allow_client = ["host-b", "admin"]
        """
    )
    config = build_config(load_file(file))
    assert config == DaemonConfig(
        state_dir=Path("/srv/state"),
        unix=Path("/run/m.sock"),
        listen=("::1", 16509),
        tls_dir=Path("/etc/tls/a"),
        host_name="host-a",
        host_uuid="9d7f3a52-0c1c-4e4b-8f0a-0a4c2f1d2e3f",
        driver=DriverKind.SIM,
        migration_ports=PortRange(49152, 49215),
        migration_address="192.0.2.10",
        allow_clients=frozenset({"host-b", "admin"}),
    )
    assert config.socket_path == Path("/run/m.sock")
    assert config.incoming_address == "192.0.2.10"


def test_defaults() -> None:
    config = build_config({"state_dir": "/srv/state"})
    assert config.socket_path == Path("/srv/state/daemon.sock")
    assert config.driver is DriverKind.QEMU
    assert config.host_name  # the machine's
    assert config.incoming_address == "127.0.0.1"
    sim = build_config({"state_dir": "/s", "driver": "sim", "host_name": "h"})
    assert sim.incoming_address == "h"
    listening = build_config(
        {"state_dir": "/s", "listen": "10.0.0.5:0", "tls_dir": "/t", "allow_client": "x"}
    )
    assert listening.incoming_address == "10.0.0.5"


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({}, "state_dir", "a state directory is needed"),
        ({"state_dir": "/s", "colour": "red"}, "colour", "unknown configuration key 'colour'"),
        ({"state_dir": "/s", "driver": "xen"}, "driver", "must be one of qemu, sim"),
        ({"state_dir": "/s", "listen": "nowhere"}, "listen", "HOST:PORT"),
        ({"state_dir": "/s", "listen": "h:70000", "tls_dir": "/t"}, "listen", "out of range"),
        ({"state_dir": "/s", "listen": "h:1"}, "listen", "listen needs tls_dir"),
        ({"state_dir": "/s", "listen": "h:1", "tls_dir": "/t"}, "allow_client", "allow_client"),
        ({"state_dir": "/s", "migration_ports": "9-1"}, "migration_ports", "LOW is above"),
        ({"state_dir": "/s", "migration_ports": "a-b"}, "migration_ports", "LOW-HIGH"),
        ({"state_dir": "/s", "migration_address": "a b"}, "migration_address", "host name"),
        ({"state_dir": "", "driver": "qemu"}, "state_dir", "non-empty string"),
    ],
)
def test_bad_values_are_named(values: dict[str, object], key: str, words: str) -> None:
    with pytest.raises(DaemonConfigError) as refused:
        build_config(values)
    assert refused.value.key == key
    assert words in str(refused.value)


def test_a_bad_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("state_dir = ")
    with pytest.raises(DaemonConfigError, match=r"bad\.toml is not valid TOML"):
        load_file(file)
    with pytest.raises(DaemonConfigError, match="cannot read"):
        load_file(tmp_path / "missing.toml")


def test_listen_and_port_forms() -> None:
    assert parse_listen(":0") == ("0.0.0.0", 0)
    assert parse_listen("127.0.0.1:16509") == ("127.0.0.1", 16509)
    assert parse_ports("49152-49153") == PortRange(49152, 49153)


def test_migration_ports_skip_ports_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        ports = MigrationPorts("127.0.0.1", PortRange(port, port + 1))
        assert ports.listen_uri() == f"tcp:127.0.0.1:{port + 1}"
        only = MigrationPorts("127.0.0.1", PortRange(port, port))
        with pytest.raises(NoMigrationPort, match=f"no free migration port in {port}-{port}"):
            only.listen_uri()
    assert MigrationPorts("::1", None).listen_uri() == "tcp:[::1]:0"


def test_options_give_back_the_configuration() -> None:
    config = build_config(
        {
            "state_dir": "/s",
            "listen": "[::1]:0",
            "tls_dir": "/t",
            "host_name": "h",
            "driver": "sim",
            "migration_ports": "5-9",
            "allow_client": ["b", "a"],
        }
    )
    options = config.options()
    allowed: list[str] = []
    values: dict[str, object] = {"allow_client": allowed}
    for flag, value in zip(options[::2], options[1::2], strict=True):
        key = flag.removeprefix("--").replace("-", "_")
        if key == "allow_client":
            allowed.append(value)
        else:
            values[key] = value
    assert build_config(values) == config
