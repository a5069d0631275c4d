"""``migrator event``: print the daemon's lifecycle and job events, as ``virsh event``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import click

from migrator.cli.connection import run_with_client
from migrator.cli.output import format_bytes
from migrator.client import Client
from migrator.client.types import Event, LifecycleEvent


@dataclass
class _Tally:
    received: int = 0


@click.command("event")
@click.option("--domain", help="Only the events of this domain.")
@click.option("--loop", is_flag=True, help="Keep printing events (default: stop after one).")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.IntRange(min=1),
    metavar="SECONDS",
    help="Stop waiting after SECONDS.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line.")
def event_command(domain: str | None, loop: bool, timeout_s: int | None, as_json: bool) -> None:
    """Wait for events and print them: one, or with --loop every one until Ctrl-C."""
    tally = _Tally()

    async def watch(client: Client) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                async for event in client.events():
                    if domain is not None and event.domain != domain:
                        continue
                    click.echo(event_json_line(event) if as_json else event_line(event))
                    tally.received += 1
                    if not loop:
                        return
        except TimeoutError:
            click.echo("event loop timed out", err=True)

    try:
        run_with_client(watch)
    except KeyboardInterrupt:
        click.echo("event loop interrupted", err=True)
    if loop:
        click.echo(f"events received: {tally.received}", err=True)


def event_line(event: Event) -> str:
    """``virsh event``'s line for ``event``."""
    if isinstance(event, LifecycleEvent):
        what = event.event.name.replace("_", " ").capitalize()
        text = f"{what} {event.detail[:1].upper()}{event.detail[1:]}".rstrip()
        return f"event 'lifecycle' for domain '{event.domain}': {text}"
    parts = [f"job {event.job_id} phase {event.phase}"]
    statistics = event.statistics
    if statistics.data_processed is not None:
        parts.append(f"sent {format_bytes(statistics.data_processed)}")
    if statistics.data_remaining is not None:
        parts.append(f"left {format_bytes(statistics.data_remaining)}")
    if event.done:
        parts.append("done")
    if event.error is not None:
        parts.append(f"error: {event.error}")
    return f"event 'job' for domain '{event.domain}': {', '.join(parts)}"


def event_json_line(event: Event) -> str:
    """``event`` as one line of JSON, with its kind under ``"type"``."""
    kind = "lifecycle" if isinstance(event, LifecycleEvent) else "job"
    return json.dumps({"type": kind, **event.to_json()})
