"""The migration cookie: features, msgpack wire form, libvirt-compatible XML form, signing.

A cookie is what one migration phase hands to the next: the guest's and the sending host's
identity plus feature data (graphics, lock state, persistent definition, statistics, ...).
Its canonical wire form is a signed msgpack envelope (:func:`encode`, :func:`decode`); its
XML form is libvirt's ``<qemu-migration>`` document (:func:`to_xml`, :func:`from_xml`). A
receiving phase runs :func:`check` with what it consumes (:data:`PHASE_FEATURES`).

Every error is a :class:`CookieError`. Nothing here does I/O.
"""

from cookies.checks import check
from cookies.cookie import Cookie
from cookies.errors import CookieError
from cookies.features import Feature
from cookies.keys import (
    KeyFormat,
    dump_private_key,
    dump_public_key,
    generate_signing_key,
    load_private_key,
    load_public_key,
)
from cookies.limits import DEFAULT_MAX_SIZE
from cookies.phases import PHASE_FEATURES, CookiePhase, PhaseFeatures
from cookies.plain import cookie_from_plain, cookie_to_plain
from cookies.records import (
    BlockDirtyBitmaps,
    Capability,
    DirtyBitmap,
    DirtyBitmapDisk,
    Graphics,
    GraphicsType,
    JobOperation,
    JobStatistics,
    LockState,
    Nbd,
    NbdDisk,
    Network,
    NetworkInterface,
    VPortType,
)
from cookies.wire import TrustedKeys, UnverifiedCookie, decode, decode_unverified, encode
from cookies.xmlform import from_xml, to_xml

__all__ = [
    "DEFAULT_MAX_SIZE",
    "PHASE_FEATURES",
    "BlockDirtyBitmaps",
    "Capability",
    "Cookie",
    "CookieError",
    "CookiePhase",
    "DirtyBitmap",
    "DirtyBitmapDisk",
    "Feature",
    "Graphics",
    "GraphicsType",
    "JobOperation",
    "JobStatistics",
    "KeyFormat",
    "LockState",
    "Nbd",
    "NbdDisk",
    "Network",
    "NetworkInterface",
    "PhaseFeatures",
    "TrustedKeys",
    "UnverifiedCookie",
    "VPortType",
    "check",
    "cookie_from_plain",
    "cookie_to_plain",
    "decode",
    "decode_unverified",
    "dump_private_key",
    "dump_public_key",
    "encode",
    "from_xml",
    "generate_signing_key",
    "load_private_key",
    "load_public_key",
    "to_xml",
]
