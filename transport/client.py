"""Opening client connections: to a unix socket, or to a TLS endpoint with mutual authentication.

A connection is reported as established only after the hello exchange, because in TLS 1.3
the client's handshake completes before the server has judged the client's certificate.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from transport.connection import Connection, MethodHandler, Role, check_methods
from transport.errors import (
    AuthenticationError,
    ConnectError,
    PeerLost,
    ProtocolViolation,
    RemoteError,
)
from transport.limits import Limits
from transport.tls import TLSClientConfig

_Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect_unix(
    path: Path,
    *,
    methods: Mapping[str, MethodHandler] | None = None,
    limits: Limits | None = None,
) -> Connection:
    """Connect to the server on the unix socket ``path``.

    ``methods`` serves the server's calls and notifications to this client.

    Raises:
        ConfigError: a method name is reserved.
        ConnectError: nobody listens there, the session was not set up within
            ``handshake_timeout``, or the server broke off the hello exchange.
        ProtocolViolation: the server speaks another protocol version.
    """
    return await _establish(
        functools.partial(asyncio.open_unix_connection, path),
        label=f"unix:{path}",
        peer_name=None,
        methods=methods or {},
        limits=limits or Limits(),
        authenticated=False,
    )


async def connect_tls(
    host: str,
    port: int,
    *,
    tls: TLSClientConfig,
    expected_server_name: str | None = None,
    methods: Mapping[str, MethodHandler] | None = None,
    limits: Limits | None = None,
) -> Connection:
    """Connect to ``host``:``port`` over mutual TLS 1.3.

    The server's certificate must come from the CA in ``tls`` and name
    ``expected_server_name`` (default ``host``) as a DNS or IP alternative name; this
    client's certificate must be on the server's allow-list.

    Raises:
        ConfigError: the certificate files cannot be loaded, or a method name is reserved.
        AuthenticationError: the server's certificate was refused, or the server refused
            this client's certificate.
        ConnectError: nobody listens there, or the session was not set up within
            ``handshake_timeout``.
        ProtocolViolation: the server speaks another protocol version.
    """
    limits = limits or Limits()
    server_name = expected_server_name or host
    open_streams = functools.partial(
        asyncio.open_connection,
        host,
        port,
        ssl=tls.context(),
        server_hostname=server_name,
        ssl_handshake_timeout=limits.handshake_timeout,
    )
    return await _establish(
        open_streams,
        label=f"tls:{host}:{port} ({server_name})",
        peer_name=server_name,
        methods=methods or {},
        limits=limits,
        authenticated=True,
    )


async def _establish(
    open_streams: Callable[[], Awaitable[_Streams]],
    *,
    label: str,
    peer_name: str | None,
    methods: Mapping[str, MethodHandler],
    limits: Limits,
    authenticated: bool,
) -> Connection:
    check_methods(methods)
    deadline = asyncio.get_running_loop().time() + limits.handshake_timeout
    try:
        async with asyncio.timeout_at(deadline):
            reader, writer = await _open(open_streams, label)
    except TimeoutError:
        raise _no_session(label, limits) from None
    connection = Connection(
        reader,
        writer,
        role=Role.CLIENT,
        label=label,
        methods=methods,
        limits=limits,
        peer_name=peer_name,
    )
    try:
        async with asyncio.timeout_at(deadline):
            await connection.confirm_session()
    except TimeoutError:
        await connection.wait_closed()
        raise _no_session(label, limits) from None
    except PeerLost as exc:
        await connection.wait_closed()
        if authenticated:
            raise AuthenticationError(
                f"{label}: the server closed the connection before confirming the session;"
                " it most likely refused this host's certificate",
                details={"cause": exc.details.get("cause")},
            ) from exc
        raise ConnectError(f"{label}: the server closed the connection during the hello") from exc
    except (AuthenticationError, ProtocolViolation):
        await connection.wait_closed()
        raise
    except RemoteError as exc:
        await connection.wait_closed()
        raise ConnectError(f"{label}: the server refused the hello: {exc}") from exc
    return connection


def _no_session(label: str, limits: Limits) -> ConnectError:
    return ConnectError(
        f"{label}: no session within handshake_timeout ({limits.handshake_timeout} s)",
        details={"limit": "handshake_timeout"},
    )


async def _open(open_streams: Callable[[], Awaitable[_Streams]], label: str) -> _Streams:
    try:
        return await open_streams()
    except ssl.SSLCertVerificationError as exc:
        raise AuthenticationError(
            f"{label}: server certificate refused: {exc.verify_message}",
            details={"reason": exc.verify_message},
        ) from exc
    except ssl.SSLError as exc:
        raise AuthenticationError(f"{label}: TLS handshake failed: {exc.reason or exc}") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {label}: {exc.strerror or exc}") from exc
