"""A row added to a copy of the table flows through every generated path with no other change.

The copy is keyed by an enum extended with the new members, as adding members to
:class:`Param` would do.
"""

from __future__ import annotations

import enum
from typing import Any, cast

import msgpack
import pytest
from hypothesis import given

from params import (
    TABLE,
    Kind,
    MigrationFlag,
    ParamsError,
    ParamSet,
    Row,
    Side,
    Unit,
    ValueType,
    describe,
    destination_typed,
    from_qmp_query,
    from_typed,
    from_wire,
    from_xml,
    to_qmp_capabilities,
    to_qmp_parameters,
    to_typed,
    to_wire,
    to_xml,
)

from .strategies import param_sets, typed_inputs

MIB = 1024 * 1024

Extended = cast(Any, enum.Enum)(
    "Extended",
    [(param.name, param.value) for param in TABLE]
    + [("VCPU_DIRTY_LIMIT", "vcpu-dirty-limit"), ("SWITCHOVER_ACK", "switchover-ack")],
)
DIRTY_LIMIT = Extended["VCPU_DIRTY_LIMIT"]
SWITCHOVER_ACK = Extended["SWITCHOVER_ACK"]

NEW_TABLE: dict[Any, Row] = {Extended[param.name]: row for param, row in TABLE.items()}
NEW_TABLE[DIRTY_LIMIT] = Row(
    Kind.PARAMETER,
    ValueType.ULL,
    Side.BOTH,
    "dirty-rate limit of each vCPU",
    qmp_name="vcpu-dirty-limit",
    typed_name="vcpu_dirty_limit",
    unit=Unit.BYTES_PER_SECOND,
    typed_unit=Unit.MIB_PER_SECOND,
    value_range=(MIB, 1 << 40),
    requires=MigrationFlag.AUTO_CONVERGE,
    on_postcopy_resume=True,
)
NEW_TABLE[SWITCHOVER_ACK] = Row(
    Kind.CAPABILITY,
    ValueType.BOOL,
    Side.BOTH,
    "destination acknowledges before switchover",
    qmp_name="switchover-ack",
    always_on=Side.BOTH,
)

FLAGS = MigrationFlag.LIVE | MigrationFlag.AUTO_CONVERGE


def built() -> ParamSet:
    return from_typed(
        {"vcpu_dirty_limit": 3, "bandwidth": 1}, flags=FLAGS, side=Side.SOURCE, table=NEW_TABLE
    )


def test_typed_in() -> None:
    pset = built()
    assert pset.get(DIRTY_LIMIT) == 3 * MIB
    with pytest.raises(ParamsError, match="Turn auto convergence on to tune it"):
        from_typed(
            {"vcpu_dirty_limit": 3}, flags=MigrationFlag(0), side=Side.SOURCE, table=NEW_TABLE
        )
    with pytest.raises(ParamsError, match="'vcpu_dirty_limit' must be between 1 and 1048576"):
        from_typed({"vcpu_dirty_limit": 0}, flags=FLAGS, side=Side.SOURCE, table=NEW_TABLE)
    with pytest.raises(ParamsError, match="parameter 'vcpu_dirty_limit' not supported"):
        from_typed({"vcpu_dirty_limit": 3}, flags=FLAGS, side=Side.SOURCE)


def test_qmp_out_and_in() -> None:
    pset = built()
    assert to_qmp_parameters(pset, table=NEW_TABLE)["vcpu-dirty-limit"] == 3 * MIB
    assert to_qmp_parameters(pset, postcopy_resume=True, table=NEW_TABLE) == {
        "vcpu-dirty-limit": 3 * MIB
    }
    reply = {"vcpu-dirty-limit": 5 * MIB, "downtime-limit": 300}
    assert from_qmp_query(reply, table=NEW_TABLE).get(DIRTY_LIMIT) == 5 * MIB
    assert from_qmp_query(reply).get(DIRTY_LIMIT) is None


def test_capability_with_the_cross_party_rule() -> None:
    supported = ["switchover-ack", "auto-converge", "return-path"]

    def state(remote: list[str] | None) -> dict[object, object]:
        items = to_qmp_capabilities(
            built(), supported=supported, remote_supported=remote, side=Side.SOURCE, table=NEW_TABLE
        )
        return {item["capability"]: item["state"] for item in items}

    assert state(None) == {"auto-converge": True, "return-path": True, "switchover-ack": False}
    assert state(["switchover-ack"])["switchover-ack"] is True


def test_xml_wire_and_dump() -> None:
    pset = ParamSet.validated({DIRTY_LIMIT: 7 * MIB}, [SWITCHOVER_ACK], table=NEW_TABLE)
    xml = to_xml(pset, table=NEW_TABLE)
    assert '<param name="vcpu-dirty-limit" value="7340032"/>' in xml
    assert '<capability name="switchover-ack" state="yes"/>' in xml
    assert from_xml(xml, table=NEW_TABLE) == pset
    data = msgpack.unpackb(msgpack.packb(to_wire(pset, table=NEW_TABLE)))
    assert data == {"values": {"vcpu-dirty-limit": 7 * MIB}, "capabilities": ["switchover-ack"]}
    assert from_wire(data, table=NEW_TABLE) == pset
    assert destination_typed(pset, table=NEW_TABLE) == ({"vcpu_dirty_limit": 7}, MigrationFlag(0))
    with pytest.raises(ParamsError, match="unknown migration parameter 'vcpu-dirty-limit'"):
        from_wire(data)


def test_listing() -> None:
    rows = {row["key"]: row for row in describe(NEW_TABLE)}
    assert rows["vcpu-dirty-limit"]["typed_unit"] == "MiB/s"
    assert rows["vcpu-dirty-limit"]["requires"] == "auto_converge"
    assert rows["switchover-ack"]["always_on"] == ["source", "destination"]
    assert len(rows) == len(TABLE) + 2


@given(param_sets(NEW_TABLE))
def test_round_trips_with_the_new_rows(pset: ParamSet) -> None:
    assert from_xml(to_xml(pset, table=NEW_TABLE), table=NEW_TABLE) == pset
    assert from_wire(to_wire(pset, table=NEW_TABLE), table=NEW_TABLE) == pset


@given(typed_inputs(NEW_TABLE))
def test_typed_round_trip_with_the_new_rows(
    inputs: tuple[dict[str, object], MigrationFlag],
) -> None:
    typed, flags = inputs
    side = Side.SOURCE
    pset = from_typed(typed, flags=flags, side=side, table=NEW_TABLE)
    back, extra = to_typed(pset, side=side, table=NEW_TABLE)
    kept = {p: v for p, v in pset.values.items() if NEW_TABLE[p].side & side}
    again = from_typed(back, flags=flags | extra, side=side, table=NEW_TABLE)
    assert again == ParamSet(kept, pset.capabilities)
