"""The demo's guest: the test-guest kernel on q35, its COM1 on a loopback TCP port."""

from __future__ import annotations

import dataclasses
import random
import socket
import uuid
from pathlib import Path

from migrator.domain import (
    Arch,
    CharSource,
    CharType,
    Devices,
    Domain,
    DomainType,
    Os,
    Serial,
    SourceMode,
    format_domain,
)
from migrator.testguest.kernel import build_kernel
from migrator.testguest.vm import guest_memory_mib

LOOPBACK = "127.0.0.1"
#: Serial ports are picked from here up to the start of the ephemeral port range.
FIRST_SERIAL_PORT = 10000
#: How many random ports are tried before giving up.
SERIAL_PORT_ATTEMPTS = 100
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@dataclasses.dataclass(frozen=True)
class GuestShape:
    """How big the demo guest is and how hard it works while it migrates."""

    memory_mib: int = 128
    working_set_mib: int = 32
    dirty_rate_mib_s: int = 16

    def __post_init__(self) -> None:
        if self.memory_mib < guest_memory_mib(self.working_set_mib):
            raise ValueError(
                f"{self.memory_mib} MiB of RAM cannot hold a {self.working_set_mib} MiB working set"
            )


def write_kernel(path: Path, shape: GuestShape) -> Path:
    """Build the test-guest kernel for ``shape`` into ``path``; return ``path``."""
    path.write_bytes(
        build_kernel(working_set_mib=shape.working_set_mib, dirty_rate_mib_s=shape.dirty_rate_mib_s)
    )
    return path


def guest_definition(
    name: str, *, kernel: Path | None, memory_mib: int, serial_port: int
) -> Domain:
    """A guest booting ``kernel`` (none: a simulated guest), COM1 listening on
    ``LOOPBACK:serial_port``."""
    return Domain(
        type=DomainType.KVM,
        name=name,
        uuid=uuid.uuid5(uuid.NAMESPACE_DNS, f"migrator-demo.{name}"),
        memory_kib=memory_mib * 1024,
        os=Os(arch=Arch.X86_64, machine="q35", kernel=None if kernel is None else str(kernel)),
        devices=Devices(serials=(serial_on(serial_port),)),
    )


def with_serial_port(domain: Domain, port: int) -> Domain:
    """``domain`` with COM1 on ``LOOPBACK:port`` instead: the definition a destination on
    the same machine needs, since the source's QEMU still holds the source's port."""
    return dataclasses.replace(
        domain, devices=dataclasses.replace(domain.devices, serials=(serial_on(port),))
    )


def definition_xml(domain: Domain) -> str:
    """``domain`` as domain XML."""
    return format_domain(domain)


def serial_on(port: int) -> Serial:
    """COM1 on a TCP socket listening at ``LOOPBACK:port``."""
    return Serial(
        type=CharType.TCP,
        source=CharSource(host=LOOPBACK, service=port, mode=SourceMode.BIND),
    )


def free_serial_port() -> int:
    """A loopback TCP port nobody listens on now, for a QEMU's serial port.

    It comes from below the ephemeral range, from which the kernel picks the ports of
    ``bind(0)`` listeners (a daemon's incoming migration streams) and of outgoing
    connections, so none of those takes it before the QEMU that it is meant for (the demo
    connects to the port as soon as something listens there).

    Raises:
        OSError: no free port was found.
    """
    try:
        first_ephemeral = int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    for _ in range(SERIAL_PORT_ATTEMPTS):
        port = random.randrange(FIRST_SERIAL_PORT, max(first_ephemeral, FIRST_SERIAL_PORT + 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
        return port
    raise OSError(f"no free loopback port below {first_ephemeral} for a serial port")
