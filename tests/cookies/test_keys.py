"""Signing keys to and from bytes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cookies import (
    CookieError,
    KeyFormat,
    dump_private_key,
    dump_public_key,
    load_private_key,
    load_public_key,
)


@pytest.mark.parametrize("key_format", list(KeyFormat))
def test_keys_round_trip(signing_key: Ed25519PrivateKey, key_format: KeyFormat) -> None:
    private = dump_private_key(signing_key, key_format=key_format)
    public = dump_public_key(signing_key.public_key(), key_format=key_format)
    loaded = load_private_key(private)
    assert dump_private_key(loaded, key_format=key_format) == private
    assert load_public_key(public) == signing_key.public_key()
    if key_format is KeyFormat.PEM:
        assert private.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert public.startswith(b"-----BEGIN PUBLIC KEY-----")
    else:
        assert len(private) == len(public) == 32


def test_other_key_types_are_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(CookieError, match=r"not an Ed25519 private key: found"):
        load_private_key(private)
    with pytest.raises(CookieError, match=r"not an Ed25519 public key: found"):
        load_public_key(public)


@pytest.mark.parametrize("data", [b"", b"x" * 31, b"-----BEGIN PRIVATE KEY-----\nnope\n"])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(CookieError, match=r"not an Ed25519 private key"):
        load_private_key(data)
    with pytest.raises(CookieError, match=r"not an Ed25519 public key"):
        load_public_key(data)
