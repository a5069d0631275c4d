"""Memory sizes with libvirt's units, normalised to KiB.

libvirt accepts ``b``/``byte``/``bytes``; then ``k``, ``m``, ``g``, ``t``, ``p``, ``e`` on
their own or with ``iB`` for powers of 1024, and with ``B`` for powers of 1000 (``KB`` is
1000 bytes, ``KiB`` and ``k`` are 1024). The letter case does not matter. Sizes round up to
whole KiB, as libvirt does: ``<memory unit='b'>1025</memory>`` is 2 KiB.
"""

from __future__ import annotations

import re

__all__ = ["MAX_MEMORY_KIB", "memory_kib"]

#: The largest size libvirt can hold: a signed 64-bit count of bytes.
MAX_MEMORY_KIB = (2**63 - 1) // 1024

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
#: Bytes per unit letter: (powers of 1024, powers of 1000).
_SCALES: dict[str, tuple[int, int]] = {
    "k": (2**10, 10**3),
    "m": (2**20, 10**6),
    "g": (2**30, 10**9),
    "t": (2**40, 10**12),
    "p": (2**50, 10**15),
    "e": (2**60, 10**18),
}


def _bytes_per_unit(unit: str) -> int | None:
    lowered = unit.lower()
    if lowered in ("b", "byte", "bytes"):
        return 1
    scales = _SCALES.get(lowered[:1])
    if scales is None:
        return None
    binary, decimal = scales
    suffix = lowered[1:]
    if suffix in ("", "ib"):
        return binary
    if suffix == "b":
        return decimal
    return None


def memory_kib(value: str, unit: str | None) -> int:
    """Return ``value`` in ``unit`` (KiB when ``None``) as a whole number of KiB.

    Raises:
        ValueError: the value is not a non-negative integer, the unit is unknown, or the
            size is above :data:`MAX_MEMORY_KIB`. The message names which.
    """
    text = value.strip()
    if not _DIGITS.fullmatch(text):
        raise ValueError(f"invalid memory size '{value}'")
    factor = 1024 if unit is None else _bytes_per_unit(unit)
    if factor is None:
        raise ValueError(f"unknown memory unit '{unit}'")
    kib = -(-int(text) * factor // 1024)
    if kib > MAX_MEMORY_KIB:
        raise ValueError(f"memory size '{value}' {unit or 'KiB'} is too large")
    return kib
