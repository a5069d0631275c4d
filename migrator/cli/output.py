"""How commands print: JSON for machines, aligned ``Label: value`` lines and sizes for
people, as virsh prints them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import click

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def echo_json(document: object) -> None:
    """Print ``document`` (plain data) as indented JSON."""
    click.echo(json.dumps(document, indent=2))


def echo_fields(rows: Sequence[tuple[str, str]]) -> None:
    """Print ``(label, value)`` rows with the values aligned, as ``virsh dominfo`` does."""
    if not rows:
        return
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        click.echo(f"{label + ':':<{width}} {value}".rstrip())


def format_bytes(size: int | float, *, decimals: int = 3) -> str:
    """``size`` bytes in the largest binary unit that keeps the number at least 1:
    ``512 B``, ``1.500 KiB``, ``3.000 GiB`` (``decimals`` digits after the point)."""
    value = float(size)
    for unit in _BINARY_UNITS:
        if abs(value) < 1024 or unit == _BINARY_UNITS[-1]:
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.{decimals}f} {unit}"
        value /= 1024
    raise AssertionError("unreachable: the last unit always returns")


def format_rate(bytes_per_second: int | float, *, decimals: int = 3) -> str:
    """A transfer rate: ``format_bytes`` per second."""
    return f"{format_bytes(bytes_per_second, decimals=decimals)}/s"


def format_duration_ms(milliseconds: int | float) -> str:
    """A duration given in milliseconds: ``850 ms``, ``12.3 s``, ``4 min 05 s``."""
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def or_dash(value: float | None, form: Callable[[float], str]) -> str:
    """``value`` shown by ``form``, or ``-`` when it is not known."""
    return "-" if value is None else form(value)
