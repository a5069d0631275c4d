"""Migration flags: libvirt's bit values and the comma-list parser."""

from __future__ import annotations

import pytest

from params import MigrationFlag, ParamsError, Side, format_flags, parse_flags

LIBVIRT_BITS = [
    "LIVE", "PEER2PEER", "TUNNELLED", "PERSIST_DEST", "UNDEFINE_SOURCE", "PAUSED",
    "NON_SHARED_DISK", "NON_SHARED_INC", "CHANGE_PROTECTION", "UNSAFE", "OFFLINE",
    "COMPRESSED", "ABORT_ON_ERROR", "AUTO_CONVERGE", "RDMA_PIN_ALL", "POSTCOPY", "TLS",
    "PARALLEL", "NON_SHARED_SYNCHRONOUS_WRITES", "POSTCOPY_RESUME", "ZEROCOPY",
]  # fmt: skip


def test_bit_values_are_libvirts() -> None:
    assert {member.name: member.value for member in MigrationFlag} == {
        name: 1 << bit for bit, name in enumerate(LIBVIRT_BITS)
    }


def test_parse_is_case_insensitive_and_takes_dashes() -> None:
    assert parse_flags("live,PEER2PEER, non-shared-disk") == (
        MigrationFlag.LIVE | MigrationFlag.PEER2PEER | MigrationFlag.NON_SHARED_DISK
    )
    assert parse_flags("") == MigrationFlag(0)
    assert parse_flags(" , ") == MigrationFlag(0)


def test_unknown_flag_is_named() -> None:
    with pytest.raises(ParamsError, match="unknown migration flag 'fast'") as info:
        parse_flags("live,fast")
    assert info.value.name == "fast"


def test_format_round_trips() -> None:
    flags = MigrationFlag.POSTCOPY | MigrationFlag.COMPRESSED | MigrationFlag.TLS
    assert format_flags(flags) == "compressed,postcopy,tls"
    assert parse_flags(format_flags(flags)) == flags


def test_both_sides() -> None:
    assert Side.BOTH == Side.SOURCE | Side.DESTINATION
