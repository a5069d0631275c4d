"""Where incoming migration streams are awaited: the migration address, and a port from the
configured range (libvirt's ``migration_port_min``..``migration_port_max``) or any free one."""

from __future__ import annotations

import socket

from migrator.daemon.config import PortRange
from migrator.daemon.errors import DaemonError


class NoMigrationPort(DaemonError):
    """Every port of the range is in use."""

    code = "no-migration-port"


class MigrationPorts:
    """Picks the listen URI of each incoming QEMU (``tcp:ADDRESS:PORT``)."""

    def __init__(self, address: str, ports: PortRange | None) -> None:
        self.address = address
        self.ports = ports
        self._next = ports.low if ports is not None else 0

    def listen_uri(self) -> str:
        """A URI for the next incoming stream: a port of the range that is free now (each
        search starts after the port picked last), or port 0 without a range.

        Raises:
            NoMigrationPort: no port of the range can be bound.
        """
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"tcp:{host}:{self._pick()}"

    def _pick(self) -> int:
        ports = self.ports
        if ports is None:
            return 0
        count = ports.high - ports.low + 1
        for step in range(count):
            port = ports.low + (self._next - ports.low + step) % count
            if self._free(port):
                self._next = port + 1 if port < ports.high else ports.low
                return port
        raise NoMigrationPort(f"no free migration port in {ports} on {self.address}")

    def _free(self, port: int) -> bool:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((self.address, port))
            except OSError:
                return False
        return True
