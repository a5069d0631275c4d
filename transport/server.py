"""A server that accepts connections on unix sockets and TLS endpoints and serves calls on them."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from transport.connection import Connection, MethodHandler, Role, check_methods
from transport.errors import AuthenticationError, ConfigError
from transport.limits import Limits
from transport.tls import TLSServerConfig
from transport.unixsocket import bind_unix_socket, remove_socket_file

_LOG = logging.getLogger("transport.server")


class Server:
    """Serves ``methods`` to every connection on every endpoint it listens on.

    Each connection also gets the notifications its peer sends, handled by ``methods`` in
    order, and may be called back or sent notifications (``server.connections``, or the
    connection handed to a method). A peer that breaks a limit or the protocol, or whose
    identity is refused, loses its own connection with a logged reason; other connections
    do not notice. Usable as an async context manager (closing on exit).
    """

    def __init__(
        self,
        methods: Mapping[str, MethodHandler],
        *,
        limits: Limits | None = None,
        name: str = "server",
    ) -> None:
        """Serve ``methods`` (see :data:`transport.connection.MethodHandler`) once listening.

        Raises:
            ConfigError: a method name is empty or reserved (``transport.``).
        """
        check_methods(methods)
        self._methods = dict(methods)
        self._limits = limits or Limits()
        self._log = _LOG.getChild(name)
        self._listeners: list[asyncio.Server] = []
        self._socket_files: list[tuple[Path, int]] = []
        self._connections: set[Connection] = set()
        self._handshakes = 0
        self._accepted = 0
        self._closing = False

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def connections(self) -> tuple[Connection, ...]:
        """The connections open now (including those still in the hello exchange)."""
        return tuple(self._connections)

    async def listen_unix(self, path: Path) -> Path:
        """Listen on a unix socket at ``path``, created with mode 0600; return ``path``.

        Raises:
            ConfigError: ``path`` is in use by a live server, is not a socket, or cannot be
                bound.
        """
        sock = bind_unix_socket(path)
        inode = os.stat(path).st_ino
        accept = functools.partial(self._accept, endpoint=f"unix:{path}", tls=None, context=None)
        self._listeners.append(await asyncio.start_unix_server(accept, sock=sock))
        self._socket_files.append((path, inode))
        self._log.info("listening on unix socket %s", path)
        return path

    async def listen_tls(self, host: str, port: int, *, tls: TLSServerConfig) -> tuple[str, int]:
        """Listen for mutual-TLS connections on ``host``:``port`` (0 picks a free port).

        Returns the bound address and port.

        Raises:
            ConfigError: the certificate files cannot be loaded or the address cannot be bound.
        """
        context = tls.context()
        accept = functools.partial(self._accept, endpoint="tls", tls=tls, context=context)
        try:
            listener = await asyncio.start_server(accept, host, port)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                details={"host": host, "port": port},
            ) from exc
        self._listeners.append(listener)
        bound_host, bound_port = listener.sockets[0].getsockname()[:2]
        self._log.info("listening for TLS on %s:%d", bound_host, bound_port)
        return bound_host, bound_port

    async def close(self) -> None:
        """Stop listening, close every connection and remove the socket files. Never raises."""
        self._closing = True
        for listener in self._listeners:
            listener.close()
        await asyncio.gather(*(connection.close() for connection in self.connections))
        for listener in self._listeners:
            await listener.wait_closed()
        for path, inode in self._socket_files:
            remove_socket_file(path, inode=inode)
        self._listeners.clear()
        self._socket_files.clear()

    def _refuses_new(self, label: str) -> bool:
        if self._closing:
            self._log.info("refusing %s: the server is closing", label)
            return True
        if len(self._connections) + self._handshakes >= self._limits.max_connections:
            self._log.warning(
                "refusing %s: max_connections (%d) reached", label, self._limits.max_connections
            )
            return True
        return False

    async def _accept(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        endpoint: str,
        tls: TLSServerConfig | None,
        context: ssl.SSLContext | None,
    ) -> None:
        self._accepted += 1
        label = _label(endpoint, writer, self._accepted)
        if (
            self._closing
            or len(self._connections) + self._handshakes >= self._limits.max_connections
        ):
            self._log.warning(
                "refusing %s: max_connections (%d) reached or server closing",
                label,
                self._limits.max_connections,
            )
            writer.transport.abort()
            return
        loop = asyncio.get_running_loop()
        handshake_timeout = self._limits.handshake_timeout
        handshake_deadline = loop.time() + handshake_timeout
        peer_name: str | None = None
        refusal: AuthenticationError | None = None
        if tls is not None and context is not None:
            self._handshakes += 1
            try:
                await writer.start_tls(
                    context, ssl_handshake_timeout=self._limits.handshake_timeout
                )
            except (OSError, TimeoutError) as exc:
                self._log.warning("closing %s: TLS handshake failed: %s", label, _reason(exc))
                writer.transport.abort()
                return
            finally:
                self._handshakes -= 1
            try:
                peer_name = tls.admit(writer.get_extra_info("ssl_object").getpeercert(True))
            except AuthenticationError as exc:
                refusal = exc
            if self._refuses_new(label):
                writer.transport.abort()
                return
        connection = Connection(
            reader,
            writer,
            role=Role.SERVER,
            label=f"{label} ({peer_name})" if peer_name else label,
            methods=self._methods,
            limits=self._limits,
            peer_name=peer_name,
            refusal=refusal,
            handshake_deadline=handshake_deadline,
            on_closed=self._connections.discard,
        )
        self._connections.add(connection)


def _label(endpoint: str, writer: asyncio.StreamWriter, number: int) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple):
        return f"{endpoint}:{peer[0]}:{peer[1]}"
    return f"{endpoint}#{number}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")  # PEER_DID_NOT_RETURN_A_CERTIFICATE
    return str(exc) or type(exc).__name__
