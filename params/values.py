"""Checking, parsing and formatting one value against its row: shared by every form."""

from __future__ import annotations

import re
from collections.abc import Iterable

from params.errors import ParamsError
from params.row import CompressionMethod, Row, ValueType

#: A stored value. Multi-valued rows hold a tuple of strings.
Value = int | bool | str | tuple[str, ...]

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_ULL_TEXT = re.compile(r"[0-9]+")
_BOOL_TEXT = {"yes": True, "no": False}
# Characters that XML 1.0 can carry; every stored string must survive the <migParams> form.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def type_name(value: object) -> str:
    """The libvirt typed-parameter type name closest to a Python value's type."""
    if isinstance(value, bool):
        return ValueType.BOOL.value
    if isinstance(value, int):
        return ValueType.INT.value
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return ValueType.STRING.value
    return type(value).__name__


def _type_error(value: object, *, name: str, expected: ValueType) -> ParamsError:
    return ParamsError(
        f"invalid type '{type_name(value)}' for parameter '{name}', expected '{expected.value}'",
        name=name,
    )


def _invalid(text: str, *, name: str) -> ParamsError:
    return ParamsError(f"invalid value '{text}' for migration parameter '{name}'", name=name)


def check_value(row: Row, value: object, *, name: str, factor: int = 1) -> Value:
    """Check ``value`` against ``row`` and return it in stored form.

    ``factor`` multiplies an integer given in the row's typed unit; a value that would
    overflow the type is refused with libvirt's "must be less than" message.

    Raises:
        ParamsError: wrong type, several values for a single-valued row, out of range, not
            one of the row's choices, or a string that XML cannot carry.
    """
    if row.multi:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise _type_error(value, name=name, expected=row.value_type)
        if not items:
            raise ParamsError(f"migration parameter '{name}' needs at least one value", name=name)
        return tuple(_check_string(row, item, name=name) for item in items)
    if isinstance(value, list | tuple) and len(value) > 1:
        raise ParamsError(f"parameter '{name}' occurs multiple times", name=name)
    match row.value_type:
        case ValueType.BOOL:
            if not isinstance(value, bool):
                raise _type_error(value, name=name, expected=row.value_type)
            return value
        case ValueType.STRING:
            return _check_string(row, value, name=name)
        case _:
            return _check_integer(row, value, name=name, factor=factor)


def _check_string(row: Row, value: object, *, name: str) -> str:
    if not isinstance(value, str):
        raise _type_error(value, name=name, expected=ValueType.STRING)
    if row.choices and value not in row.choices:
        raise _invalid(value, name=name)
    if _NOT_XML_CHAR.search(value):
        raise ParamsError(
            f"migration parameter '{name}' holds a control character that XML cannot carry",
            name=name,
        )
    return value


def _check_integer(row: Row, value: object, *, name: str, factor: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(value, name=name, expected=row.value_type)
    bounds = row.bounds
    assert bounds is not None, "integer types always have bounds"
    low, high = -(-bounds[0] // factor), bounds[1] // factor
    if factor > 1 and value > high:
        raise ParamsError(f"migration parameter '{name}' must be less than {high + 1}", name=name)
    if not low <= value <= high:
        raise ParamsError(
            f"migration parameter '{name}' must be between {low} and {high}, not {value}",
            name=name,
        )
    return value * factor


def parse_text(row: Row, text: str, *, name: str) -> int | bool | str:
    """Parse one value written as text (XML attribute, command line) by the row's type.

    The result still has to go through :func:`check_value`.

    Raises:
        ParamsError: ``text`` is not a value of the row's type.
    """
    match row.value_type:
        case ValueType.STRING:
            return text
        case ValueType.BOOL:
            if text not in _BOOL_TEXT:
                raise _invalid(text, name=name)
            return _BOOL_TEXT[text]
        case ValueType.INT:
            pattern = _INT_TEXT
        case ValueType.ULL:
            pattern = _ULL_TEXT
    if not pattern.fullmatch(text):
        raise _invalid(text, name=name)
    return int(text)


def format_text(value: int | bool | str) -> str:
    """One value as :func:`parse_text` reads it back."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def parse_method(text: str, *, seen: Iterable[CompressionMethod] = ()) -> CompressionMethod:
    """The compression method named ``text``, which must not be one of ``seen``.

    Raises:
        ParamsError: an unknown method, or a method named twice (libvirt's messages).
    """
    try:
        method = CompressionMethod(text)
    except ValueError:
        raise ParamsError(f"Unsupported compression method '{text}'", name=text) from None
    if method in seen:
        raise ParamsError(f"Compression method '{text}' is specified twice", name=text)
    return method


def parse_methods(names: Iterable[str]) -> tuple[CompressionMethod, ...]:
    """The compression methods named by ``names``, in the order given.

    Raises:
        ParamsError: as :func:`parse_method`.
    """
    methods: list[CompressionMethod] = []
    for text in names:
        methods.append(parse_method(text, seen=methods))
    return tuple(methods)
