"""Commands that make one call about one domain (``suspend DOMAIN``, ``domjobabort
DOMAIN``, ...) and confirm it as virsh does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import click

from migrator.cli.connection import run_with_client
from migrator.client import Client

#: A client method that takes the domain's name: ``Client.suspend``, ``Client.destroy``, ...
DomainCall = Callable[[Client, str], Awaitable[None]]


def domain_action(
    name: str, *, summary: str, call: DomainCall, done: str | None = None
) -> click.Command:
    """The command ``NAME DOMAIN``: run ``call`` on the daemon, then print ``done`` (with
    ``{domain}`` replaced), if given."""

    def run(domain: str) -> None:
        run_with_client(lambda client: call(client, domain))
        if done is not None:
            click.echo(done.format(domain=domain))

    return click.Command(name, callback=run, params=[click.Argument(["domain"])], help=summary)
