"""Properties: every cookie round-trips; tampering and garbage raise only CookieError."""

from __future__ import annotations

import contextlib

import msgpack
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from cookies import (
    Cookie,
    CookieError,
    cookie_from_plain,
    cookie_to_plain,
    decode,
    decode_unverified,
    encode,
    from_xml,
    generate_signing_key,
    to_xml,
)
from cookies.wire import seal_payload
from tests.cookies import strategies

# One key for the whole module: generating keys is not what these properties are about.
KEY = generate_signing_key()
KEY_FUNCTION = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _trusted(cookie: Cookie) -> dict[str, Ed25519PublicKey]:
    return {cookie.hostuuid: KEY.public_key()}


@given(strategies.cookies)
def test_every_cookie_round_trips_through_msgpack(cookie: Cookie) -> None:
    data = encode(cookie, signing_key=KEY, max_size=1 << 20)
    assert decode(data, trusted_keys=_trusted(cookie), max_size=1 << 20) == cookie


@given(strategies.cookies)
def test_every_cookie_round_trips_through_xml(cookie: Cookie) -> None:
    assert from_xml(to_xml(cookie), max_size=1 << 20) == cookie


@given(strategies.cookies)
def test_every_cookie_round_trips_through_plain_data(cookie: Cookie) -> None:
    assert cookie_from_plain(cookie_to_plain(cookie, keep_defaults=True)) == cookie
    assert cookie_from_plain(cookie_to_plain(cookie)) == cookie


@given(strategies.cookies, st.data())
def test_any_single_byte_change_is_rejected(cookie: Cookie, data: st.DataObject) -> None:
    signed = encode(cookie, signing_key=KEY, max_size=1 << 20)
    position = data.draw(st.integers(0, len(signed) - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda byte: byte != signed[position]))
    tampered = signed[:position] + bytes([value]) + signed[position + 1 :]
    # Trust every host the change could name: only the signature can stop it.
    try:
        decode(tampered, trusted_keys=lambda _host: KEY.public_key(), max_size=1 << 20)
    except CookieError:
        return
    raise AssertionError(f"byte {position} changed to {value} was accepted")


@given(st.binary(max_size=512))
def test_random_bytes_raise_only_cookie_error(data: bytes) -> None:
    with contextlib.suppress(CookieError):
        decode(data, trusted_keys=lambda _host: KEY.public_key())
    with contextlib.suppress(CookieError):
        decode_unverified(data)


# Plain data of any shape, signed by a trusted key: exercises the payload decoder.
_plain_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_plain = st.recursive(
    _plain_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(strategies.cookies, st.data())
def test_signed_malformed_payloads_raise_only_cookie_error(
    cookie: Cookie, data: st.DataObject
) -> None:
    plain = cookie_to_plain(cookie)
    key = data.draw(st.sampled_from([*sorted(plain), "mandatory", "extra"]), label="key")
    plain[key] = data.draw(_plain, label="value")
    payload = msgpack.packb(plain)
    signed = seal_payload(payload, signer_host_uuid=cookie.hostuuid, signing_key=KEY)
    with contextlib.suppress(CookieError):
        decode(signed, trusted_keys=_trusted(cookie), max_size=1 << 20)


_tags = st.sampled_from(
    [
        "qemu-migration",
        "name",
        "uuid",
        "hostname",
        "hostuuid",
        "feature",
        "graphics",
        "cert",
        "lockstate",
        "leases",
        "domain",
        "network",
        "interface",
        "portdata",
        "nbd",
        "disk",
        "statistics",
        "downtime",
        "operation",
        "success",
        "errmsg",
        "cpu",
        "capabilities",
        "cap",
        "blockDirtyBitmaps",
        "bitmap",
        "other",
    ]
)
_attribute_names = st.sampled_from(
    [
        "name",
        "type",
        "port",
        "tlsPort",
        "listen",
        "info",
        "value",
        "driver",
        "index",
        "vporttype",
        "target",
        "capacity",
        "alias",
        "auto",
    ]
)
_values = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "5900",
        "99999999999999999999999",
        "spice",
        "vnc",
        "yes",
        "no",
        "subject",
        "openvswitch",
        "lockstate",
        "persistent",
        "memory-hotplug",
        "allowReboot",
        "vda",
        "5b8e3f2a-9c41-4d7e-8a0b-6f1e2d3c4b5a",
    ]
) | st.text(strategies.xml_char, max_size=6)


def _element(tag: str, attributes: dict[str, str], text: str, children: list[str]) -> str:
    element = etree.Element(tag, attributes)
    element.text = text
    for child in children:
        element.append(etree.fromstring(child))
    return etree.tostring(element, encoding="unicode")


_trees = st.recursive(
    st.builds(
        _element,
        _tags,
        st.dictionaries(_attribute_names, _values, max_size=3),
        _values,
        st.just([]),
    ),
    lambda children: st.builds(
        _element,
        _tags,
        st.dictionaries(_attribute_names, _values, max_size=3),
        _values,
        st.lists(children, max_size=5),
    ),
    max_leaves=12,
)


_HEADER = (
    "<name>vm1</name><uuid>5b8e3f2a-9c41-4d7e-8a0b-6f1e2d3c4b5a</uuid>"
    "<hostname>src</hostname><hostuuid>1f3c9a7e-2b5d-4c8f-9e01-a2b3c4d5e6f7</hostuuid>"
)


@given(
    st.sampled_from(["qemu-migration", "qemu-migration", "domain"]),
    st.sampled_from([_HEADER, _HEADER, ""]),
    st.lists(_trees, max_size=8),
)
def test_random_xml_raises_only_cookie_error(root: str, header: str, children: list[str]) -> None:
    document = f"<{root}>{header}{''.join(children)}</{root}>"
    with contextlib.suppress(CookieError):
        from_xml(document, max_size=1 << 20)


@given(st.text(max_size=300))
def test_random_text_raises_only_cookie_error(text: str) -> None:
    with contextlib.suppress(CookieError):
        from_xml(text)
