"""Binding a unix socket that only its owner may use (mode 0600)."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from pathlib import Path

from transport.errors import ConfigError


def bind_unix_socket(path: Path) -> socket.socket:
    """A unix stream socket bound at ``path`` with mode 0600, not yet listening.

    The mode is set before ``listen()``, so nobody can connect while it is wider. A stale
    socket file (nobody accepts on it) is replaced.

    Raises:
        ConfigError: a live server listens on ``path``, ``path`` exists and is not a socket,
            or it cannot be bound (missing directory, name too long, no permission).
    """
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
        os.chmod(path, 0o600)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on unix socket {path}: {exc.strerror or exc}",
            details={"path": str(path)},
        ) from exc
    return sock


def remove_socket_file(path: Path, *, inode: int) -> None:
    """Remove the socket file at ``path`` if it is still the one with ``inode``."""
    with contextlib.suppress(OSError):
        if os.lstat(path).st_ino == inode:
            os.unlink(path)


def _remove_stale_socket(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError(f"cannot use {path} for a unix socket: {exc.strerror}") from exc
    if not stat.S_ISSOCK(mode):
        raise ConfigError(
            f"{path} exists and is not a socket; refusing to replace it",
            details={"path": str(path)},
        )
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(os.fspath(path))
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except BlockingIOError:
        pass  # a full backlog: someone is listening
    except OSError as exc:
        raise ConfigError(f"cannot probe unix socket {path}: {exc.strerror}") from exc
    finally:
        probe.close()
    raise ConfigError(f"another server is listening on {path}", details={"path": str(path)})
