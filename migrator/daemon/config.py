"""The daemon's settings: command-line options, or the same keys in a TOML file (options win).

Keys (the options' names with ``_`` for ``-``)::

    state_dir = "/var/lib/migrator"       # required
    unix = "/run/migrator.sock"           # default: <state_dir>/daemon.sock
    listen = "0.0.0.0:16509"              # TLS listener (HOST:PORT, port 0: any free port)
    tls_dir = "/etc/migrator/tls/host-a"  # this host's certificates (transport.certdir);
                                          # QEMU's too, for migrations with --tls
    host_name = "host-a"                  # default: the machine's host name
    host_uuid = "..."                     # default: the one stored in the state directory
    driver = "qemu"                       # or "sim"
    migration_ports = "49152-49215"       # incoming migration streams; default: any port
    migration_address = "192.0.2.10"      # where sources send streams; default: see below
    allow_client = ["host-b", "admin"]    # certificate names allowed on the TLS listener
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migrator.daemon.errors import DaemonConfigError

#: The unix socket's file name in the state directory when no ``unix`` path is given.
DEFAULT_SOCKET = "daemon.sock"

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


class DriverKind(enum.Enum):
    """The hypervisor driver a daemon runs guests with."""

    QEMU = "qemu"
    SIM = "sim"


@dataclass(frozen=True)
class PortRange:
    """Ports ``low`` to ``high``, both included."""

    low: int
    high: int

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    """Everything a daemon is started with.

    ``migration_address`` is where incoming migration streams are awaited and where
    sources send them; when not given, the TLS listener's address if it is a specific one,
    else ``127.0.0.1`` (for the ``sim`` driver: the host name, the simulator's addresses).
    """

    state_dir: Path
    unix: Path | None = None
    listen: tuple[str, int] | None = None
    tls_dir: Path | None = None
    host_name: str = ""
    host_uuid: str | None = None
    driver: DriverKind = DriverKind.QEMU
    migration_ports: PortRange | None = None
    migration_address: str | None = None
    allow_clients: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.listen is not None:
            if self.tls_dir is None:
                raise DaemonConfigError(
                    "listen needs tls_dir (this host's certificates)", key="listen"
                )
            if not self.allow_clients:
                raise DaemonConfigError(
                    "listen needs at least one allow_client (a certificate name that may connect)",
                    key="allow_client",
                )
        if not self.host_name:
            object.__setattr__(self, "host_name", socket.gethostname())

    def options(self) -> list[str]:
        """The ``migrator daemon`` options that give this configuration."""
        values: dict[str, object] = {
            "state_dir": self.state_dir,
            "unix": self.unix,
            "listen": None if self.listen is None else _address_text(*self.listen),
            "tls_dir": self.tls_dir,
            "host_name": self.host_name,
            "host_uuid": self.host_uuid,
            "driver": self.driver.value,
            "migration_ports": self.migration_ports,
            "migration_address": self.migration_address,
        }
        options = [
            item
            for key, value in values.items()
            if value is not None
            for item in (f"--{key.replace('_', '-')}", str(value))
        ]
        for name in sorted(self.allow_clients):
            options += ["--allow-client", name]
        return options

    @property
    def socket_path(self) -> Path:
        """The unix socket the daemon listens on."""
        return (self.unix or self.state_dir / DEFAULT_SOCKET).absolute()

    @property
    def incoming_address(self) -> str:
        """Where incoming migration streams are awaited (see the class docstring)."""
        if self.migration_address:
            return self.migration_address
        if self.driver is DriverKind.SIM:
            return self.host_name
        if self.listen is not None and self.listen[0] not in _WILDCARDS:
            return self.listen[0]
        return "127.0.0.1"


def load_file(path: Path) -> dict[str, Any]:
    """The keys of the TOML file at ``path``, with ``-`` in names read as ``_``.

    Raises:
        DaemonConfigError: the file cannot be read or is not valid TOML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DaemonConfigError(f"cannot read the configuration file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DaemonConfigError(f"{path} is not valid TOML: {exc}") from None
    return {key.replace("-", "_"): value for key, value in data.items()}


def build_config(values: Mapping[str, Any]) -> DaemonConfig:
    """A configuration from option values and file keys (already merged; None = not given).

    Raises:
        DaemonConfigError: an unknown key, a missing ``state_dir``, or a bad value (the
            message names the key).
    """
    given = {key: value for key, value in values.items() if value is not None}
    unknown = sorted(given.keys() - _READERS.keys())
    if unknown:
        raise DaemonConfigError(f"unknown configuration key '{unknown[0]}'", key=unknown[0])
    if "state_dir" not in given:
        raise DaemonConfigError("a state directory is needed (--state-dir)", key="state_dir")
    fields = {}
    for key, value in given.items():
        name, reader = _READERS[key]
        fields[name] = reader(key, value)
    return DaemonConfig(**fields)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for an IPv6 address) as a host and a port.

    Raises:
        DaemonConfigError: not of that form, or a port out of range.
    """
    host, colon, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not port_text.isdigit():
        raise DaemonConfigError(f"listen must be HOST:PORT, not {text!r}", key="listen")
    return host or "0.0.0.0", _port("listen", int(port_text), low=0)


def parse_ports(text: str) -> PortRange:
    """``LOW-HIGH`` as a port range.

    Raises:
        DaemonConfigError: not of that form, ports out of range, or LOW above HIGH.
    """
    low, dash, high = text.partition("-")
    if not dash or not low.strip().isdigit() or not high.strip().isdigit():
        raise DaemonConfigError(
            f"migration_ports must be LOW-HIGH, not {text!r}", key="migration_ports"
        )
    ports = PortRange(
        _port("migration_ports", int(low), low=1), _port("migration_ports", int(high), low=1)
    )
    if ports.low > ports.high:
        raise DaemonConfigError(
            f"migration_ports {text!r}: LOW is above HIGH", key="migration_ports"
        )
    return ports


def _address_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(key: str, value: int, *, low: int) -> int:
    if not low <= value <= 65535:
        raise DaemonConfigError(f"{key}: port {value} is out of range", key=key)
    return value


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise DaemonConfigError(f"{key} must be a non-empty string, not {value!r}", key=key)
    return value


def _path(key: str, value: object) -> Path:
    return Path(value if isinstance(value, Path) else _text(key, value)).expanduser()


def _listen(key: str, value: object) -> tuple[str, int]:
    return parse_listen(_text(key, value))


def _ports(key: str, value: object) -> PortRange:
    if isinstance(value, list) and len(value) == 2:
        value = f"{value[0]}-{value[1]}"
    return parse_ports(_text(key, value))


def _driver(key: str, value: object) -> DriverKind:
    try:
        return DriverKind(_text(key, value))
    except ValueError:
        choices = ", ".join(kind.value for kind in DriverKind)
        raise DaemonConfigError(f"{key} must be one of {choices}, not {value!r}", key=key) from None


def _address(key: str, value: object) -> str:
    text = _text(key, value)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        if any(ch.isspace() or ch in "/:[]" for ch in text):
            raise DaemonConfigError(
                f"{key} must be a host name or address, not {text!r}", key=key
            ) from None
    return text


def _names(key: str, value: object) -> frozenset[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise DaemonConfigError(f"{key} must be a list of names, not {value!r}", key=key)
    return frozenset(_text(key, item) for item in items)


#: Each key: the configuration field it sets and how its value is read.
_READERS: dict[str, tuple[str, Any]] = {
    "state_dir": ("state_dir", _path),
    "unix": ("unix", _path),
    "listen": ("listen", _listen),
    "tls_dir": ("tls_dir", _path),
    "host_name": ("host_name", _text),
    "host_uuid": ("host_uuid", _text),
    "driver": ("driver", _driver),
    "migration_ports": ("migration_ports", _ports),
    "migration_address": ("migration_address", _address),
    "allow_client": ("allow_clients", _names),
}
