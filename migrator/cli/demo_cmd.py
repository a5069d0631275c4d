"""``migrator demo``: two hosts on this machine, a guest migrating live between them."""

from __future__ import annotations

import asyncio
import shutil

import click
from rich.console import Console
from rich.panel import Panel

from migrator.demo.guest import GuestShape

#: The QEMU binary the qemu driver runs; without it the demo runs on the simulator.
QEMU_BINARY = "qemu-system-x86_64"

_MIB = click.IntRange(min=1)
#: The demo's default migration bandwidth limit, MiB/s.
DEFAULT_BANDWIDTH_MIB_S = 32


@click.command("demo")
@click.option("--sim", is_flag=True, help="Use the simulated driver even if QEMU is installed.")
@click.option(
    "--bandwidth",
    type=_MIB,
    default=DEFAULT_BANDWIDTH_MIB_S,
    show_default=True,
    help="Migration bandwidth limit, MiB/s.",
)
@click.option(
    "--memory",
    "memory_mib",
    type=_MIB,
    default=GuestShape.memory_mib,
    show_default=True,
    help="Guest RAM, MiB.",
)
@click.option(
    "--working-set",
    "working_set_mib",
    type=click.IntRange(min=0),
    default=GuestShape.working_set_mib,
    show_default=True,
    help="Guest memory the guest keeps rewriting, MiB.",
)
@click.option(
    "--dirty-rate",
    "dirty_rate_mib_s",
    type=click.IntRange(min=0),
    default=GuestShape.dirty_rate_mib_s,
    show_default=True,
    help="How fast the guest rewrites it, MiB/s (0: as fast as it can).",
)
def demo_command(
    *, sim: bool, bandwidth: int, memory_mib: int, working_set_mib: int, dirty_rate_mib_s: int
) -> None:
    """Start two hosts on this machine (two daemons, a throwaway CA), start a guest on the
    first, migrate it live peer-to-peer to the second and back with a progress bar, and
    print what each migration cost. Everything started is stopped at the end.
    """
    # The demo drives migrations with this package's own commands: import it when it runs.
    from migrator.demo import DemoOptions, run_demo, summary_table  # noqa: PLC0415

    try:
        shape = GuestShape(
            memory_mib=memory_mib,
            working_set_mib=working_set_mib,
            dirty_rate_mib_s=dirty_rate_mib_s,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    console = Console()
    simulated = sim or shutil.which(QEMU_BINARY) is None
    if simulated and not sim:
        console.print(
            Panel(
                f"{QEMU_BINARY} is not installed: the demo runs on the simulated driver "
                "(two in-process daemons sharing one simulated world). Install QEMU "
                "(./run demo does, as root) to migrate a real guest.",
                title="no QEMU",
                border_style="yellow",
            )
        )
    options = DemoOptions(shape=shape, bandwidth_mib_s=bandwidth, simulated=simulated)
    summaries = asyncio.run(run_demo(options, console=console))
    console.print()
    console.print(summary_table(summaries, simulated=simulated))
