"""The signed msgpack wire form: round trip, signature, limits, malformed envelopes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from cookies import (
    DEFAULT_MAX_SIZE,
    Cookie,
    CookieError,
    cookie_to_plain,
    decode,
    decode_unverified,
    encode,
    generate_signing_key,
)
from cookies.wire import FORMAT_VERSION, seal_payload
from tests.cookies.conftest import DESTINATION_HOST, SOURCE_HOST


def _trusted(key: Ed25519PrivateKey) -> dict[str, Ed25519PublicKey]:
    return {SOURCE_HOST: key.public_key()}


def _seal(plain: object, key: Ed25519PrivateKey, *, signer: str = SOURCE_HOST) -> bytes:
    return seal_payload(msgpack.packb(plain), signer_host_uuid=signer, signing_key=key)


def test_round_trip(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    data = encode(cookie, signing_key=signing_key)
    assert decode(data, trusted_keys=_trusted(signing_key)) == cookie


def test_trusted_keys_may_be_a_function(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    asked: list[str] = []

    def lookup(host_uuid: str) -> Ed25519PublicKey:
        asked.append(host_uuid)
        return signing_key.public_key()

    assert decode(encode(cookie, signing_key=signing_key), trusted_keys=lookup) == cookie
    assert asked == [SOURCE_HOST]


def test_envelope_layout(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    version, signer, payload, signature = msgpack.unpackb(encode(cookie, signing_key=signing_key))
    assert (version, signer, len(signature)) == (FORMAT_VERSION, SOURCE_HOST, 64)
    assert msgpack.unpackb(payload) == cookie_to_plain(cookie)


def test_unknown_signer_is_refused(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    data = encode(cookie, signing_key=signing_key)
    with pytest.raises(CookieError, match=f"^cookie signed by unknown host {SOURCE_HOST}$"):
        decode(data, trusted_keys={DESTINATION_HOST: signing_key.public_key()})


def test_wrong_key_is_refused(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    data = encode(cookie, signing_key=generate_signing_key())
    with pytest.raises(CookieError, match=r"^cookie signature is invalid$"):
        decode(data, trusted_keys=_trusted(signing_key))


def test_signer_must_be_the_host_the_cookie_names(
    cookie: Cookie, signing_key: Ed25519PrivateKey
) -> None:
    data = _seal(cookie_to_plain(cookie), signing_key, signer=DESTINATION_HOST)
    with pytest.raises(
        CookieError,
        match=f"cookie signed by host {DESTINATION_HOST} claims to come from host {SOURCE_HOST}",
    ):
        decode(data, trusted_keys={DESTINATION_HOST: signing_key.public_key()})


def test_oversize_refused_on_encode(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    big = dataclasses.replace(cookie, persistent="<domain>" + "x" * DEFAULT_MAX_SIZE + "</domain>")
    with pytest.raises(CookieError, match=f"over the limit of {DEFAULT_MAX_SIZE} bytes"):
        encode(big, signing_key=signing_key)
    data = encode(big, signing_key=signing_key, max_size=2 * DEFAULT_MAX_SIZE)
    assert decode(data, trusted_keys=_trusted(signing_key), max_size=2 * DEFAULT_MAX_SIZE) == big


def test_oversize_refused_on_decode_before_parsing(signing_key: Ed25519PrivateKey) -> None:
    # Not even msgpack: only the size check can have produced this message.
    data = b"\xc1" * 101
    with pytest.raises(CookieError, match=r"^cookie is 101 bytes, over the limit of 100 bytes$"):
        decode(data, trusted_keys=_trusted(signing_key), max_size=100)
    with pytest.raises(CookieError, match=r"over the limit"):
        decode_unverified(data, max_size=100)


def test_payload_is_not_unpacked_before_the_signature_is_checked(
    signing_key: Ed25519PrivateKey,
) -> None:
    garbage = b"\xc1\xc1\xc1"  # not msgpack at all
    data = msgpack.packb([FORMAT_VERSION, SOURCE_HOST, garbage, bytes(64)])
    with pytest.raises(CookieError, match=r"^cookie signature is invalid$"):
        decode(data, trusted_keys=_trusted(signing_key))


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ({"v": 1}, "malformed cookie envelope"),
        ([1, SOURCE_HOST, b""], "expected an array of 4 items"),
        (["1", SOURCE_HOST, b"", bytes(64)], "the format version is not a number"),
        ([True, SOURCE_HOST, b"", bytes(64)], "the format version is not a number"),
        ([2, SOURCE_HOST, b"", bytes(64)], "unsupported cookie format version 2"),
        ([1, SOURCE_HOST.upper(), b"", bytes(64)], "the signer is not a host UUID"),
        ([1, "host-a", b"", bytes(64)], "cookie signer: 'host-a' is not a UUID"),
        ([1, SOURCE_HOST, "payload", bytes(64)], "the payload is not bytes"),
        ([1, SOURCE_HOST, b"", bytes(63)], "the signature is not 64 bytes"),
    ],
)
def test_malformed_envelopes_are_refused(
    envelope: object, message: str, signing_key: Ed25519PrivateKey
) -> None:
    with pytest.raises(CookieError, match=message):
        decode(msgpack.packb(envelope), trusted_keys=_trusted(signing_key))


def test_trailing_bytes_are_refused(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    data = encode(cookie, signing_key=signing_key) + b"\x00"
    with pytest.raises(CookieError, match=r"malformed cookie envelope"):
        decode(data, trusted_keys=_trusted(signing_key))


def test_unknown_optional_data_is_ignored(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    plain = cookie_to_plain(cookie)
    plain["teleport"] = {"where": "moon"}
    plain["graphics"]["hdr"] = True
    assert decode(_seal(plain, signing_key), trusted_keys=_trusted(signing_key)) == cookie


def test_unknown_mandatory_feature_is_refused(
    cookie: Cookie, signing_key: Ed25519PrivateKey
) -> None:
    plain = cookie_to_plain(cookie)
    plain["mandatory"].append("teleport")
    plain["teleport"] = {"where": "moon"}
    with pytest.raises(CookieError, match=r"^Unknown migration cookie feature teleport$"):
        decode(_seal(plain, signing_key), trusted_keys=_trusted(signing_key))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda plain: plain.pop("name"), "Cookie.name is missing"),
        (lambda plain: plain.update(mandatory="lockstate"), "must be a list of feature names"),
        (lambda plain: plain.update(mandatory=["allowReboot"]), "Unsupported migration cookie"),
        (
            lambda plain: plain.pop("persistent"),
            "announces mandatory feature persistent but carries no data for it",
        ),
        (lambda plain: plain.update(graphics=[]), "Graphics must be a map, not list"),
        (lambda plain: plain["graphics"].update(type="hologram"), "Graphics.type: unknown value"),
        (lambda plain: plain["graphics"].update(type=True), "Graphics.type: unknown value"),
        (lambda plain: plain["graphics"].update(port="5901"), "Graphics.port must be int"),
        (lambda plain: plain["nbd"].update(disks={}), "Nbd.disks must be a list"),
        (lambda plain: plain["nbd"].update(disks=[7]), "NbdDisk must be a map, not int"),
        (lambda plain: plain["statistics"].update(operation=1.0), "operation: unknown value"),
        (lambda plain: plain["statistics"].update(downtime=1.5), "downtime must be int"),
        (lambda plain: plain["capabilities"][0].pop("name"), "Capability.name is missing"),
    ],
)
def test_malformed_payloads_are_refused(
    cookie: Cookie,
    signing_key: Ed25519PrivateKey,
    change: Callable[[dict[str, Any]], object],
    message: str,
) -> None:
    plain = cookie_to_plain(cookie)
    change(plain)
    with pytest.raises(CookieError, match=message):
        decode(_seal(plain, signing_key), trusted_keys=_trusted(signing_key))


def test_payload_must_be_a_map(signing_key: Ed25519PrivateKey) -> None:
    with pytest.raises(CookieError, match=r"cookie must be a map, not list"):
        decode(_seal([1, 2], signing_key), trusted_keys=_trusted(signing_key))


def test_payload_limits_apply(cookie: Cookie, signing_key: Ed25519PrivateKey) -> None:
    plain = cookie_to_plain(cookie)
    plain["filler"] = [0] * 5000
    with pytest.raises(CookieError, match=r"malformed cookie payload: .*max_array_len"):
        decode(_seal(plain, signing_key), trusted_keys=_trusted(signing_key))


def test_decode_unverified_shows_the_signer(cookie: Cookie) -> None:
    data = encode(cookie, signing_key=generate_signing_key())
    unverified = decode_unverified(data)
    assert (unverified.signer_host_uuid, unverified.cookie) == (SOURCE_HOST, cookie)
