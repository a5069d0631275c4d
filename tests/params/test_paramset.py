"""ParamSet: a frozen, hashable, validated value."""

from __future__ import annotations

import dataclasses

import pytest

from params import (
    TABLE,
    CompressionMethod,
    Param,
    ParamsError,
    ParamSet,
    compression_methods,
)


def test_equal_sets_are_equal_and_hash_alike() -> None:
    first = ParamSet(
        {Param.MAX_BANDWIDTH: 1, Param.MIGRATE_DISKS: ("vda",)}, frozenset({Param.MULTIFD})
    )
    second = ParamSet(
        {Param.MIGRATE_DISKS: ("vda",), Param.MAX_BANDWIDTH: 1}, frozenset({Param.MULTIFD})
    )
    assert first == second
    assert hash(first) == hash(second)
    assert first != ParamSet({Param.MAX_BANDWIDTH: 2, Param.MIGRATE_DISKS: ("vda",)})
    assert first != ParamSet(first.values)
    assert len({first, second}) == 1


def test_frozen() -> None:
    pset = ParamSet({Param.MAX_BANDWIDTH: 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        pset.capabilities = frozenset()  # type: ignore[misc]
    with pytest.raises(TypeError):
        pset.values[Param.MAX_BANDWIDTH] = 2  # type: ignore[index]


def test_source_mapping_is_copied() -> None:
    source = {Param.MAX_BANDWIDTH: 1}
    pset = ParamSet(source)
    source[Param.MAX_BANDWIDTH] = 2
    assert pset.get(Param.MAX_BANDWIDTH) == 1


def test_get() -> None:
    pset = ParamSet({Param.DOWNTIME_LIMIT: 300}, frozenset({Param.XBZRLE}))
    assert pset.get(Param.DOWNTIME_LIMIT) == 300
    assert pset.get(Param.MAX_BANDWIDTH) is None
    assert pset.get(Param.XBZRLE) is None
    assert Param.XBZRLE in pset.capabilities


def test_with_value_and_capability_validate() -> None:
    pset = ParamSet().with_value(Param.TLS_CREDS, "objlibvirt_migrate_tls0")
    assert pset.get(Param.TLS_CREDS) == "objlibvirt_migrate_tls0"
    bitmaps = pset.with_capability(Param.DIRTY_BITMAPS)
    assert bitmaps.capabilities == {Param.DIRTY_BITMAPS}
    assert bitmaps.with_capability(Param.DIRTY_BITMAPS, enabled=False) == pset
    with pytest.raises(ParamsError, match="must be between 1 and 255, not 0"):
        pset.with_value(Param.MULTIFD_CHANNELS, 0)
    with pytest.raises(ParamsError, match="'max-bandwidth' is not a migration capability"):
        pset.with_capability(Param.MAX_BANDWIDTH)


def test_compression_needs_its_carriers() -> None:
    methods = {Param.COMPRESSION: ("zstd", "mt")}
    with pytest.raises(ParamsError, match="'zstd' needs 'multifd-compression' to carry it"):
        ParamSet.validated(methods, {Param.COMPRESS})
    pset = ParamSet.validated({**methods, Param.MULTIFD_COMPRESSION: "zstd"}, {Param.COMPRESS})
    assert compression_methods(pset) == (CompressionMethod.ZSTD, CompressionMethod.MT)


def test_rows_missing_from_the_table_are_refused() -> None:
    table = {Param.MAX_BANDWIDTH: TABLE[Param.MAX_BANDWIDTH]}
    with pytest.raises(ParamsError, match="unknown migration parameter 'downtime-limit'"):
        ParamSet.validated({Param.DOWNTIME_LIMIT: 1}, table=table)
