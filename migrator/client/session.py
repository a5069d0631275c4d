"""One connection to a daemon, with the transport's errors turned into :class:`ClientError`.

Used by :class:`~migrator.client.Client` and by a daemon that calls another daemon.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from migrator.client.errors import INVALID_ARGUMENT, UNREACHABLE, ClientError
from migrator.client.uri import DaemonURI, Transport
from transport import (
    ConfigError,
    Connection,
    LimitExceeded,
    Limits,
    MethodHandler,
    OutcomeUnknown,
    RemoteError,
    TLSClientConfig,
    TransportError,
    connect_tls,
    connect_unix,
)


class Session:
    """A connection to the daemon at ``uri``; see :func:`open_session`."""

    def __init__(self, connection: Connection, uri: DaemonURI) -> None:
        self.connection = connection
        self.uri = uri

    def __repr__(self) -> str:
        return f"<Session {self.uri} {self.connection.state.name}>"

    async def call(
        self,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the call's own, see Connection.call)
    ) -> Any:
        """Call ``method`` and return its result (within ``timeout`` seconds, if given).

        Raises:
            ClientError: the daemon answered with an error (its code and message), or the
                connection broke or the timeout passed (``unreachable``: the outcome is
                unknown).
        """
        try:
            return await self.connection.call(method, dict(params or {}), timeout=timeout)
        except RemoteError as exc:
            raise ClientError(exc.message, code=exc.code, details=exc.details) from None
        except OutcomeUnknown as exc:
            raise ClientError(
                f"{self.uri}: the connection to the daemon was lost: {exc}",
                code=UNREACHABLE,
                details={"uri": str(self.uri), "outcome": "unknown"},
            ) from exc
        except LimitExceeded as exc:
            raise ClientError(str(exc), code=exc.code, details=exc.details) from exc
        except TransportError as exc:
            raise ClientError(
                f"{self.uri}: {exc}", code=UNREACHABLE, details={"uri": str(self.uri)}
            ) from exc

    @property
    def closed(self) -> bool:
        return self.connection.close_reason is not None

    async def wait_closed(self) -> TransportError:
        """Wait until the connection has closed; why it closed."""
        return await self.connection.wait_closed()

    async def close(self) -> None:
        await self.connection.close()


async def open_session(
    uri: DaemonURI,
    *,
    tls_dir: Path | None,
    methods: Mapping[str, MethodHandler] | None = None,
    limits: Limits | None = None,
) -> Session:
    """Connect to the daemon at ``uri``. A TLS URI needs ``tls_dir`` (the certificate
    directory of this side, see :mod:`transport.certdir`); the daemon's certificate must
    name the URI's host.

    Raises:
        ClientError: (``unreachable``) the daemon cannot be reached or refused this side,
            naming the URI and the reason; (``invalid-argument``) a TLS URI without
            ``tls_dir`` or with unreadable certificates.
    """
    try:
        if uri.transport is Transport.UNIX:
            assert uri.path is not None
            connection = await connect_unix(uri.path, methods=methods, limits=limits)
        else:
            if tls_dir is None:
                raise ClientError(
                    f"{uri}: a TLS URI needs a certificate directory"
                    " (--tls-dir or MIGRATOR_TLS_DIR)",
                    code=INVALID_ARGUMENT,
                    details={"uri": str(uri)},
                )
            connection = await connect_tls(
                uri.host,
                uri.port,
                tls=TLSClientConfig.from_dir(tls_dir),
                methods=methods,
                limits=limits,
            )
    except ConfigError as exc:
        raise ClientError(
            f"cannot connect to {uri}: {exc}", code=INVALID_ARGUMENT, details={"uri": str(uri)}
        ) from exc
    except TransportError as exc:
        raise ClientError(
            f"cannot connect to {uri}: {_reason(exc)}",
            code=UNREACHABLE,
            details={"uri": str(uri), "cause": exc.code},
        ) from exc
    return Session(connection, uri)


def _reason(exc: TransportError) -> str:
    cause = exc.__cause__
    if isinstance(cause, OSError) and cause.errno:
        return os.strerror(cause.errno)
    return str(exc)
