"""The simulated network: hosts, the links between them, partitions, and listening ports.

Migration URIs are ``tcp:HOST:PORT`` (``[HOST]`` for IPv6 literals). HOST is a host name of
the world, or a loopback or wildcard address, which means the host the call is made on.
Every migration sees the full bandwidth of its link: links are not shared.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from migrator.drivers.base import CommandFailed
from migrator.drivers.sim.errors import SimError

if TYPE_CHECKING:
    from migrator.drivers.sim.guest import SimGuest

#: Addresses that name the local host.
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""})

#: Where ephemeral migration ports and display ports start (libvirt's defaults).
MIGRATION_PORT_MIN = 49152
DISPLAY_PORT_MIN = 5900


@dataclass(frozen=True)
class Link:
    """The connection between two hosts (the same in both directions).

    Attributes:
        bandwidth_bytes_s: what the link carries.
        stream_bytes_s: what one TCP stream gets through it (one migration channel is one
            stream; multifd opens several); ``None`` for no per-stream limit.
        up: False while the link is cut.

    Raises:
        SimError: a bandwidth that is not positive.
    """

    bandwidth_bytes_s: int
    stream_bytes_s: int | None = None
    up: bool = True

    def __post_init__(self) -> None:
        if self.bandwidth_bytes_s <= 0:
            raise SimError("link bandwidth must be positive", field="bandwidth_bytes_s")
        if self.stream_bytes_s is not None and self.stream_bytes_s <= 0:
            raise SimError("link stream bandwidth must be positive", field="stream_bytes_s")


#: 10 Gbit/s, no per-stream limit.
DEFAULT_LINK = Link(bandwidth_bytes_s=1_250_000_000)


@dataclass(frozen=True)
class Address:
    """A parsed ``tcp:HOST:PORT``."""

    host: str
    port: int

    @property
    def text(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def uri(self) -> str:
        return f"tcp:{self.text}"


@dataclass(frozen=True)
class Listener:
    """A guest waiting on a port: for a new incoming migration, or to recover a paused
    post-copy one."""

    guest: SimGuest
    recovery: bool


def parse_uri(uri: str) -> Address:
    """Split a ``tcp:HOST:PORT`` migration URI.

    Raises:
        CommandFailed: not a ``tcp:`` URI ("Parameter 'uri' expects a valid migration
            protocol"), or no numeric port ("error parsing address ...").
    """
    if not uri.startswith("tcp:"):
        raise CommandFailed("Parameter 'uri' expects a valid migration protocol")
    rest = uri[len("tcp:") :]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = rest.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise CommandFailed(f"error parsing address '{rest}'")
    return Address(host=host, port=int(port))


class Network:
    """Hosts, links, partitions and ports of one world."""

    def __init__(self, *, default_link: Link) -> None:
        self._default_link = default_link
        self._hosts: set[str] = set()
        self._links: dict[frozenset[str], Link] = {}
        self._isolated: Counter[str] = Counter()
        self._listeners: dict[tuple[str, int], Listener] = {}
        self._ports: dict[str, set[int]] = {}

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(self._hosts)

    def add_host(self, name: str) -> None:
        """Make ``name`` known (adding a known host again does nothing).

        Raises:
            SimError: an empty name or one that is a local address.
        """
        if name in LOCAL_NAMES:
            raise SimError(f"'{name}' cannot name a simulated host", field="host")
        self._hosts.add(name)
        self._ports.setdefault(name, set())

    def link(self, a: str, b: str) -> Link:
        return self._links.get(frozenset((a, b)), self._default_link)

    def set_link(self, a: str, b: str, *, link: Link) -> None:
        """Raises: SimError: an unknown host."""
        for host in (a, b):
            self._require(host)
        self._links[frozenset((a, b))] = link

    def isolate(self, host: str) -> None:
        """Cut ``host`` off from every other host until a matching :meth:`rejoin`."""
        self._isolated[host] += 1

    def rejoin(self, host: str) -> None:
        self._isolated[host] -= 1

    def reachable(self, a: str, b: str) -> bool:
        if a == b:
            return True
        return self.link(a, b).up and not self._isolated[a] and not self._isolated[b]

    # -- names and ports --------------------------------------------------------------------

    def bind(self, host: str, address: Address, *, listener: Listener) -> Address:
        """Listen on ``address`` from ``host`` (port 0: the first free ephemeral port).

        Raises:
            CommandFailed: the address is another host's, unknown, or the port is taken.
        """
        self._local(host, address)
        used = self._ports[host]
        port = address.port or self._free_port(used, MIGRATION_PORT_MIN)
        if port in used:
            raise CommandFailed("Failed to find an available port: Address already in use")
        used.add(port)
        self._listeners[(host, port)] = listener
        return Address(host=address.host, port=port)

    def unbind(self, host: str, port: int) -> None:
        self._listeners.pop((host, port), None)
        self._ports[host].discard(port)

    def take_display_port(self, host: str, port: int | None) -> int:
        """Reserve ``port`` for a display, or the first free display port with ``None``.

        Raises:
            CommandFailed: the port is taken.
        """
        used = self._ports[host]
        chosen = self._free_port(used, DISPLAY_PORT_MIN) if port is None else port
        if chosen in used:
            raise CommandFailed("Failed to find an available port: Address already in use")
        used.add(chosen)
        return chosen

    def release_port(self, host: str, port: int) -> None:
        self._ports[host].discard(port)

    def ports_in_use(self, host: str) -> frozenset[int]:
        """The ports bound on ``host``: migration listeners and displays."""
        return frozenset(self._ports.get(host, ()))

    def connect(self, host: str, address: Address) -> tuple[str, Listener]:
        """Open a connection from ``host`` to ``address``: the peer host and its listener.

        Raises:
            CommandFailed: the name is unknown, the peer unreachable, or nothing listens.
        """
        peer = host if address.host in LOCAL_NAMES else address.host
        if peer not in self._hosts:
            raise CommandFailed(
                f"address resolution failed for {address.text}: Name or service not known"
            )
        if not self.reachable(host, peer):
            raise CommandFailed(f"Failed to connect to '{address.text}': No route to host")
        listener = self._listeners.get((peer, address.port))
        if listener is None:
            raise CommandFailed(f"Failed to connect to '{address.text}': Connection refused")
        return peer, listener

    def _local(self, host: str, address: Address) -> None:
        if address.host in LOCAL_NAMES or address.host == host:
            return
        if address.host in self._hosts:
            raise CommandFailed("Failed to bind socket: Cannot assign requested address")
        raise CommandFailed(
            f"address resolution failed for {address.text}: Name or service not known"
        )

    def _require(self, host: str) -> None:
        if host not in self._hosts:
            raise SimError(f"no simulated host '{host}'", field="host")

    @staticmethod
    def _free_port(used: set[int], start: int) -> int:
        port = start
        while port in used:
            port += 1
        return port
