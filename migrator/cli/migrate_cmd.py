"""``migrator migrate``: virsh's ``migrate`` command, its switches, options and policy.

The source daemon is the one ``-c`` names. With ``--p2p`` it drives the migration itself;
otherwise the client drives each phase on both daemons (managed-direct). While the
migration runs, the command follows the job events the source daemon pushes: for the
progress bar (``--verbose``) and for the client's own policy (``--timeout``,
``--postcopy-after-precopy``). Interrupting the command (Ctrl-C) aborts the job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import click

from migrator.cli.connection import run_with_client
from migrator.cli.migrate_options import (
    FLAG_SWITCHES,
    POLICY_SWITCHES,
    TYPED_OPTIONS,
    MigrateArguments,
    MigrationRequest,
    build_request,
)
from migrator.cli.migrate_policy import PolicyStep, PolicyWatch
from migrator.cli.output import echo_json, format_bytes, format_duration_ms
from migrator.cli.progress import MigrationProgressBar, ProgressView
from migrator.client import Client, ClientError
from migrator.client.types import JobEvent, JobInfo

#: How long an abort after Ctrl-C may take before the command gives up on it.
ABORT_GUARD_S = 30

_POLICY_HELP = {
    "direct": "Managed-direct migration: this client drives both daemons (the default "
    "without --p2p)",
    "postcopy-after-precopy": "Switch to post-copy after the first pass over memory",
    "timeout-suspend": "Suspend the guest after --timeout (the default action)",
    "timeout-postcopy": "Switch to post-copy after --timeout",
}


def _identifier(option_name: str) -> str:
    return option_name.replace("-", "_")


def _generated_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add one switch per flag switch and policy switch, one option per typed option."""
    for option in reversed(TYPED_OPTIONS):
        command = click.option(
            f"--{option.name}",
            _identifier(option.name),
            metavar=option.metavar,
            help=option.help,
        )(command)
    for name in sorted(POLICY_SWITCHES, reverse=True):
        command = click.option(
            f"--{name}", _identifier(name), is_flag=True, help=_POLICY_HELP[name]
        )(command)
    for switch in reversed(FLAG_SWITCHES):
        command = click.option(
            f"--{switch.name}", _identifier(switch.name), is_flag=True, help=switch.help
        )(command)
    return command


@click.command("migrate")
@click.argument("domain")
@click.argument("dest_uri", metavar="DEST_URI")
@_generated_options
@click.option(
    "--timeout",
    "timeout_s",
    type=int,
    metavar="SECONDS",
    help="After SECONDS of live migration, suspend the guest (or, with --timeout-postcopy, "
    "switch to post-copy).",
)
@click.option(
    "--param",
    "param_items",
    multiple=True,
    metavar="NAME=VALUE",
    help="Any libvirt typed migration parameter (repeatable).",
)
@click.option("--verbose", is_flag=True, help="Show a live progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the completed job as JSON.")
def migrate_command(
    *,
    domain: str,
    dest_uri: str,
    timeout_s: int | None,
    param_items: tuple[str, ...],
    verbose: bool,
    as_json: bool,
    **choices: Any,
) -> None:
    """Migrate DOMAIN to the daemon at DEST_URI (a migrator+tls:// URI for --p2p)."""
    request = build_request(arguments_of(choices, params=param_items, timeout_s=timeout_s))
    job = run_with_client(
        lambda client: migrate(client, domain, dest_uri, request, verbose=verbose)
    )
    if as_json:
        echo_json(job.to_json())
    elif verbose:
        click.echo(completion_line(domain, job))


def arguments_of(
    choices: dict[str, Any], *, params: tuple[str, ...], timeout_s: int | None
) -> MigrateArguments:
    """The :class:`MigrateArguments` of the generated options' values (click's names)."""
    names = [switch.name for switch in FLAG_SWITCHES] + sorted(POLICY_SWITCHES)
    switches = frozenset(name for name in names if choices.get(_identifier(name)))
    options = {
        option.name: value
        for option in TYPED_OPTIONS
        if (value := choices.get(_identifier(option.name))) is not None
    }
    return MigrateArguments(switches=switches, options=options, params=params, timeout_s=timeout_s)


def completion_line(domain: str, job: JobInfo) -> str:
    """One line on a completed migration: time, downtime, data sent."""
    statistics = job.statistics
    parts = [f"Migration of '{domain}' completed"]
    if statistics.time_elapsed is not None:
        parts.append(f"in {format_duration_ms(statistics.time_elapsed)}")
    if statistics.downtime is not None:
        parts.append(f"downtime {format_duration_ms(statistics.downtime)}")
    sent = statistics.data_processed or statistics.memory_processed
    if sent is not None:
        parts.append(f"{format_bytes(sent)} sent")
    return ", ".join(parts)


async def migrate(
    client: Client,
    domain: str,
    dest_uri: str,
    request: MigrationRequest,
    *,
    verbose: bool,
) -> JobInfo:
    """Migrate ``domain`` as ``request`` asks, following its job events meanwhile (for the
    progress bar with ``verbose``, and for the client's policy).

    Raises:
        ClientError: the migration failed or was refused.
        asyncio.CancelledError: the caller was cancelled; the job has been asked to abort.
    """
    watch = PolicyWatch(request.policy)
    bar = MigrationProgressBar(domain) if verbose else None
    with bar if bar is not None else contextlib.nullcontext():
        helpers = [asyncio.create_task(_follow(client, domain, watch, bar=bar))]
        if request.policy.timeout_s is not None:
            helpers.append(asyncio.create_task(_time_out(client, domain, watch)))
        try:
            job = await client.migrate(
                domain,
                dest_uri,
                flags=request.flags,
                typed=request.typed,
                direct=request.direct,
            )
        except asyncio.CancelledError:
            await _abort(client, domain)
            raise
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        if bar is not None:
            bar.finish(ProgressView.of(job.statistics, phase="completed"))
    return job


async def _follow(
    client: Client,
    domain: str,
    watch: PolicyWatch,
    *,
    bar: MigrationProgressBar | None,
) -> None:
    async for event in client.events():
        if not isinstance(event, JobEvent) or event.domain != domain:
            continue
        if bar is not None:
            bar.show(ProgressView.of(event.statistics, phase=event.phase))
        step = watch.on_statistics(event.statistics)
        if step is not None:
            await _carry_out(client, domain, step)


async def _time_out(client: Client, domain: str, watch: PolicyWatch) -> None:
    assert watch.policy.timeout_s is not None
    await asyncio.sleep(watch.policy.timeout_s)
    step = watch.on_timeout()
    if step is not None:
        await _carry_out(client, domain, step)


async def _carry_out(client: Client, domain: str, step: PolicyStep) -> None:
    """Ask the source daemon for ``step``; a refusal is reported and the migration goes on
    (it may have just completed)."""
    try:
        match step:
            case PolicyStep.SUSPEND:
                await client.suspend(domain)
            case PolicyStep.START_POSTCOPY:
                await client.migrate_postcopy(domain)
    except ClientError as err:
        click.echo(f"warning: cannot {step.value}: {err}", err=True)


async def _abort(client: Client, domain: str) -> None:
    with contextlib.suppress(ClientError, TimeoutError):
        async with asyncio.timeout(ABORT_GUARD_S):
            await client.domjobabort(domain)
