"""Which daemon a command talks to (``-c URI``, ``--tls-dir`` on the root group), and
running a command's calls over one client connection.

The options live on the root group, as virsh's ``-c`` does, and are remembered in the
click context's ``meta`` (shared by every sub-context), so that commands in any group can
reach the daemon without each declaring them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

from migrator.client import Client

T = TypeVar("T")

_URI_PARAM = "connect_uri"
_TLS_DIR_PARAM = "tls_dir"
_META_PREFIX = "migrator.connection."


@dataclass(frozen=True)
class ConnectionSettings:
    """The daemon URI and client certificate directory given on the command line.

    ``None`` leaves the choice to the client: ``$MIGRATOR_DEFAULT_URI`` and
    ``$MIGRATOR_TLS_DIR``.
    """

    uri: str | None = None
    tls_dir: Path | None = None


def add_connection_options(group: click.Group) -> None:
    """Give ``group`` (the root group) the ``-c/--connect`` and ``--tls-dir`` options."""
    group.params.extend(
        [
            click.Option(
                ["-c", "--connect", _URI_PARAM],
                metavar="URI",
                expose_value=False,
                callback=_remember,
                help="Daemon URI: migrator+unix:///PATH or migrator+tls://HOST:PORT "
                "(default: $MIGRATOR_DEFAULT_URI).",
            ),
            click.Option(
                ["--tls-dir", _TLS_DIR_PARAM],
                type=click.Path(file_okay=False, path_type=Path),
                expose_value=False,
                callback=_remember,
                help="Client certificate directory for migrator+tls URIs "
                "(default: $MIGRATOR_TLS_DIR).",
            ),
        ]
    )


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> object:
    ctx.meta[f"{_META_PREFIX}{param.name}"] = value
    return value


def connection_settings(ctx: click.Context | None = None) -> ConnectionSettings:
    """The settings given on the root group of ``ctx`` (default: the current context)."""
    meta = (ctx or click.get_current_context()).meta
    uri = meta.get(f"{_META_PREFIX}{_URI_PARAM}")
    tls_dir = meta.get(f"{_META_PREFIX}{_TLS_DIR_PARAM}")
    return ConnectionSettings(
        uri=uri if isinstance(uri, str) else None,
        tls_dir=tls_dir if isinstance(tls_dir, Path) else None,
    )


def run_with_client(operation: Callable[[Client], Awaitable[T]]) -> T:
    """Connect to the daemon of the current command, run ``operation`` with the client in a
    fresh event loop, close the connection, and return what ``operation`` returned.

    Raises:
        ClientError: no URI, an unreachable daemon, or what ``operation`` raises.
    """
    settings = connection_settings()

    async def session() -> T:
        client = await Client.connect(settings.uri, tls_dir=settings.tls_dir)
        async with client:
            return await operation(client)

    return asyncio.run(session())
