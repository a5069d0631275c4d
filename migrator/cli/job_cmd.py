"""Job commands with virsh's names: ``domjobinfo``, ``domjobabort``, ``migrate-setspeed``,
``migrate-getspeed``, ``migrate-setmaxdowntime``, ``migrate-postcopy``."""

from __future__ import annotations

from collections.abc import Callable

import click

from cookies import JobStatistics
from migrator.cli.connection import run_with_client
from migrator.cli.domain_action import domain_action
from migrator.cli.output import echo_fields, echo_json, format_bytes, format_rate
from migrator.client import Client
from migrator.client.types import JobInfo, JobType


@click.command("domjobinfo")
@click.argument("domain")
@click.option("--completed", is_flag=True, help="The statistics of the last completed job.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def domjobinfo_command(domain: str, completed: bool, as_json: bool) -> None:
    """Print the statistics of DOMAIN's job in progress (or last completed job)."""
    job = run_with_client(lambda client: client.domjobinfo(domain, completed=completed))
    if as_json:
        echo_json(job.to_json())
    else:
        echo_fields(job_rows(job))


def _ms(value: int) -> str:
    return f"{value} ms"


def _count(value: int) -> str:
    return str(value)


def _pages_per_second(value: int) -> str:
    return f"{value} pages/s"


def _percent(value: int) -> str:
    return f"{value} %"


#: virsh's labels and order for the statistics it prints, with how each value is shown.
_STATISTICS_ROWS: tuple[tuple[str, str, Callable[[int], str]], ...] = (
    ("time_elapsed", "Time elapsed", _ms),
    ("time_elapsed_net", "Time elapsed w/o network", _ms),
    ("time_remaining", "Time remaining", _ms),
    ("data_processed", "Data processed", format_bytes),
    ("data_remaining", "Data remaining", format_bytes),
    ("data_total", "Data total", format_bytes),
    ("memory_processed", "Memory processed", format_bytes),
    ("memory_remaining", "Memory remaining", format_bytes),
    ("memory_total", "Memory total", format_bytes),
    ("memory_bps", "Memory bandwidth", format_rate),
    ("memory_dirty_rate", "Dirty rate", _pages_per_second),
    ("memory_page_size", "Page size", _count),
    ("memory_iteration", "Iteration", _count),
    ("memory_postcopy_requests", "Postcopy requests", _count),
    ("memory_constant", "Constant pages", _count),
    ("memory_normal", "Normal pages", _count),
    ("memory_normal_bytes", "Normal data", format_bytes),
    ("downtime", "Total downtime", _ms),
    ("downtime_net", "Downtime w/o network", _ms),
    ("setup_time", "Setup time", _ms),
    ("disk_processed", "File processed", format_bytes),
    ("disk_remaining", "File remaining", format_bytes),
    ("disk_total", "File total", format_bytes),
    ("disk_bps", "File bandwidth", format_rate),
    ("compression_cache", "Compression cache", format_bytes),
    ("compression_bytes", "Compressed data", format_bytes),
    ("compression_pages", "Compressed pages", _count),
    ("compression_cache_misses", "Compression cache misses", _count),
    ("compression_overflow", "Compression overflows", _count),
    ("auto_converge_throttle", "Auto converge throttle", _percent),
)


def job_rows(job: JobInfo) -> list[tuple[str, str]]:
    """The lines of ``domjobinfo``, with virsh's labels: what the job is, then every
    statistic reported."""
    rows = [("Job type", job.job_type.name.capitalize())]
    if job.job_type is JobType.NONE:
        return rows
    if job.operation is not None:
        rows.append(("Operation", job.operation))
    if job.phase is not None:
        rows.append(("Phase", job.phase))
    rows.extend(statistics_rows(job.statistics, running=job.job_type is JobType.UNBOUNDED))
    if job.error is not None:
        rows.append(("Error message", job.error))
    return rows


def statistics_rows(statistics: JobStatistics, *, running: bool) -> list[tuple[str, str]]:
    """One line per statistic reported; a running job's downtime is an expectation."""
    rows: list[tuple[str, str]] = []
    for field, label, show in _STATISTICS_ROWS:
        value = getattr(statistics, field)
        if value is None:
            continue
        expected = field == "downtime" and running
        rows.append(("Expected downtime" if expected else label, show(value)))
    return rows


@click.command("migrate-setspeed")
@click.argument("domain")
@click.argument("bandwidth", type=click.IntRange(min=0), metavar="MIB_S")
def migrate_setspeed_command(domain: str, bandwidth: int) -> None:
    """Set DOMAIN's migration bandwidth limit, in MiB/s."""
    run_with_client(lambda client: client.migrate_setspeed(domain, bandwidth))


@click.command("migrate-getspeed")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def migrate_getspeed_command(domain: str, as_json: bool) -> None:
    """Print DOMAIN's migration bandwidth limit, in MiB/s."""
    speed = run_with_client(lambda client: client.migrate_getspeed(domain))
    if as_json:
        echo_json({"bandwidth_mib_s": speed})
    else:
        click.echo(str(speed))


@click.command("migrate-setmaxdowntime")
@click.argument("domain")
@click.argument("downtime", type=click.IntRange(min=1), metavar="MILLISECONDS")
def migrate_setmaxdowntime_command(domain: str, downtime: int) -> None:
    """Set the longest pause DOMAIN's migration may cause at the switchover."""
    run_with_client(lambda client: client.migrate_setmaxdowntime(domain, downtime))


domjobabort_command = domain_action(
    "domjobabort", summary="Abort DOMAIN's job in progress.", call=Client.domjobabort
)
migrate_postcopy_command = domain_action(
    "migrate-postcopy",
    summary="Switch DOMAIN's running migration to post-copy (it must allow it: --postcopy).",
    call=Client.migrate_postcopy,
)

#: Every command of this module, for registration on the root group.
COMMANDS: tuple[click.Command, ...] = (
    domjobinfo_command,
    domjobabort_command,
    migrate_setspeed_command,
    migrate_getspeed_command,
    migrate_setmaxdowntime_command,
    migrate_postcopy_command,
)
