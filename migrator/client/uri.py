"""Daemon URIs: ``migrator+unix:///ABS/PATH`` and ``migrator+tls://HOST:PORT``."""

from __future__ import annotations

import enum
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from migrator.client.errors import INVALID_ARGUMENT, ClientError

#: The environment variable that names the daemon when no URI is given.
DEFAULT_URI_VARIABLE = "MIGRATOR_DEFAULT_URI"
#: The environment variable that names the certificate directory for TLS URIs.
TLS_DIR_VARIABLE = "MIGRATOR_TLS_DIR"

UNIX_SCHEME = "migrator+unix"
TLS_SCHEME = "migrator+tls"


class Transport(enum.Enum):
    UNIX = UNIX_SCHEME
    TLS = TLS_SCHEME


@dataclass(frozen=True)
class DaemonURI:
    """A parsed daemon URI: a unix socket ``path``, or a TLS ``host`` and ``port``."""

    transport: Transport
    path: Path | None = None
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.transport is Transport.UNIX:
            return f"{UNIX_SCHEME}://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{TLS_SCHEME}://{host}:{self.port}"


def unix_uri(path: Path) -> str:
    """The URI of the unix socket at ``path`` (made absolute)."""
    return str(DaemonURI(Transport.UNIX, path=path.absolute()))


def tls_uri(host: str, port: int) -> str:
    """The URI of the TLS endpoint ``host``:``port``."""
    return str(DaemonURI(Transport.TLS, host=host, port=port))


def parse_uri(text: str) -> DaemonURI:
    """Parse a daemon URI.

    Raises:
        ClientError: (``invalid-argument``) not one of the two forms.
    """
    parts = urllib.parse.urlsplit(text)
    if parts.scheme == UNIX_SCHEME:
        path = urllib.parse.unquote(parts.path)
        if parts.netloc or not path.startswith("/"):
            raise _bad(text, "a unix URI needs an absolute path: migrator+unix:///ABS/PATH")
        return DaemonURI(Transport.UNIX, path=Path(path))
    if parts.scheme == TLS_SCHEME:
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            raise _bad(text, "a TLS URI needs a host and a port: migrator+tls://HOST:PORT")
        return DaemonURI(Transport.TLS, host=parts.hostname, port=port)
    raise _bad(text, f"the scheme must be {UNIX_SCHEME} or {TLS_SCHEME}")


def resolve_uri(uri: str | None) -> DaemonURI:
    """``uri``, or ``$MIGRATOR_DEFAULT_URI`` when it is None, parsed.

    Raises:
        ClientError: neither is given, or the URI is malformed.
    """
    text = uri if uri is not None else os.environ.get(DEFAULT_URI_VARIABLE)
    if not text:
        raise ClientError(
            f"no daemon URI: pass -c URI or set {DEFAULT_URI_VARIABLE}", code=INVALID_ARGUMENT
        )
    return parse_uri(text)


def resolve_tls_dir(tls_dir: Path | str | None) -> Path | None:
    """``tls_dir``, or ``$MIGRATOR_TLS_DIR`` when it is None (None if neither is set)."""
    if tls_dir is not None:
        return Path(tls_dir)
    text = os.environ.get(TLS_DIR_VARIABLE)
    return Path(text) if text else None


def _bad(text: str, reason: str) -> ClientError:
    return ClientError(
        f"invalid daemon URI '{text}': {reason}", code=INVALID_ARGUMENT, details={"uri": text}
    )
