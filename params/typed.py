"""libvirt typed parameters <-> parameter sets, with libvirt's validation rules and messages.

Mirrors ``qemuMigrationParamsFromFlags`` (typed params + flags -> set) and
``qemuMigrationParamsDump`` (set -> the typed params the destination needs).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from params.errors import ParamsError
from params.flags import MigrationFlag, Side
from params.lookup import typed_param
from params.paramset import ParamSet, compression_methods
from params.row import DEFAULT_COMPRESSION, CompressionMethod, Kind, Row, requirement_label
from params.table import TABLE, Param
from params.values import Value, check_value, parse_method, parse_text


def from_typed(
    typed: Mapping[str, object],
    *,
    flags: MigrationFlag,
    side: Side,
    table: Mapping[Param, Row] = TABLE,
) -> ParamSet:
    """Build the parameter set for ``side`` from typed parameters and migration flags.

    Values are given in their typed unit (``bandwidth`` in MiB/s) and stored converted;
    multi-valued parameters take a string or a list of strings. Parameters and capabilities
    sent to QEMU are kept only when their row applies to ``side``; engine rows always are,
    since the source passes some of them on to the destination.

    Raises:
        ParamsError: an unknown name ("parameter '%s' not supported"), a wrong type, a value
            out of range or overflowing its unit, a tuning value without what it tunes
            ("Turn ... on to tune it"), or a bad combination of compression methods.
    """
    for name in typed:
        typed_param(table, name)
    values: dict[Param, Value] = {}
    for param, row in table.items():
        if row.typed_name is None or row.typed_name not in typed:
            continue
        if row.qmp_name is not None and not row.side & side:
            continue
        values[param] = check_value(
            row, typed[row.typed_name], name=row.typed_name, factor=row.factor
        )
    _require(table, values, kind=MigrationFlag, met=list(flags))
    capabilities = {
        param
        for param, row in table.items()
        if row.flag_rule is not None and row.side & side and row.flag_rule.enables(flags)
    }
    _select_compression(table, values, capabilities, flags=flags)
    return ParamSet(values, frozenset(capabilities))


def _require(
    table: Mapping[Param, Row],
    values: Mapping[Param, Value],
    *,
    kind: type[MigrationFlag] | type[CompressionMethod],
    met: Collection[MigrationFlag | CompressionMethod],
) -> None:
    for param in values:
        row = table[param]
        if isinstance(row.requires, kind) and row.requires not in met:
            raise ParamsError(
                f"Turn {requirement_label(row.requires)} on to tune it", name=row.typed_name
            )


def _select_compression(
    table: Mapping[Param, Row],
    values: dict[Param, Value],
    capabilities: set[Param],
    *,
    flags: MigrationFlag,
) -> None:
    """libvirt's ``qemuMigrationParamsSetCompression``, driven by the rows that carry methods."""
    parallel = bool(flags & MigrationFlag.PARALLEL)
    selectors = [param for param, row in table.items() if row.kind is Kind.COMPRESSION]
    chosen: list[CompressionMethod] = []
    for selector in selectors:
        names = values.get(selector, ())
        assert isinstance(names, tuple), "compression rows are multi-valued"
        for text in names:
            method = parse_method(text, seen=chosen)
            if method.parallel != parallel:
                support = "is only" if method.parallel else "isn't"
                raise ParamsError(
                    f"Compression method '{text}' {support} supported with parallel migration",
                    name=text,
                )
            _carry(table, values, capabilities, method)
            chosen.append(method)
    _require(table, values, kind=CompressionMethod, met=chosen)
    if chosen or not flags & MigrationFlag.COMPRESSED:
        return
    if parallel:
        raise ParamsError("No compression algorithm selected for parallel migration")
    for selector in selectors:
        values[selector] = (DEFAULT_COMPRESSION.value,)
        _carry(table, values, capabilities, DEFAULT_COMPRESSION)


def _carry(
    table: Mapping[Param, Row],
    values: dict[Param, Value],
    capabilities: set[Param],
    method: CompressionMethod,
) -> None:
    for param, row in table.items():
        if method not in row.carries:
            continue
        if row.kind is Kind.CAPABILITY:
            capabilities.add(param)
            continue
        if param in values:
            raise ParamsError(
                "Only one compression method could be specified with parallel compression",
                name=method.value,
            )
        values[param] = method.value


def to_typed(
    pset: ParamSet, *, side: Side, table: Mapping[Param, Row] = TABLE
) -> tuple[dict[str, object], MigrationFlag]:
    """The typed parameters of ``pset`` that apply to ``side``, in their typed units.

    Multi-valued parameters come out as lists. If the only compression method is the default
    one and nothing tunes it, ``COMPRESSED`` is returned in the flags as well, as libvirt's
    ``qemuMigrationParamsDump`` does.

    Raises:
        ParamsError: ``pset`` names an unknown compression method.
    """
    typed: dict[str, object] = {}
    for param, row in table.items():
        value = pset.values.get(param)
        if row.typed_name is None or value is None or not row.side & side:
            continue
        if isinstance(value, tuple):
            typed[row.typed_name] = list(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            typed[row.typed_name] = value // row.factor
        else:
            typed[row.typed_name] = value
    tuned = any(table[param].requires is DEFAULT_COMPRESSION for param in pset.values)
    only_default = compression_methods(pset, table=table) == (DEFAULT_COMPRESSION,)
    flags = MigrationFlag.COMPRESSED if only_default and not tuned else MigrationFlag(0)
    return typed, flags


def destination_typed(
    pset: ParamSet, *, table: Mapping[Param, Row] = TABLE
) -> tuple[dict[str, object], MigrationFlag]:
    """The typed parameters and extra flags the source sends to the destination's Prepare.

    Raises:
        ParamsError: as :func:`to_typed`.
    """
    return to_typed(pset, side=Side.DESTINATION, table=table)


def typed_from_text(
    items: Iterable[str], *, table: Mapping[Param, Row] = TABLE
) -> dict[str, object]:
    """Typed parameters from ``NAME=VALUE`` strings (the command line's ``--typed``).

    A multi-valued name may repeat; its values are collected in a list.

    Raises:
        ParamsError: an item without ``=``, an unknown name, a value that is not of the
            parameter's type, or a single-valued name given twice.
    """
    single: dict[str, object] = {}
    multi: dict[str, list[object]] = {}
    for item in items:
        name, equals, text = item.partition("=")
        if not equals:
            raise ParamsError(f"expected NAME=VALUE, not '{item}'", name=name)
        row = table[typed_param(table, name)]
        value = parse_text(row, text, name=name)
        if row.multi:
            multi.setdefault(name, []).append(value)
        elif name in single:
            raise ParamsError(f"parameter '{name}' occurs multiple times", name=name)
        else:
            single[name] = value
    return {**single, **multi}
