"""Parameter sets <-> msgpack-friendly data (cookies and status files)."""

from __future__ import annotations

import msgpack
import pytest

from params import MigrationFlag, Param, ParamsError, ParamSet, Side, from_typed, from_wire, to_wire


def test_shape_and_msgpack_round_trip() -> None:
    pset = from_typed(
        {"bandwidth": 1, "migrate_disks": ["vda"], "compression": "mt"},
        flags=MigrationFlag.TUNNELLED,
        side=Side.SOURCE,
    )
    data = to_wire(pset)
    assert data == {
        "values": {"max-bandwidth": 1048576, "migrate_disks": ["vda"], "compression": ["mt"]},
        "capabilities": ["compress"],
    }
    assert from_wire(msgpack.unpackb(msgpack.packb(data))) == pset
    assert from_wire(msgpack.unpackb(msgpack.packb(data), use_list=False)) == pset


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "migration parameters must be a map"),
        ({"values": {}, "extra": 1}, "unexpected field 'extra' in migration parameters"),
        ({"values": []}, "'values' must be a map"),
        ({"capabilities": "xbzrle"}, "'capabilities' must be a list"),
        ({"values": {"speed": 1}}, "unknown migration parameter 'speed'"),
        ({"values": {1: 1}}, "unknown migration parameter '1'"),
        ({"capabilities": ["turbo"]}, "unknown migration parameter 'turbo'"),
        ({"values": {"xbzrle": True}}, "'xbzrle' is a migration capability, not a parameter"),
        ({"capabilities": ["max-bandwidth"]}, "'max-bandwidth' is not a migration capability"),
        ({"values": {"max-bandwidth": "1"}}, "invalid type 'string' for parameter"),
        ({"values": {"compression": ["gzip"]}}, "Unsupported compression method 'gzip'"),
        (
            {"values": {"compression": ["mt", "mt"]}, "capabilities": ["compress"]},
            "Compression method 'mt' is specified twice",
        ),
    ],
)
def test_bad_data_is_refused(data: object, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        from_wire(data)


def test_missing_fields_mean_empty() -> None:
    assert from_wire({}) == ParamSet()
    assert from_wire({"capabilities": ["multifd"]}).capabilities == {Param.MULTIFD}
