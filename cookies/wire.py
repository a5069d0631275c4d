"""The canonical wire form of a cookie: a signed msgpack envelope.

The envelope is the msgpack array ``[format_version, signer_host_uuid, payload, signature]``:
``payload`` is the msgpack of the cookie's plain data (``cookies.plain``) carried as opaque
bytes, and ``signature`` is the signer's Ed25519 signature over the msgpack array
``["migrator-cookie", format_version, signer_host_uuid, payload]``, so that neither the
version nor the signer can be changed either, and no other signed message passes for a
cookie.

Decoding refuses an oversize input before parsing anything, verifies the signature before
unpacking the payload, unpacks it with limits, and requires the signer to be the host the
cookie says it comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from cookies.cookie import Cookie
from cookies.errors import CookieError
from cookies.limits import DEFAULT_MAX_SIZE, check_size
from cookies.plain import cookie_from_plain, cookie_to_plain
from cookies.schema import canonical_uuid

FORMAT_VERSION = 1
SIGNATURE_CONTEXT = "migrator-cookie"
SIGNATURE_SIZE = 64

#: Most items in any one array or map of a payload (disks, capabilities, statistics...).
MAX_ITEMS = 4096

#: Where to find the public key of a host, by host UUID (canonical form).
TrustedKeys = Callable[[str], Ed25519PublicKey | None] | Mapping[str, Ed25519PublicKey]

_ENVELOPE_ITEMS = 4
# What msgpack raises on malformed input: FormatError, StackError, ExtraData and
# UnicodeDecodeError are ValueErrors; OutOfData and BufferFull are UnpackExceptions.
_UNPACK_ERRORS = (ValueError, msgpack.UnpackException)


@dataclass(frozen=True)
class UnverifiedCookie:
    """A cookie read without checking its signature: for display, never to act on."""

    signer_host_uuid: str
    cookie: Cookie


@dataclass(frozen=True)
class _Envelope:
    signer_host_uuid: str
    payload: bytes
    signature: bytes


def encode(
    cookie: Cookie, *, signing_key: Ed25519PrivateKey, max_size: int = DEFAULT_MAX_SIZE
) -> bytes:
    """Sign ``cookie`` with the sending host's key and return its wire form.

    The signer is ``cookie.hostuuid``.

    Raises:
        CookieError: the signed cookie is over ``max_size`` bytes.
    """
    payload = msgpack.packb(cookie_to_plain(cookie))
    data = seal_payload(payload, signer_host_uuid=cookie.hostuuid, signing_key=signing_key)
    check_size(len(data), max_size=max_size)
    return data


def seal_payload(payload: bytes, *, signer_host_uuid: str, signing_key: Ed25519PrivateKey) -> bytes:
    """Return the signed envelope around already packed ``payload`` bytes."""
    signature = signing_key.sign(_signed_message(signer_host_uuid, payload))
    envelope: bytes = msgpack.packb([FORMAT_VERSION, signer_host_uuid, payload, signature])
    return envelope


def decode(data: bytes, *, trusted_keys: TrustedKeys, max_size: int = DEFAULT_MAX_SIZE) -> Cookie:
    """Verify and decode a cookie in wire form.

    ``trusted_keys`` gives the public key of each host whose cookies are accepted.

    Raises:
        CookieError: oversize or malformed input, a signer with no trusted key ("cookie
            signed by unknown host <uuid>"), a bad signature ("cookie signature is
            invalid"), a malformed payload, an unknown mandatory feature, or a signer that
            is not the host the cookie names.
    """
    envelope = _open_envelope(data, max_size=max_size)
    key = _lookup(trusted_keys, envelope.signer_host_uuid)
    if key is None:
        raise CookieError(f"cookie signed by unknown host {envelope.signer_host_uuid}")
    try:
        key.verify(envelope.signature, _signed_message(envelope.signer_host_uuid, envelope.payload))
    except InvalidSignature:
        raise CookieError("cookie signature is invalid") from None
    return _unpack_payload(envelope)


def decode_unverified(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> UnverifiedCookie:
    """Decode a cookie in wire form WITHOUT checking its signature, to show it to people.

    Raises:
        CookieError: oversize or malformed input or payload, or an unknown mandatory
            feature.
    """
    envelope = _open_envelope(data, max_size=max_size)
    return UnverifiedCookie(envelope.signer_host_uuid, _unpack_payload(envelope))


def _signed_message(signer_host_uuid: str, payload: bytes) -> bytes:
    message: bytes = msgpack.packb([SIGNATURE_CONTEXT, FORMAT_VERSION, signer_host_uuid, payload])
    return message


def _open_envelope(data: bytes, *, max_size: int) -> _Envelope:
    check_size(len(data), max_size=max_size)
    fields = _unpack(data, max_array_len=_ENVELOPE_ITEMS, max_map_len=0, what="cookie envelope")
    if not isinstance(fields, list) or len(fields) != _ENVELOPE_ITEMS:
        raise CookieError("malformed cookie envelope: expected an array of 4 items")
    version, signer, payload, signature = fields
    if not isinstance(version, int) or isinstance(version, bool):
        raise CookieError("malformed cookie envelope: the format version is not a number")
    if version != FORMAT_VERSION:
        raise CookieError(f"unsupported cookie format version {version}")
    if not isinstance(signer, str) or canonical_uuid(signer, field="cookie signer") != signer:
        raise CookieError("malformed cookie envelope: the signer is not a host UUID")
    if not isinstance(payload, bytes):
        raise CookieError("malformed cookie envelope: the payload is not bytes")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
        raise CookieError(f"malformed cookie envelope: the signature is not {SIGNATURE_SIZE} bytes")
    return _Envelope(signer, payload, signature)


def _unpack_payload(envelope: _Envelope) -> Cookie:
    plain = _unpack(
        envelope.payload, max_array_len=MAX_ITEMS, max_map_len=MAX_ITEMS, what="cookie payload"
    )
    cookie = cookie_from_plain(plain)
    if cookie.hostuuid != envelope.signer_host_uuid:
        raise CookieError(
            f"cookie signed by host {envelope.signer_host_uuid} "
            f"claims to come from host {cookie.hostuuid}"
        )
    return cookie


def _unpack(data: bytes, *, max_array_len: int, max_map_len: int, what: str) -> Any:
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            strict_map_key=True,
            max_array_len=max_array_len,
            max_map_len=max_map_len,
        )
    except _UNPACK_ERRORS as exc:
        raise CookieError(f"malformed {what}: {exc}") from None


def _lookup(trusted_keys: TrustedKeys, host_uuid: str) -> Ed25519PublicKey | None:
    if isinstance(trusted_keys, Mapping):
        return trusted_keys.get(host_uuid)
    return trusted_keys(host_uuid)
