"""The features a migration cookie can carry, with libvirt's names, bits and mandatory rule.

A *mandatory* feature is announced with ``<feature name='...'/>`` (XML form) or listed under
``mandatory`` (msgpack form): a receiver that does not know it, or does not expect it in the
current phase, must refuse the cookie. Optional features that a receiver does not know or
does not need are ignored.
"""

from __future__ import annotations

import enum

from cookies.errors import CookieError


class Feature(enum.Enum):
    """A cookie feature: ``bit`` is libvirt's stable flag number, ``wire_name`` its name."""

    bit: int
    wire_name: str
    mandatory: bool

    GRAPHICS = (0, "graphics", False)
    LOCKSTATE = (1, "lockstate", True)
    PERSISTENT = (2, "persistent", True)
    NETWORK = (3, "network", False)
    NBD = (4, "nbd", False)
    STATISTICS = (5, "statistics", False)
    MEMORY_HOTPLUG = (6, "memory-hotplug", True)
    CPU_HOTPLUG = (7, "cpu-hotplug", True)
    CPU = (8, "cpu", False)
    #: Obsolete in libvirt; kept so that the bits of later features stay stable. Never carried.
    ALLOW_REBOOT = (9, "allowReboot", False)
    CAPABILITIES = (10, "capabilities", False)
    BLOCK_DIRTY_BITMAPS = (11, "block-dirty-bitmaps", False)

    def __init__(self, bit: int, wire_name: str, mandatory: bool) -> None:
        self.bit = bit
        self.wire_name = wire_name
        self.mandatory = mandatory


_BY_WIRE_NAME = {feature.wire_name: feature for feature in Feature}


def announced_feature(name: str) -> Feature:
    """Return the feature a peer announced as mandatory under ``name``.

    Raises:
        CookieError: the name is unknown ("Unknown migration cookie feature <name>"), or it is
            the obsolete ``allowReboot``, which no phase accepts ("Unsupported ...").
    """
    feature = _BY_WIRE_NAME.get(name)
    if feature is None:
        raise CookieError(f"Unknown migration cookie feature {name}", feature=name)
    if feature is Feature.ALLOW_REBOOT:
        raise CookieError(f"Unsupported migration cookie feature {name}", feature=name)
    return feature
