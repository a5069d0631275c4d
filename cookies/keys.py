"""Ed25519 signing keys for cookies: generate, and convert to and from bytes.

Pure: keys go in and out as bytes; reading and writing key files is the caller's job.
A raw key is exactly 32 bytes; anything else is read as PEM (PKCS#8 for private keys,
SubjectPublicKeyInfo for public keys, unencrypted).
"""

from __future__ import annotations

import enum

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from cookies.errors import CookieError

RAW_KEY_SIZE = 32


class KeyFormat(enum.Enum):
    """How a key is written as bytes."""

    RAW = "raw"
    PEM = "pem"


def generate_signing_key() -> Ed25519PrivateKey:
    """Return a new random Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def dump_private_key(key: Ed25519PrivateKey, *, key_format: KeyFormat = KeyFormat.PEM) -> bytes:
    """Return ``key`` as raw bytes or as unencrypted PKCS#8 PEM."""
    if key_format is KeyFormat.RAW:
        return key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def dump_public_key(key: Ed25519PublicKey, *, key_format: KeyFormat = KeyFormat.PEM) -> bytes:
    """Return ``key`` as raw bytes or as SubjectPublicKeyInfo PEM."""
    if key_format is KeyFormat.RAW:
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """Read an Ed25519 private key from raw bytes or PEM.

    Raises:
        CookieError: the bytes are not an unencrypted Ed25519 private key.
    """
    try:
        if len(data) == RAW_KEY_SIZE:
            return Ed25519PrivateKey.from_private_bytes(data)
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CookieError(f"not an Ed25519 private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CookieError(f"not an Ed25519 private key: found {type(key).__name__}")
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """Read an Ed25519 public key from raw bytes or PEM.

    Raises:
        CookieError: the bytes are not an Ed25519 public key.
    """
    try:
        if len(data) == RAW_KEY_SIZE:
            return Ed25519PublicKey.from_public_bytes(data)
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CookieError(f"not an Ed25519 public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CookieError(f"not an Ed25519 public key: found {type(key).__name__}")
    return key
