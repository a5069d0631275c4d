"""Migration flags (libvirt's ``VIR_MIGRATE_*`` bits) and the sides of a migration."""

from __future__ import annotations

import enum

from params.errors import ParamsError


class MigrationFlag(enum.IntFlag):
    """libvirt's ``virDomainMigrateFlags``, with libvirt's bit values."""

    LIVE = 1 << 0
    PEER2PEER = 1 << 1
    TUNNELLED = 1 << 2
    PERSIST_DEST = 1 << 3
    UNDEFINE_SOURCE = 1 << 4
    PAUSED = 1 << 5
    NON_SHARED_DISK = 1 << 6
    NON_SHARED_INC = 1 << 7
    CHANGE_PROTECTION = 1 << 8
    UNSAFE = 1 << 9
    OFFLINE = 1 << 10
    COMPRESSED = 1 << 11
    ABORT_ON_ERROR = 1 << 12
    AUTO_CONVERGE = 1 << 13
    RDMA_PIN_ALL = 1 << 14
    POSTCOPY = 1 << 15
    TLS = 1 << 16
    PARALLEL = 1 << 17
    NON_SHARED_SYNCHRONOUS_WRITES = 1 << 18
    POSTCOPY_RESUME = 1 << 19
    ZEROCOPY = 1 << 20


class Side(enum.Flag):
    """The side(s) of a migration a parameter applies to (libvirt's ``qemuMigrationParty``)."""

    SOURCE = enum.auto()
    DESTINATION = enum.auto()
    BOTH = SOURCE | DESTINATION


def parse_flags(text: str) -> MigrationFlag:
    """Parse a comma-separated list of flag names (``"live,peer2peer"``), case-insensitive.

    ``-`` and ``_`` are interchangeable; blanks around names and empty items are ignored.

    Raises:
        ParamsError: a name is not a migration flag (``name`` is that name).
    """
    flags = MigrationFlag(0)
    for item in text.split(","):
        name = item.strip()
        if not name:
            continue
        member = MigrationFlag.__members__.get(name.upper().replace("-", "_"))
        if member is None:
            raise ParamsError(f"unknown migration flag '{name}'", name=name)
        flags |= member
    return flags


def format_flags(flags: MigrationFlag) -> str:
    """The comma-separated lower-case names of ``flags``; the inverse of :func:`parse_flags`."""
    return ",".join(str(member.name).lower() for member in flags)
