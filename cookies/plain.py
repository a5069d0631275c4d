"""Cookies as plain data (maps, lists, text, numbers, bytes): the msgpack payload.

A record becomes a map from field name to value; fields at their default (absent features,
unreported statistics) are left out. Keys a newer peer adds are ignored on the way in. The
cookie's map also lists, under ``mandatory``, the names of the mandatory features it
carries, so that a receiver refuses a mandatory feature it does not know.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from cookies.cookie import Cookie, require_announced
from cookies.errors import CookieError
from cookies.features import announced_feature
from cookies.schema import FieldKind, FieldSpec, Record, record_fields, record_schema

#: Key of the list of mandatory feature names in a cookie's map.
MANDATORY_KEY = "mandatory"

RecordT = TypeVar("RecordT", bound=Record)


def cookie_to_plain(cookie: Cookie, *, keep_defaults: bool = False) -> dict[str, Any]:
    """Return ``cookie`` as plain data, ready for msgpack.

    Fields at their default are left out unless ``keep_defaults`` (for people and tools
    that want every key present).
    """
    plain = record_to_plain(cookie, keep_defaults=keep_defaults)
    plain[MANDATORY_KEY] = [feature.wire_name for feature in cookie.mandatory_features]
    return plain


def cookie_from_plain(plain: object) -> Cookie:
    """Build a cookie from plain data, ignoring keys it does not know.

    Raises:
        CookieError: the data is not a cookie map, a field is missing or malformed, or a
            mandatory feature is unknown ("Unknown migration cookie feature <name>"),
            unsupported, or announced without data.
    """
    if not isinstance(plain, dict):
        raise CookieError(f"cookie must be a map, not {type(plain).__name__}")
    names = plain.get(MANDATORY_KEY, [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise CookieError(f"cookie field {MANDATORY_KEY} must be a list of feature names")
    announced = [announced_feature(name) for name in names]
    cookie = record_from_plain(Cookie, plain)
    require_announced(cookie, announced)
    return cookie


def record_to_plain(record: Record, *, keep_defaults: bool = False) -> dict[str, Any]:
    """Return ``record`` as a map from field name to plain value.

    Fields at their default are left out unless ``keep_defaults``.
    """
    plain: dict[str, Any] = {}
    for spec in record_fields(type(record)):
        value = getattr(record, spec.name)
        if keep_defaults or spec.required or value != spec.default:
            plain[spec.name] = _value_to_plain(spec, value, keep_defaults=keep_defaults)
    return plain


def record_from_plain(record_type: type[RecordT], plain: object) -> RecordT:
    """Build a ``record_type`` from its plain map.

    Raises:
        CookieError: not a map, a required field is missing, or a value is malformed.
    """
    if not isinstance(plain, dict):
        raise CookieError(f"{record_type.__name__} must be a map, not {type(plain).__name__}")
    schema = record_schema(record_type)
    if not schema.required.issubset(plain):
        missing = sorted(schema.required.difference(plain))
        raise CookieError(f"{record_type.__name__}.{missing[0]} is missing")
    if schema.names.issuperset(plain):
        if not schema.nested:
            return record_type(**plain)
        values = dict(plain)
    else:  # ignore a newer peer's optional data
        values = {key: value for key, value in plain.items() if key in schema.names}
    # Scalars go to the record as they are (the record checks their types); enums and
    # records are built here.
    for spec in schema.nested:
        value = values.get(spec.name)
        if value is not None:
            values[spec.name] = _nested_from_plain(record_type.__name__, spec, value)
    return record_type(**values)


def _value_to_plain(spec: FieldSpec, value: Any, *, keep_defaults: bool) -> Any:
    if value is None:
        return None
    if spec.kind is FieldKind.ENUM:
        return value.value
    if spec.kind is FieldKind.RECORD:
        return record_to_plain(value, keep_defaults=keep_defaults)
    if spec.kind is FieldKind.RECORDS:
        return [record_to_plain(item, keep_defaults=keep_defaults) for item in value]
    return value


def _nested_from_plain(owner: str, spec: FieldSpec, value: object) -> object:
    if spec.kind is FieldKind.ENUM:
        return _enum_member(owner, spec, value)
    if spec.kind is FieldKind.RECORD:
        return record_from_plain(spec.value_type, value)
    if not isinstance(value, list):
        raise CookieError(f"{owner}.{spec.name} must be a list")
    return tuple(record_from_plain(spec.value_type, item) for item in value)


def _enum_member(owner: str, spec: FieldSpec, value: object) -> enum.Enum:
    enum_type = spec.value_type
    assert issubclass(enum_type, enum.Enum)
    # bool equals int and int-valued enums would accept it; floats equal ints too.
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            return enum_type(value)
        except ValueError:
            pass
    raise CookieError(f"{owner}.{spec.name}: unknown value {value!r:.60}")
