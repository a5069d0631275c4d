"""Finding rows of a table: by member, by key, by typed-parameter name, by kind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from params.errors import ParamsError
from params.flags import Side
from params.row import Kind, Row
from params.table import Param


@dataclass(frozen=True)
class TableIndex:
    """The rows of one table arranged for the generated paths, in table order."""

    #: ``(member, QMP name, re-applied on post-copy resume)`` of each parameter row.
    parameters: tuple[tuple[Param, str, bool], ...]
    #: ``(member, QMP name, always-on party)`` of each capability a migration sets.
    capabilities: tuple[tuple[Param, str, Side | None], ...]
    #: Every member by its row's key (QMP name, else typed name).
    by_key: Mapping[str, Param]
    #: The members that have a typed-parameter name, by that name.
    by_typed_name: Mapping[str, Param]


_INDEXES: dict[int, tuple[Mapping[Param, Row], TableIndex]] = {}


def index_of(table: Mapping[Param, Row]) -> TableIndex:
    """The index of ``table``.

    A read-only table (a ``MappingProxyType``, such as :data:`params.TABLE`) is indexed once
    and must not change afterwards; any other mapping is indexed on every call.
    """
    if not isinstance(table, MappingProxyType):
        return _build(table)
    cached = _INDEXES.get(id(table))
    if cached is None or cached[0] is not table:
        cached = (table, _build(table))
        _INDEXES[id(table)] = cached
    return cached[1]


def _build(table: Mapping[Param, Row]) -> TableIndex:
    return TableIndex(
        parameters=tuple(
            (param, row.key, row.on_postcopy_resume)
            for param, row in table.items()
            if row.kind is Kind.PARAMETER
        ),
        capabilities=tuple(
            (param, row.key, row.always_on)
            for param, row in table.items()
            if row.kind is Kind.CAPABILITY and row.per_migration
        ),
        by_key=MappingProxyType({row.key: param for param, row in table.items()}),
        by_typed_name=MappingProxyType(
            {row.typed_name: param for param, row in table.items() if row.typed_name}
        ),
    )


def row_of(table: Mapping[Param, Row], param: Param) -> Row:
    """The row of ``param``.

    Raises:
        ParamsError: ``table`` has no row for ``param``.
    """
    row = table.get(param)
    if row is None:
        raise ParamsError(f"unknown migration parameter '{param.value}'", name=str(param.value))
    return row


def typed_param(table: Mapping[Param, Row], name: str) -> Param:
    """The member whose typed-parameter name is ``name``.

    Raises:
        ParamsError: no row has that typed name (libvirt's "parameter '%s' not supported").
    """
    param = index_of(table).by_typed_name.get(name)
    if param is None:
        raise ParamsError(f"parameter '{name}' not supported", name=name)
    return param
