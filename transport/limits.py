"""The named limits of a connection and a server, each configurable."""

from __future__ import annotations

from dataclasses import dataclass, fields

from transport.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """Limits that keep one peer from holding more than its share.

    A peer that breaks a frame limit, the frame timeout or the handshake timeout has its
    connection closed; the other connections do not notice.

    Attributes:
        max_frame_bytes: largest message (one msgpack object) accepted, in bytes.
        max_array_len: longest msgpack array accepted, at any depth.
        max_map_len: largest msgpack map accepted, at any depth.
        max_in_flight: calls in flight per connection and direction. A caller past it waits
            for a free slot; a peer past it gets a ``limit-exceeded`` error for the extra call.
        max_queued_notifications: notifications received and not yet handled; past it the
            connection is closed rather than letting the backlog grow.
        max_connections: connections a server holds at once (handshakes included); past it a
            new connection is closed at once.
        frame_timeout: idle timeout inside a frame: once a frame's first byte has come, the
            whole frame must come within this many seconds (catches stalled and trickling
            peers).
        handshake_timeout: seconds for connecting, the TLS handshake and the hello exchange.
        keepalive_interval: seconds between pings.
        keepalive_missed: a peer silent for ``keepalive_interval * keepalive_missed`` seconds
            is lost, and every call in flight fails with ``PeerLost``.
        close_timeout: seconds a closing connection may take to flush and shut down TLS
            before it is cut.
    """

    max_frame_bytes: int = 1 << 20
    max_array_len: int = 4096
    max_map_len: int = 1024
    max_in_flight: int = 128
    max_queued_notifications: int = 1024
    max_connections: int = 1024
    frame_timeout: float = 10.0
    handshake_timeout: float = 10.0
    keepalive_interval: float = 5.0
    keepalive_missed: int = 3
    close_timeout: float = 2.0

    def __post_init__(self) -> None:
        for limit in fields(self):
            value = getattr(self, limit.name)
            kind = int if limit.type == "int" else int | float
            if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
                raise ConfigError(
                    f"limit {limit.name} must be a positive {limit.type}, not {value!r}",
                    details={"limit": limit.name},
                )

    @property
    def silence_allowed(self) -> float:
        """Seconds of silence after which a peer is lost."""
        return self.keepalive_interval * self.keepalive_missed
