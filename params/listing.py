"""The table as plain data, one object per row (``migrator params list``)."""

from __future__ import annotations

from collections.abc import Mapping

from params.flags import MigrationFlag, Side
from params.row import CompressionMethod, Row
from params.table import TABLE, Param


def side_names(side: Side) -> list[str]:
    """The lower-case names of the sides in ``side``."""
    return [str(member.name).lower() for member in side]


def describe_row(param: Param, row: Row) -> dict[str, object]:
    """Every column of ``row`` as JSON-friendly data."""
    return {
        "param": param.name,
        "key": row.key,
        "kind": row.kind.value,
        "qmp_name": row.qmp_name,
        "typed_name": row.typed_name,
        "type": row.value_type.value,
        "multi": row.multi,
        "unit": row.unit.label or None,
        "typed_unit": row.typed_unit.label if row.typed_unit else None,
        "factor": row.factor,
        "range": list(row.value_range) if row.value_range else None,
        "choices": list(row.choices) or None,
        "side": side_names(row.side),
        "flag": str(row.flag_rule.flag.name).lower() if row.flag_rule else None,
        "flag_match": row.flag_rule.match.value if row.flag_rule else None,
        "always_on": side_names(row.always_on) if row.always_on else None,
        "carries": sorted(method.value for method in row.carries) or None,
        "requires": requirement_text(row.requires) if row.requires else None,
        "on_postcopy_resume": row.on_postcopy_resume,
        "per_migration": row.per_migration,
        "description": row.description,
    }


def requirement_text(requires: MigrationFlag | CompressionMethod) -> str:
    """A requirement as people and machines read it: ``auto_converge``, ``compression=mt``."""
    if isinstance(requires, CompressionMethod):
        return f"compression={requires.value}"
    return str(requires.name).lower()


def describe(table: Mapping[Param, Row] = TABLE) -> list[dict[str, object]]:
    """One :func:`describe_row` object per row, in table order."""
    return [describe_row(param, row) for param, row in table.items()]
