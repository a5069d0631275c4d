"""QEMU's option syntax: ``driver,key=value,...`` strings with commas in values doubled.

Only option strings go through here. Arguments that QEMU takes verbatim (``-kernel``,
``-append``, ``-pidfile``, ...) are passed as they are, since the argv never sees a shell.
"""

from __future__ import annotations

from collections.abc import Iterable

#: A value of one option: strings are escaped, booleans become ``on``/``off``.
OptionValue = str | int | bool

#: One ``key=value`` pair of an option string.
Property = tuple[str, OptionValue]


def escape(value: str) -> str:
    """``value`` as QEMU's option parser reads it back: every comma doubled."""
    return value.replace(",", ",,")


def format_value(value: OptionValue) -> str:
    """The text of one option value."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int):
        return str(value)
    return escape(value)


def option_string(head: str | None, properties: Iterable[Property]) -> str:
    """``head,key=value,...``; ``head`` (a driver or backend name) is written as is.

    A ``None`` head starts the string with the first property.
    """
    parts = [] if head is None else [head]
    parts.extend(f"{key}={format_value(value)}" for key, value in properties)
    return ",".join(parts)
