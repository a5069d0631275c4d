"""`migrator scenario ...`: replay migration scenarios with injected faults."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from migrator.cli.errors import EXIT_FAILURE
from migrator.scenario import (
    DriverName,
    ScenarioResult,
    Verdict,
    load_scenario,
    run_scenario,
    scenario_files,
)
from migrator.scenario.runner import cluster_factory

#: Columns of the summary table when it does not go to a terminal.
SUMMARY_WIDTH = 160

_STYLES = {
    Verdict.PASSED: "green",
    Verdict.FAILED: "bold red",
    Verdict.KNOWN_ISSUE: "yellow",
    Verdict.SKIPPED: "dim",
    Verdict.UNSUPPORTED: "magenta",
}


@click.group("scenario")
def scenario_group() -> None:
    """Migration scenarios: hosts, a guest, a migration, faults and the expected outcome."""


@scenario_group.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--driver",
    type=click.Choice([driver.value for driver in DriverName]),
    default=DriverName.SIM.value,
    show_default=True,
    help="Replay on the simulator or on real daemons and QEMU.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.option(
    "--record", is_flag=True, help="Store each run's trace as the scenario's golden trace."
)
def run_command(paths: tuple[Path, ...], driver: str, as_json: bool, record: bool) -> None:
    """Replay the scenario files PATHS (directories: every *.toml in them).

    Each run is compared with its expectation and its golden trace; the first difference is
    shown. Exits 1 if any scenario failed.
    """
    chosen = DriverName(driver)
    cluster_factory(chosen)
    scenarios = [load_scenario(path) for path in scenario_files(paths)]
    console = Console(stderr=True)
    results = []
    for scenario in scenarios:
        result = run_scenario(scenario, driver=chosen, record=record)
        results.append(result)
        if not as_json:
            style = _STYLES[result.verdict]
            console.print(f"[{style}]{result.verdict.value:>11}[/] {scenario.name}")
    if as_json:
        click.echo(json.dumps([result.to_json() for result in results], indent=2))
    else:
        out = Console()
        # A table piped to a file or another program keeps its lines whole.
        Console(width=max(out.width, SUMMARY_WIDTH) if not out.is_terminal else None).print(
            _summary(results)
        )
    if any(result.verdict is Verdict.FAILED for result in results):
        sys.exit(EXIT_FAILURE)


def _summary(results: list[ScenarioResult]) -> Table:
    counts = {verdict: 0 for verdict in Verdict}
    for result in results:
        counts[result.verdict] += 1
    totals = ", ".join(f"{count} {verdict.value}" for verdict, count in counts.items() if count)
    table = Table(title=f"{len(results)} scenarios: {totals}")
    table.add_column("scenario", no_wrap=True)
    table.add_column("result")
    table.add_column("wall s", justify="right")
    table.add_column("clock s", justify="right")
    table.add_column("first difference (or note)", overflow="fold")
    for result in results:
        style = _STYLES[result.verdict]
        detail = result.first_difference or next(
            (note for note in result.notes if "\n" not in note), ""
        )
        table.add_row(
            result.name,
            f"[{style}]{result.verdict.value}[/]",
            f"{result.wall_s:.2f}",
            f"{result.clock_s:.1f}",
            detail,
        )
    return table
