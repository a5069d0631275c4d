"""Cookies altered on their way between phases, for the faults that test the receiver's
checks. The wire form is ``[format_version, signer_host_uuid, payload, signature]`` (see
:mod:`cookies.wire`)."""

from __future__ import annotations

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cookies import cookie_to_plain, decode_unverified
from cookies.plain import MANDATORY_KEY
from cookies.wire import seal_payload
from migrator.scenario.errors import ScenarioError

#: A feature no release knows, announced as mandatory.
UNKNOWN_FEATURE = "teleport"


def tampered(cookie: bytes) -> bytes:
    """``cookie`` with one bit of its signed payload flipped; its signature kept.

    Raises:
        ScenarioError: ``cookie`` is not in wire form.
    """
    version, signer, payload, signature = _envelope(cookie)
    altered = bytearray(payload)
    altered[len(altered) // 2] ^= 0x01
    packed: bytes = msgpack.packb([version, signer, bytes(altered), signature])
    return packed


def with_unknown_feature(cookie: bytes, *, signing_key: Ed25519PrivateKey) -> bytes:
    """``cookie`` announcing the mandatory feature :data:`UNKNOWN_FEATURE` too, signed again
    with its sender's key (so that only the feature is wrong with it).

    Raises:
        ScenarioError: ``cookie`` is not in wire form.
        CookieError: ``cookie`` does not decode.
    """
    _envelope(cookie)
    decoded = decode_unverified(cookie).cookie
    plain = cookie_to_plain(decoded)
    plain[MANDATORY_KEY] = [*plain[MANDATORY_KEY], UNKNOWN_FEATURE]
    plain[UNKNOWN_FEATURE] = {"version": 1}
    return seal_payload(
        msgpack.packb(plain), signer_host_uuid=decoded.hostuuid, signing_key=signing_key
    )


def _envelope(cookie: bytes) -> tuple[object, object, bytes, object]:
    try:
        version, signer, payload, signature = msgpack.unpackb(cookie)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise ScenarioError("the cookie to alter is not a cookie envelope") from None
    if not isinstance(payload, bytes):
        raise ScenarioError("the cookie to alter has no payload")
    return version, signer, payload, signature
