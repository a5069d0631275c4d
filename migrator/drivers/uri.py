"""Migration URIs, as the drivers and the runtime read them."""

from __future__ import annotations


def tcp_address(uri: str) -> tuple[str, int] | None:
    """The host and port of a ``tcp:HOST:PORT`` (or ``tcp:[V6]:PORT``) URI; None for any
    other URI, or for one without a usable port."""
    if not uri.startswith("tcp:"):
        return None
    host, separator, port = uri.removeprefix("tcp:").rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)
