"""Message shapes: every shape round-trips; anything else is a protocol violation."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transport.errors import (
    AuthenticationError,
    EncodeError,
    LimitExceeded,
    MethodNotFound,
    ProtocolViolation,
    RemoteError,
    TransportError,
    WireError,
    error_from_wire,
)
from transport.messages import Notification, Request, Response, decode, encode

#: msgpack values that decode back to themselves (string map keys, lists not tuples).
values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
msgids = st.integers(min_value=0, max_value=2**32 - 1)
methods = st.text(min_size=1, max_size=20)
wire_errors = st.builds(
    WireError, st.text(max_size=10), st.text(), st.dictionaries(st.text(max_size=5), values)
)
messages = (
    st.builds(Request, msgids, methods, values)
    | st.builds(Response, msgids, st.none(), values)
    | st.builds(Response, msgids, wire_errors, st.none())
    | st.builds(Notification, methods, values)
)


def _wire_round_trip(message: Any) -> Any:
    return decode(msgpack.unpackb(encode(message), raw=False, strict_map_key=True))


@given(messages)
def test_every_shape_round_trips(message: Any) -> None:
    assert _wire_round_trip(message) == message


def test_shapes_on_the_wire_are_msgpack_rpc() -> None:
    assert msgpack.unpackb(encode(Request(7, "echo", [1]))) == [0, 7, "echo", [1]]
    assert msgpack.unpackb(encode(Response(7, None, "ok"))) == [1, 7, None, "ok"]
    assert msgpack.unpackb(encode(Notification("tick", {"n": 1}))) == [2, "tick", {"n": 1}]
    error = msgpack.unpackb(encode(Response(7, WireError("boom", "it broke", {"a": 1}), None)))
    assert error == [1, 7, {"code": "boom", "message": "it broke", "details": {"a": 1}}, None]


@pytest.mark.parametrize(
    "obj",
    [
        None,
        {"a": 1},
        [],
        [3, 1, "m", None],
        [0, 1, "m"],
        [0, -1, "m", None],
        [0, 2**32, "m", None],
        [0, True, "m", None],
        [True, 1, "m", None],
        [0, 1, "", None],
        [0, 1, 7, None],
        [1, 1, "error as a string", None],
        [1, 1, {"code": 1, "message": "m"}, None],
        [1, 1, {"code": "c", "message": "m", "details": [1]}, None],
        [2, "m"],
        [2, b"m", None],
    ],
)
def test_other_shapes_are_protocol_violations(obj: object) -> None:
    with pytest.raises(ProtocolViolation):
        decode(obj)


def test_unserialisable_values_are_refused() -> None:
    with pytest.raises(EncodeError, match="cannot encode request"):
        encode(Request(1, "m", object()))
    with pytest.raises(EncodeError):
        encode(Notification("m", 2**70))


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("refused", details={"names": ["x"]}),
        LimitExceeded("too big", details={"limit": "max_frame_bytes"}),
        ProtocolViolation("bad"),
        MethodNotFound("no method 'x'"),
    ],
)
def test_transport_errors_keep_their_type_across_the_wire(error: TransportError) -> None:
    back = error_from_wire(error.to_wire())
    assert type(back) is type(error)
    assert (back.code, back.message, back.details) == (error.code, error.message, error.details)


def test_other_codes_arrive_as_remote_errors() -> None:
    back = error_from_wire(WireError("domain-not-found", "no vm1", {"name": "vm1"}))
    assert type(back) is RemoteError
    assert (back.code, back.message, back.details) == (
        "domain-not-found",
        "no vm1",
        {"name": "vm1"},
    )


def test_limit_exceeded_names_its_limit() -> None:
    assert LimitExceeded("x", details={"limit": "max_in_flight"}).limit == "max_in_flight"
