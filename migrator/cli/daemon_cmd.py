"""`migrator daemon`: run the host daemon in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import click

from migrator.daemon.config import DaemonConfig, DriverKind, build_config, load_file
from migrator.daemon.logs import configure
from migrator.daemon.service import Daemon

_LEVELS = ("debug", "info", "warning", "error")


@click.command("daemon")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with the same keys as these options (options win).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where definitions, live status and the host identity are kept.",
)
@click.option(
    "--unix",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Unix socket to listen on (mode 0600)  [default: STATE_DIR/daemon.sock]",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Listen for mutual-TLS clients and peers (port 0: any free port).",
)
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="This host's certificate directory (see `migrator certs issue`).",
)
@click.option("--host-name", help="This host's name  [default: the machine's host name]")
@click.option("--host-uuid", help="This host's UUID  [default: kept in the state directory]")
@click.option(
    "--driver",
    type=click.Choice([kind.value for kind in DriverKind]),
    help="Hypervisor driver  [default: qemu]",
)
@click.option(
    "--migration-ports",
    metavar="LOW-HIGH",
    help="Ports for incoming migration streams  [default: any free port]",
)
@click.option(
    "--migration-address",
    metavar="ADDRESS",
    help="Where incoming migration streams are awaited  [default: the --listen host, or 127.0.0.1]",
)
@click.option(
    "--allow-client",
    "allow_client",
    multiple=True,
    metavar="NAME",
    help="Certificate name allowed on the TLS listener (repeatable).",
)
@click.option("--log-level", type=click.Choice(_LEVELS), default="info", show_default=True)
def daemon_command(config_file: Path | None, log_level: str, **options: Any) -> None:
    """Run the host daemon in the foreground.

    Once it listens it prints one line on stdout, `ready URI...` (its unix URI, then its TLS
    URI when it has a listener), so that whoever started it can wait for it. Logs go to
    stderr, one line each. SIGTERM or SIGINT stops it and leaves the guests running; a
    restarted daemon finds them again and resolves the migrations left half done.
    """
    values = load_file(config_file) if config_file is not None else {}
    if not options["allow_client"]:
        options["allow_client"] = None
    values.update({key: value for key, value in options.items() if value is not None})
    config = build_config(values)
    configure(level=getattr(logging, log_level.upper()))
    asyncio.run(_serve(config))


async def _serve(config: DaemonConfig) -> None:
    daemon = Daemon(config)
    await daemon.start()
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        click.echo(f"ready {' '.join(daemon.uris)}")
        await stop.wait()
    finally:
        await daemon.stop()
