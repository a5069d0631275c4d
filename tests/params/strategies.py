"""Hypothesis strategies for valid parameter sets and typed parameters of any table."""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import strategies as st

from params import CompressionMethod, Kind, MigrationFlag, Param, ParamSet, Row, ValueType

#: Strings that XML can carry: no surrogates, no control characters but tab, CR and LF.
XML_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\t\r\n"),
    max_size=12,
)


def _scalar(row: Row, *, factor: int = 1) -> st.SearchStrategy[object]:
    if row.choices:
        return st.sampled_from(row.choices)
    match row.value_type:
        case ValueType.BOOL:
            return st.booleans()
        case ValueType.STRING:
            return XML_TEXT
        case _:
            assert row.bounds is not None
            low, high = row.bounds
            return st.integers(-(-low // factor), high // factor)


def stored_value(row: Row) -> st.SearchStrategy[object]:
    """A valid stored value of ``row``."""
    if row.multi:
        return st.lists(_scalar(row), min_size=1, max_size=3).map(tuple)
    return _scalar(row)


def typed_value(row: Row) -> st.SearchStrategy[object]:
    """A valid value of ``row`` in its typed unit."""
    if row.multi:
        return st.lists(_scalar(row), min_size=1, max_size=3)
    return _scalar(row, factor=row.factor)


@st.composite
def param_sets(draw: st.DrawFn, table: Mapping[Param, Row]) -> ParamSet:
    """Any valid parameter set of ``table``, compression methods included."""
    values: dict[Param, object] = {}
    capabilities: set[Param] = set()
    carriers = [param for param, row in table.items() if row.carries]
    for param, row in table.items():
        if row.kind is Kind.COMPRESSION or param in carriers:
            continue
        if row.kind is Kind.CAPABILITY:
            if row.per_migration and draw(st.booleans()):
                capabilities.add(param)
        elif draw(st.booleans()):
            values[param] = draw(stored_value(row))
    methods = draw(st.lists(st.sampled_from(CompressionMethod), unique=True, max_size=4))
    # A parameter carries one method at most (multifd-compression holds one name).
    parallel = [method for method in methods if method.parallel]
    methods = [method for method in methods if not method.parallel] + parallel[:1]
    for param in carriers:
        row = table[param]
        chosen = [method for method in methods if method in row.carries]
        if row.kind is Kind.CAPABILITY:
            if bool(chosen) or draw(st.booleans()):
                capabilities.add(param)
        elif chosen:
            values[param] = chosen[0].value
        elif draw(st.booleans()):
            values[param] = draw(stored_value(row))
    selectors = [param for param, row in table.items() if row.kind is Kind.COMPRESSION]
    if methods and selectors:
        values[selectors[0]] = tuple(method.value for method in methods)
    return ParamSet.validated(values, capabilities, table=table)


#: The flags that change what from_typed accepts or builds.
RELEVANT_FLAGS = (
    MigrationFlag.AUTO_CONVERGE,
    MigrationFlag.PARALLEL,
    MigrationFlag.COMPRESSED,
    MigrationFlag.POSTCOPY,
    MigrationFlag.TUNNELLED,
    MigrationFlag.RDMA_PIN_ALL,
    MigrationFlag.ZEROCOPY,
)


@st.composite
def typed_inputs(
    draw: st.DrawFn, table: Mapping[Param, Row]
) -> tuple[dict[str, object], MigrationFlag]:
    """Typed parameters and flags that from_typed accepts for either side."""
    flags = MigrationFlag(0)
    for flag in draw(st.lists(st.sampled_from(RELEVANT_FLAGS), unique=True)):
        flags |= flag
    parallel = bool(flags & MigrationFlag.PARALLEL)
    allowed = [method for method in CompressionMethod if method.parallel == parallel]
    methods = draw(st.lists(st.sampled_from(allowed), unique=True, max_size=2))
    if parallel:
        methods = methods[:1]
    if parallel and not methods:
        flags &= ~MigrationFlag.COMPRESSED
    typed: dict[str, object] = {}
    for row in table.values():
        if row.typed_name is None or row.kind is Kind.COMPRESSION:
            continue
        need = row.requires
        if isinstance(need, MigrationFlag) and not flags & need:
            continue
        if isinstance(need, CompressionMethod) and need not in methods:
            continue
        if draw(st.booleans()):
            typed[row.typed_name] = draw(typed_value(row))
    selector = next(row.typed_name for row in table.values() if row.kind is Kind.COMPRESSION)
    if methods and selector:
        typed[selector] = [method.value for method in methods]
    return typed, flags
