"""A validated set of migration parameter values and enabled capabilities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from params.errors import ParamsError
from params.lookup import row_of
from params.row import CompressionMethod, Kind, Row
from params.table import TABLE, Param
from params.values import Value, check_value, parse_methods


@dataclass(frozen=True)
class ParamSet:
    """Values of parameters (in stored units) and the capabilities that are on.

    Build one with :meth:`validated` or one of the generated paths (``from_typed``,
    ``from_xml``, ``from_wire``, ``from_qmp_query``); the plain constructor does not check.
    """

    values: Mapping[Param, Value] = field(default_factory=dict)
    capabilities: frozenset[Param] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "capabilities", frozenset(self.capabilities))

    def __hash__(self) -> int:
        return hash((frozenset(self.values.items()), self.capabilities))

    def get(self, param: Param) -> Value | None:
        """The value of ``param``, or None when it is not set (or is a capability)."""
        return self.values.get(param)

    @classmethod
    def validated(
        cls,
        values: Mapping[Param, object],
        capabilities: Iterable[Param] = (),
        *,
        table: Mapping[Param, Row] = TABLE,
    ) -> ParamSet:
        """Check every value and capability against ``table`` and build the set.

        Raises:
            ParamsError: a member without a row, a capability given a value or a parameter
                listed as a capability, a capability no migration sets (``events``), a bad
                value, or a compression method that no carrying row realises.
        """
        checked: dict[Param, Value] = {}
        for param, value in values.items():
            row = row_of(table, param)
            if row.kind is Kind.CAPABILITY:
                raise ParamsError(
                    f"'{row.key}' is a migration capability, not a parameter", name=row.key
                )
            checked[param] = check_value(row, value, name=row.key)
        enabled = frozenset(capabilities)
        for cap in enabled:
            row = row_of(table, cap)
            if row.kind is not Kind.CAPABILITY:
                raise ParamsError(f"'{row.key}' is not a migration capability", name=row.key)
            if not row.per_migration:
                raise ParamsError(
                    f"migration capability '{row.key}' is set when QEMU starts, not by a migration",
                    name=row.key,
                )
        pset = cls(checked, enabled)
        _check_compression(pset, table)
        return pset

    def with_value(
        self, param: Param, value: object, *, table: Mapping[Param, Row] = TABLE
    ) -> ParamSet:
        """A copy with ``param`` set to ``value``.

        Raises:
            ParamsError: as :meth:`validated`.
        """
        return ParamSet.validated({**self.values, param: value}, self.capabilities, table=table)

    def with_capability(
        self, param: Param, *, enabled: bool = True, table: Mapping[Param, Row] = TABLE
    ) -> ParamSet:
        """A copy with capability ``param`` turned on (or off).

        Raises:
            ParamsError: as :meth:`validated`.
        """
        caps = self.capabilities | {param} if enabled else self.capabilities - {param}
        return ParamSet.validated(self.values, caps, table=table)


def compression_methods(
    pset: ParamSet, *, table: Mapping[Param, Row] = TABLE
) -> tuple[CompressionMethod, ...]:
    """The compression methods ``pset`` names, in table then given order.

    Raises:
        ParamsError: a stored method name is unknown or repeated.
    """
    methods: list[CompressionMethod] = []
    for param, row in table.items():
        value = pset.values.get(param)
        if row.kind is Kind.COMPRESSION and isinstance(value, tuple):
            methods.extend(parse_methods(value))
    return tuple(methods)


def _realises(pset: ParamSet, param: Param, row: Row, method: CompressionMethod) -> bool:
    """Whether carrying row ``row`` of ``param`` has ``method`` on in ``pset``."""
    if row.kind is Kind.CAPABILITY:
        return param in pset.capabilities
    return pset.values.get(param) == method.value


def _check_compression(pset: ParamSet, table: Mapping[Param, Row]) -> None:
    for method in compression_methods(pset, table=table):
        for param, row in table.items():
            if method in row.carries and not _realises(pset, param, row, method):
                raise ParamsError(
                    f"compression method '{method.value}' needs '{row.key}' to carry it",
                    name=row.key,
                )
