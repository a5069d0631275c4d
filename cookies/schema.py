"""What the fields of a cookie record may hold, read from the records' type hints.

Every record of the cookie (:class:`Record` subclasses) checks its own fields when it is
built, so a record that exists is valid and can be written in both the msgpack and the XML
form. The same field descriptions drive the generic msgpack mapping (``cookies.plain``) and
the statistics part of the XML form, so adding a field to a record needs no other code.

Field rules, from the type hint and the field's metadata:

- ``int``: a real ``int`` (not ``bool``) within the field's bounds (default: unsigned 64-bit);
- ``bool``, ``bytes``, an ``enum.Enum`` subclass, a ``Record`` subclass: an instance of it;
- ``str``: text that XML 1.0 can carry, non-empty when the metadata says so;
- ``tuple[R, ...]`` of a ``Record`` subclass: a tuple of instances;
- ``X | None``: also ``None``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Any

from cookies.errors import CookieError

UINT64_MAX = 2**64 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_BOUNDS_KEY = "bounds"
_NONEMPTY_KEY = "nonempty"

#: Metadata for a text field that must not be empty.
NONEMPTY: Mapping[str, object] = {_NONEMPTY_KEY: True}

# Characters XML 1.0 cannot carry, even escaped; and the ASCII characters it can.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ASCII = b"\t\n\r" + bytes(range(0x20, 0x80))
_CANONICAL_UUID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def bounds(minimum: int, maximum: int) -> Mapping[str, object]:
    """Metadata for an ``int`` field that must lie in ``minimum..maximum`` (inclusive)."""
    return {_BOUNDS_KEY: (minimum, maximum)}


class FieldKind(enum.Enum):
    """What a record field holds."""

    INT = enum.auto()
    BOOL = enum.auto()
    TEXT = enum.auto()
    BYTES = enum.auto()
    ENUM = enum.auto()
    RECORD = enum.auto()
    RECORDS = enum.auto()


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """One field of a record: its kind and limits.

    ``value_type`` is the Python type of the value, or of each item for ``RECORDS``;
    ``default`` is the value of a field that is not ``required``.
    """

    name: str
    kind: FieldKind
    value_type: type
    optional: bool
    required: bool
    default: object = None
    minimum: int = 0
    maximum: int = UINT64_MAX
    nonempty: bool = False


@dataclasses.dataclass(frozen=True)
class RecordSchema:
    """The fields of a record type: in order, by name, and grouped by kind.

    ``nested`` are the fields whose values are not plain data as they are (enums and
    records); the other groups hold plain tuples so that checking a record decoded from a
    peer is one tight loop per kind: ``ints`` (name, minimum, maximum, optional), ``texts``
    (name, nonempty, optional), ``instances`` (name, type, bool allowed, optional) and
    ``sequences`` (name, item type, optional).
    """

    fields: tuple[FieldSpec, ...]
    names: frozenset[str]
    required: frozenset[str]
    nested: tuple[FieldSpec, ...]
    ints: tuple[tuple[str, int, int, bool], ...]
    texts: tuple[tuple[str, bool, bool], ...]
    instances: tuple[tuple[str, type, bool, bool], ...]
    sequences: tuple[tuple[str, type, bool], ...]


@dataclasses.dataclass(frozen=True)
class Record:
    """Base of every cookie record: checks the fields against its :class:`RecordSchema`.

    Raises:
        CookieError: a field has the wrong type or is out of its limits.
    """

    def __post_init__(self) -> None:
        # Runs for every record decoded from a peer: the common path does as little as it can.
        record_type = type(self)
        schema = record_schema(record_type)
        values = vars(self)
        for name, minimum, maximum, optional in schema.ints:
            value = values[name]
            # type() rather than isinstance(): neither bool nor an IntEnum is an int here.
            if type(value) is int and minimum <= value <= maximum:
                continue
            if value is None and optional:
                continue
            if type(value) is int:
                where = f"{record_type.__name__}.{name}"
                raise CookieError(f"{where} must be from {minimum} to {maximum}, not {value}")
            _refuse(record_type, name, value, expected=int)
        for name, nonempty, optional in schema.texts:
            value = values[name]
            if type(value) is str and (value or not nonempty) and is_xml_text(value):
                continue
            if value is None and optional:
                continue
            if value == "":
                raise CookieError(f"{record_type.__name__}.{name} must not be empty")
            if type(value) is str:
                raise CookieError(
                    f"{record_type.__name__}.{name} holds characters that XML cannot carry"
                )
            _refuse(record_type, name, value, expected=str)
        for name, value_type, bool_allowed, optional in schema.instances:
            value = values[name]
            # bool is an int subclass: keep it out of int-valued enums.
            if isinstance(value, value_type) and (bool_allowed or not isinstance(value, bool)):
                continue
            if value is None and optional:
                continue
            _refuse(record_type, name, value, expected=value_type)
        for name, item_type, optional in schema.sequences:
            value = values[name]
            if isinstance(value, tuple) and all(isinstance(item, item_type) for item in value):
                continue
            if value is None and optional:
                continue
            raise CookieError(
                f"{record_type.__name__}.{name} must be a tuple of {item_type.__name__}"
            )


def record_fields(record_type: type[Record]) -> tuple[FieldSpec, ...]:
    """Describe the fields of ``record_type``, in declaration order."""
    return record_schema(record_type).fields


def record_schema(record_type: type[Record]) -> RecordSchema:
    """Describe ``record_type`` (built once per type, from its type hints and metadata)."""
    schema = _SCHEMAS.get(record_type)
    if schema is None:
        schema = _SCHEMAS[record_type] = _build_schema(record_type)
    return schema


_SCHEMAS: dict[type[Record], RecordSchema] = {}


def _build_schema(record_type: type[Record]) -> RecordSchema:
    hints = typing.get_type_hints(record_type)
    specs = tuple(
        _field_spec(field, hints[field.name]) for field in dataclasses.fields(record_type)
    )

    def of_kind(*kinds: FieldKind) -> list[FieldSpec]:
        return [spec for spec in specs if spec.kind in kinds]

    return RecordSchema(
        fields=specs,
        names=frozenset(spec.name for spec in specs),
        required=frozenset(spec.name for spec in specs if spec.required),
        nested=tuple(of_kind(FieldKind.ENUM, FieldKind.RECORD, FieldKind.RECORDS)),
        ints=tuple(
            (spec.name, spec.minimum, spec.maximum, spec.optional)
            for spec in of_kind(FieldKind.INT)
        ),
        texts=tuple((spec.name, spec.nonempty, spec.optional) for spec in of_kind(FieldKind.TEXT)),
        instances=tuple(
            (spec.name, spec.value_type, spec.kind is FieldKind.BOOL, spec.optional)
            for spec in of_kind(FieldKind.BOOL, FieldKind.BYTES, FieldKind.ENUM, FieldKind.RECORD)
        ),
        sequences=tuple(
            (spec.name, spec.value_type, spec.optional) for spec in of_kind(FieldKind.RECORDS)
        ),
    )


def is_xml_text(value: str) -> bool:
    """Whether XML 1.0 can carry ``value``.

    It cannot carry NUL, the other C0 controls except tab, newline and carriage return,
    lone surrogates, U+FFFE and U+FFFF.
    """
    # Every printable character is one XML can carry; most values are printable.
    if value.isprintable():
        return True
    if value.isascii():
        # Deleting the allowed characters leaves the others: ten times faster than the regex.
        return not value.encode("ascii").translate(None, _XML_ASCII)
    return _NOT_XML.search(value) is None


def canonical_uuid(value: object, *, field: str) -> str:
    """Return ``value`` (a UUID in any form ``uuid.UUID`` accepts) in canonical form.

    Raises:
        CookieError: ``value`` is not a UUID.
    """
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return value
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise CookieError(f"{field}: {_shorten(value)} is not a UUID")


def _field_spec(field: dataclasses.Field[Any], hint: object) -> FieldSpec:
    optional = False
    if isinstance(hint, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        (hint,) = members
    kind, value_type = _kind_of(hint)
    minimum, maximum = field.metadata.get(_BOUNDS_KEY, (0, UINT64_MAX))
    if field.default is not dataclasses.MISSING:
        required, default = False, field.default
    elif field.default_factory is not dataclasses.MISSING:
        required, default = False, field.default_factory()
    else:
        required, default = True, None
    return FieldSpec(
        name=field.name,
        kind=kind,
        value_type=value_type,
        optional=optional,
        required=required,
        default=default,
        minimum=minimum,
        maximum=maximum,
        nonempty=bool(field.metadata.get(_NONEMPTY_KEY, False)),
    )


def _kind_of(hint: object) -> tuple[FieldKind, type]:
    scalars = {
        bool: FieldKind.BOOL,
        int: FieldKind.INT,
        str: FieldKind.TEXT,
        bytes: FieldKind.BYTES,
    }
    if isinstance(hint, type):
        if hint in scalars:
            return scalars[hint], hint
        if issubclass(hint, enum.Enum):
            return FieldKind.ENUM, hint
        if issubclass(hint, Record):
            return FieldKind.RECORD, hint
    if typing.get_origin(hint) is tuple:
        item, ellipsis = typing.get_args(hint)
        if ellipsis is Ellipsis and isinstance(item, type) and issubclass(item, Record):
            return FieldKind.RECORDS, item
    raise TypeError(f"cookie records cannot hold a field of type {hint!r}")


def _refuse(record_type: type[Record], name: str, value: object, *, expected: type) -> None:
    where = f"{record_type.__name__}.{name}"
    if value is None:
        raise CookieError(f"{where} is required")
    raise CookieError(f"{where} must be {expected.__name__}, not {type(value).__name__}")


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
