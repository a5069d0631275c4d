"""msgpack-RPC between clients and daemons and between daemons: unix sockets and mutual TLS.

Modules, one job each:

- :mod:`transport.messages`: the three msgpack-RPC message shapes (pure).
- :mod:`transport.framing`: bytes to msgpack objects within the limits (sans-IO).
- :mod:`transport.limits`: the named, configurable limits.
- :mod:`transport.connection`: one full-duplex connection: calls, notifications, keepalive.
- :mod:`transport.server` and :mod:`transport.client`: listening and connecting.
- :mod:`transport.tls`: mutual TLS 1.3 settings and the identity checks.
- :mod:`transport.pki` and :mod:`transport.certdir`: the private CA and host certificates.
- :mod:`transport.errors`: the error tree, rooted at :class:`TransportError`.

Logging goes to the ``transport`` logger and its children.
"""

from __future__ import annotations

import logging

from transport.client import connect_tls, connect_unix
from transport.connection import Connection, MethodHandler, Runstate
from transport.errors import (
    AuthenticationError,
    CallTimeout,
    CertificateError,
    ConfigError,
    ConnectError,
    ConnectionClosed,
    EncodeError,
    LimitExceeded,
    MethodNotFound,
    OutcomeUnknown,
    PeerLost,
    ProtocolViolation,
    RemoteError,
    TransportError,
)
from transport.limits import Limits
from transport.server import Server
from transport.tls import TLSClientConfig, TLSServerConfig

__all__ = [
    "AuthenticationError",
    "CallTimeout",
    "CertificateError",
    "ConfigError",
    "ConnectError",
    "Connection",
    "ConnectionClosed",
    "EncodeError",
    "LimitExceeded",
    "Limits",
    "MethodHandler",
    "MethodNotFound",
    "OutcomeUnknown",
    "PeerLost",
    "ProtocolViolation",
    "RemoteError",
    "Runstate",
    "Server",
    "TLSClientConfig",
    "TLSServerConfig",
    "TransportError",
    "connect_tls",
    "connect_unix",
]

logging.getLogger("transport").addHandler(logging.NullHandler())
