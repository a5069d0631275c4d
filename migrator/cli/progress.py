"""``migrate --verbose``: a live progress bar fed by the job events the daemon pushes.

:class:`ProgressView` turns one event's statistics into what the bar shows (pure);
:class:`MigrationProgressBar` draws it with rich.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn
from rich.text import Text

from cookies import JobStatistics
from migrator.cli.output import format_bytes, format_duration_ms, format_rate, or_dash

#: Page size assumed when a dirty rate comes without one (x86's).
DEFAULT_PAGE_SIZE = 4096


@dataclass(frozen=True)
class ProgressView:
    """What one moment of a migration looks like to a person.

    ``done`` and ``total`` size the bar (``done`` is the part of ``total`` no longer left to
    send); every other field is ``None`` when the daemon did not report it.
    """

    phase: str
    processed: int | None
    remaining: int | None
    total: int | None
    rate_bps: int | None
    dirty_bps: int | None
    iteration: int | None
    eta_ms: float | None

    @property
    def done(self) -> int:
        if self.total is None or self.remaining is None:
            return self.processed or 0
        return max(self.total - self.remaining, 0)

    @classmethod
    def waiting(cls, phase: str) -> ProgressView:
        """A view with nothing reported yet."""
        return cls(phase, None, None, None, None, None, None, None)

    @classmethod
    def of(cls, statistics: JobStatistics, *, phase: str) -> ProgressView:
        """The view of ``statistics``: data (memory and disks) when reported, else memory.

        The dirty rate is converted from pages to bytes; the time left is the daemon's
        estimate when it has one, else what is left at the current rate.
        """
        processed = _first(statistics.data_processed, statistics.memory_processed)
        remaining = _first(statistics.data_remaining, statistics.memory_remaining)
        total = _first(statistics.data_total, statistics.memory_total)
        rate = statistics.memory_bps
        dirty = None
        if statistics.memory_dirty_rate is not None:
            page_size = statistics.memory_page_size or DEFAULT_PAGE_SIZE
            dirty = statistics.memory_dirty_rate * page_size
        eta: float | None = statistics.time_remaining
        if eta is None and remaining is not None and rate:
            eta = remaining * 1000 / rate
        return cls(
            phase=phase,
            processed=processed,
            remaining=remaining,
            total=total,
            rate_bps=rate,
            dirty_bps=dirty,
            iteration=statistics.memory_iteration,
            eta_ms=eta,
        )

    def fields(self) -> dict[str, Any]:
        """The text of each column, ``-`` for what is not known."""
        return {
            "phase": self.phase,
            "processed": or_dash(self.processed, _short_bytes),
            "remaining": or_dash(self.remaining, _short_bytes),
            "rate": or_dash(self.rate_bps, _short_rate),
            "dirty": or_dash(self.dirty_bps, _short_rate),
            "iteration": or_dash(self.iteration, str),
            "eta": or_dash(self.eta_ms, format_duration_ms),
        }


def _short_bytes(size: float) -> str:
    return format_bytes(size, decimals=1)


def _short_rate(rate: float) -> str:
    return format_rate(rate, decimals=1)


def _first(*values: int | None) -> int | None:
    return next((value for value in values if value is not None), None)


class _ProgressWithDetails(Progress):
    """A progress bar with a line of details under it (narrow terminals keep both)."""

    def __init__(self, *columns: ProgressColumn, console: Console) -> None:
        self.details = Text()
        super().__init__(*columns, console=console)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield self.details


class MigrationProgressBar:
    """A rich progress bar for one migration; use as a context manager, then :meth:`show`
    each view. Writes to stderr, so that ``--json`` output on stdout stays clean."""

    def __init__(self, domain: str, *, console: Console | None = None) -> None:
        self._progress = _ProgressWithDetails(
            TextColumn("[bold]{task.description}[/] {task.fields[phase]}"),
            BarColumn(bar_width=30),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[processed]} sent"),
            console=console or Console(stderr=True),
        )
        blank = ProgressView.waiting("starting")
        self._task: TaskID = self._progress.add_task(domain, total=None, **blank.fields())

    def __enter__(self) -> MigrationProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def show(self, view: ProgressView) -> None:
        """Draw ``view``."""
        fields = view.fields()
        self._progress.details = Text(
            f"  left {fields['remaining']} · {fields['rate']} · dirtying {fields['dirty']}"
            f" · pass {fields['iteration']} · ETA {fields['eta']}"
        )
        self._progress.update(self._task, total=view.total, completed=view.done, **fields)

    def finish(self, view: ProgressView | None = None) -> None:
        """Fill the bar: the migration has completed (with ``view``, its final figures)."""
        if view is not None:
            self.show(view)
        total = self._progress.tasks[0].total or 1
        self._progress.update(self._task, total=total, completed=total)
