"""What the demo measured about each migration, and the table it prints at the end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

from migrator.cli.output import format_bytes, format_duration_ms, or_dash
from migrator.client.types import JobInfo


@dataclass(frozen=True)
class MigrationSummary:
    """One migration of the demo.

    ``total_ms`` is the job's elapsed time as the source reported it (the client's wall
    time when it did not); ``heartbeat_gap_ms`` the longest silence of the guest's
    heartbeat around the switchover (None for a simulated guest, which has none).
    """

    source: str
    destination: str
    total_ms: float
    downtime_ms: float | None
    heartbeat_gap_ms: float | None
    bytes_moved: int | None

    @classmethod
    def of(
        cls,
        job: JobInfo,
        *,
        source: str,
        destination: str,
        wall_ms: float,
        heartbeat_gap_ms: float | None,
    ) -> MigrationSummary:
        """The summary of the completed ``job``."""
        statistics = job.statistics
        elapsed = statistics.time_elapsed
        moved = statistics.data_processed
        if moved is None:
            moved = statistics.memory_processed
        return cls(
            source=source,
            destination=destination,
            total_ms=wall_ms if elapsed is None else elapsed,
            downtime_ms=statistics.downtime,
            heartbeat_gap_ms=heartbeat_gap_ms,
            bytes_moved=moved,
        )


def summary_table(summaries: Sequence[MigrationSummary], *, simulated: bool = False) -> Table:
    """One row per migration: total time, QEMU downtime, heartbeat gap, bytes moved."""
    table = Table(
        title="live migrations, peer to peer over mutual TLS",
        title_justify="left",
        caption=(
            "simulated hosts: times are the simulator's virtual time, and a simulated guest "
            "has no heartbeat"
            if simulated
            else None
        ),
        caption_justify="left",
    )
    table.add_column("migration")
    for header in ("total time", "QEMU downtime", "heartbeat gap", "bytes moved"):
        table.add_column(header, justify="right")
    for summary in summaries:
        table.add_row(
            f"{summary.source} -> {summary.destination}",
            format_duration_ms(summary.total_ms),
            or_dash(summary.downtime_ms, format_duration_ms),
            or_dash(summary.heartbeat_gap_ms, format_duration_ms),
            or_dash(summary.bytes_moved, format_bytes),
        )
    return table
