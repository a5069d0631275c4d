"""msgpack-RPC message shapes, and their checked conversion to and from msgpack objects.

Pure: no I/O. The three shapes are msgpack-RPC's::

    request       [0, msgid, method, params]
    response      [1, msgid, error, result]     error: nil or {"code", "message", "details"}
    notification  [2, method, params]

``params`` may be any msgpack value (maps suit named arguments). Method names starting with
``transport.`` are the transport's own control messages (:class:`ControlMethod`), so that
hello, keepalive and cancellation need no fourth shape.
"""

from __future__ import annotations

import enum
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from transport.errors import EncodeError, ProtocolViolation, WireError

#: Version of the transport's own protocol, exchanged in the hello.
PROTOCOL_VERSION = 1

#: Method names with this prefix are reserved for :class:`ControlMethod`.
RESERVED_PREFIX = "transport."

#: msgpack-RPC message ids are unsigned 32-bit integers.
MAX_MSGID = (1 << 32) - 1


class MessageType(enum.IntEnum):
    """The first element of every message."""

    REQUEST = 0
    RESPONSE = 1
    NOTIFICATION = 2


class ControlMethod(enum.Enum):
    """The transport's own methods, carried in the ordinary shapes."""

    #: request, client to server, first message: ``{"version": N}``; answered the same way
    #: or with an error (refused identity, unsupported version).
    HELLO = "transport.hello"
    #: request, either way, answered with a nil result: keepalive.
    PING = "transport.ping"
    #: notification, either way: ``[msgid]`` of a call the sender no longer waits for.
    CANCEL = "transport.cancel"


@dataclass(frozen=True, slots=True)
class Request:
    """A call that expects a response with the same ``msgid``."""

    msgid: int
    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class Response:
    """The answer to a request: an error or a result."""

    msgid: int
    error: WireError | None
    result: Any


@dataclass(frozen=True, slots=True)
class Notification:
    """A one-way message; no response."""

    method: str
    params: Any


Message = Request | Response | Notification


def is_reserved(method: str) -> bool:
    """Whether ``method`` is in the transport's reserved namespace."""
    return method.startswith(RESERVED_PREFIX)


def encode(message: Message) -> bytes:
    """The msgpack bytes of ``message``.

    Raises:
        EncodeError: the params, result or error details are not msgpack-serialisable.
    """
    match message:
        case Request(msgid, method, params):
            obj: list[Any] = [MessageType.REQUEST, msgid, method, params]
        case Response(msgid, None, result):
            obj = [MessageType.RESPONSE, msgid, None, result]
        case Response(msgid, WireError(code, text, details), _):
            obj = [
                MessageType.RESPONSE,
                msgid,
                {"code": code, "message": text, "details": dict(details)},
                None,
            ]
        case Notification(method, params):
            obj = [MessageType.NOTIFICATION, method, params]
    try:
        data: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode {type(message).__name__.lower()}: {exc}") from exc
    return data


def decode(obj: object) -> Message:
    """The message that the msgpack object ``obj`` holds, after checking its shape.

    Raises:
        ProtocolViolation: ``obj`` is not one of the three shapes.
    """
    if not isinstance(obj, list) or not obj or not _is_int(obj[0]):
        raise ProtocolViolation(f"not a msgpack-RPC message: {_describe(obj)}")
    kind = obj[0]
    if kind == MessageType.REQUEST and len(obj) == 4:
        return Request(_msgid(obj[1]), _method(obj[2]), obj[3])
    if kind == MessageType.RESPONSE and len(obj) == 4:
        return Response(_msgid(obj[1]), _error(obj[2]), obj[3])
    if kind == MessageType.NOTIFICATION and len(obj) == 3:
        return Notification(_method(obj[1]), obj[2])
    raise ProtocolViolation(f"not a msgpack-RPC message: type {kind} with {len(obj)} elements")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _msgid(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MSGID:
        return value
    raise ProtocolViolation(
        f"message id must be an unsigned 32-bit integer, not {_describe(value)}"
    )


def _method(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ProtocolViolation(f"method name must be a non-empty string, not {_describe(value)}")
    return value


def _error(value: object) -> WireError | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ProtocolViolation(f"response error must be nil or a map, not {_describe(value)}")
    code, text, details = value.get("code"), value.get("message"), value.get("details", {})
    if not isinstance(code, str) or not isinstance(text, str) or not isinstance(details, dict):
        raise ProtocolViolation("response error needs a string code and message and a map details")
    return WireError(code, text, details)


def _describe(value: object) -> str:
    return reprlib.repr(value)
