"""Parameter sets <-> plain data for msgpack (cookies, status files).

The form is ``{"values": {key: value, ...}, "capabilities": [key, ...]}`` with rows named by
:attr:`Row.key` and multi-valued rows as lists. Everything is checked on the way in.
"""

from __future__ import annotations

from collections.abc import Mapping

from params.errors import ParamsError
from params.lookup import index_of
from params.paramset import ParamSet
from params.row import Row
from params.table import TABLE, Param

VALUES = "values"
CAPABILITIES = "capabilities"


def to_wire(pset: ParamSet, *, table: Mapping[Param, Row] = TABLE) -> dict[str, object]:
    """``pset`` as msgpack-friendly plain data, rows in table order."""
    values: dict[str, object] = {}
    for param, row in table.items():
        value = pset.values.get(param)
        if value is not None:
            values[row.key] = list(value) if isinstance(value, tuple) else value
    capabilities = [row.key for param, row in table.items() if param in pset.capabilities]
    return {VALUES: values, CAPABILITIES: capabilities}


def from_wire(data: object, *, table: Mapping[Param, Row] = TABLE) -> ParamSet:
    """The parameter set of plain data from :func:`to_wire` (after msgpack decoding).

    Raises:
        ParamsError: not a map of the two fields, an unknown field or name, or an invalid
            value.
    """
    if not isinstance(data, Mapping):
        raise ParamsError("migration parameters must be a map")
    unexpected = sorted(str(key) for key in data if key not in (VALUES, CAPABILITIES))
    if unexpected:
        raise ParamsError(f"unexpected field '{unexpected[0]}' in migration parameters")
    raw_values = data.get(VALUES, {})
    raw_capabilities = data.get(CAPABILITIES, [])
    if not isinstance(raw_values, Mapping):
        raise ParamsError(f"migration parameters: '{VALUES}' must be a map")
    if not isinstance(raw_capabilities, list | tuple):
        raise ParamsError(f"migration parameters: '{CAPABILITIES}' must be a list")
    index = index_of(table).by_key
    values = {_param(index, name): value for name, value in raw_values.items()}
    capabilities = [_param(index, name) for name in raw_capabilities]
    return ParamSet.validated(values, capabilities, table=table)


def _param(index: Mapping[str, Param], name: object) -> Param:
    param = index.get(name) if isinstance(name, str) else None
    if param is None:
        raise ParamsError(f"unknown migration parameter '{name}'", name=str(name))
    return param
