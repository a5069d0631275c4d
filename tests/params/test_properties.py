"""Properties: every generated path round-trips, and bad input raises only ParamsError."""

from __future__ import annotations

import contextlib

import msgpack
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from params import (
    TABLE,
    Kind,
    MigrationFlag,
    ParamsError,
    ParamSet,
    Side,
    from_qmp_query,
    from_typed,
    from_wire,
    from_xml,
    to_qmp_parameters,
    to_typed,
    to_wire,
    to_xml,
)

from .strategies import XML_TEXT, param_sets, typed_inputs

SIDES = st.sampled_from([Side.SOURCE, Side.DESTINATION])


@given(param_sets(TABLE))
def test_xml_round_trip(pset: ParamSet) -> None:
    assert from_xml(to_xml(pset)) == pset


@given(param_sets(TABLE))
def test_wire_round_trip_through_msgpack(pset: ParamSet) -> None:
    assert from_wire(msgpack.unpackb(msgpack.packb(to_wire(pset)))) == pset


@given(param_sets(TABLE))
def test_qmp_parameters_round_trip_through_a_query_reply(pset: ParamSet) -> None:
    sent = {p: v for p, v in pset.values.items() if TABLE[p].kind is Kind.PARAMETER}
    assert from_qmp_query(to_qmp_parameters(pset)) == ParamSet(sent)


@given(typed_inputs(TABLE), SIDES)
def test_typed_round_trip(inputs: tuple[dict[str, object], MigrationFlag], side: Side) -> None:
    typed, flags = inputs
    pset = from_typed(typed, flags=flags, side=side)
    back, extra = to_typed(pset, side=side)
    again = from_typed(back, flags=flags | extra, side=side)
    kept = {p: v for p, v in pset.values.items() if TABLE[p].side & side}
    assert again == ParamSet(kept, pset.capabilities)
    assert from_xml(to_xml(pset)) == pset


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | XML_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(XML_TEXT, inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from([row.key for row in TABLE.values()]) | XML_TEXT
TYPED_NAMES = st.sampled_from([row.typed_name for row in TABLE.values() if row.typed_name])


@given(st.dictionaries(st.sampled_from(["values", "capabilities"]), JSONISH) | JSONISH)
def test_random_wire_data_raises_only_params_error(data: object) -> None:
    with contextlib.suppress(ParamsError):
        from_wire(data)


@given(st.dictionaries(KEYS, JSONISH))
def test_random_query_reply_raises_only_params_error(reply: dict[str, object]) -> None:
    with contextlib.suppress(ParamsError):
        from_qmp_query(reply)


@given(st.dictionaries(TYPED_NAMES | XML_TEXT, JSONISH), st.integers(0, (1 << 21) - 1), SIDES)
def test_random_typed_raises_only_params_error(
    typed: dict[str, object], flags: int, side: Side
) -> None:
    with contextlib.suppress(ParamsError):
        from_typed(typed, flags=MigrationFlag(flags), side=side)


def _document(children: list[tuple[str, str, str, str]]) -> bytes:
    root = etree.Element("migParams")
    for tag, name, attribute, value in children:
        etree.SubElement(root, tag, {"name": name, attribute: value})
    return etree.tostring(root)


XML_DOCUMENTS = st.lists(
    st.tuples(
        st.sampled_from(["param", "capability", "other"]),
        KEYS,
        st.sampled_from(["value", "state"]),
        XML_TEXT | st.sampled_from(["yes", "no", "1", "-1", "xbzrle"]),
    ),
    max_size=4,
).map(_document)


@given(
    st.binary(max_size=200)
    | XML_TEXT.map(lambda text: f"<migParams>{text}</migParams>")
    | XML_DOCUMENTS
)
def test_random_xml_raises_only_params_error(text: str | bytes) -> None:
    with contextlib.suppress(ParamsError):
        from_xml(text)
