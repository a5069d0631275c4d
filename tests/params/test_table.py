"""The table itself: coverage of libvirt's and QEMU 7.2's names, and libvirt's rules as data."""

from __future__ import annotations

import pytest

from params import (
    TABLE,
    CompressionMethod,
    FlagMatch,
    FlagRule,
    Kind,
    MigrationFlag,
    Param,
    ParamsError,
    Row,
    Side,
    Unit,
    ValueType,
)

#: libvirt-facts section 2: every typed parameter of virDomainMigrate*.
LIBVIRT_TYPED = {
    "migrate_uri", "destination_name", "destination_xml", "persistent_xml", "bandwidth",
    "bandwidth.postcopy", "bandwidth.avail.switchover", "graphics_uri", "listen_address",
    "migrate_disks", "migrate_disks_detect_zeroes", "disks_port", "disks_uri", "compression",
    "compression.mt.level", "compression.mt.threads", "compression.mt.dthreads",
    "compression.xbzrle.cache", "compression.zlib.level", "compression.zstd.level",
    "auto_converge.initial", "auto_converge.increment", "parallel.connections",
    "tls.destination",
}  # fmt: skip

#: What QEMU 7.2 reports from query-migrate-parameters.
QEMU_7_2_PARAMETERS = {
    "announce-initial", "announce-max", "announce-rounds", "announce-step", "compress-level",
    "compress-threads", "compress-wait-thread", "decompress-threads",
    "throttle-trigger-threshold", "cpu-throttle-initial", "cpu-throttle-increment",
    "cpu-throttle-tailslow", "tls-creds", "tls-hostname", "tls-authz", "max-bandwidth",
    "downtime-limit", "x-checkpoint-delay", "block-incremental", "multifd-channels",
    "xbzrle-cache-size", "max-postcopy-bandwidth", "max-cpu-throttle", "multifd-compression",
    "multifd-zlib-level", "multifd-zstd-level",
}  # fmt: skip

#: What QEMU 7.2 reports from query-migrate-capabilities.
QEMU_7_2_CAPABILITIES = {
    "xbzrle", "rdma-pin-all", "auto-converge", "zero-blocks", "compress", "events",
    "postcopy-ram", "x-colo", "release-ram", "block", "return-path", "pause-before-switchover",
    "multifd", "dirty-bitmaps", "postcopy-blocktime", "late-block-activate", "x-ignore-shared",
    "validate-uuid", "background-snapshot", "zero-copy-send", "postcopy-preempt",
}  # fmt: skip

#: libvirt-facts 3a: QMP name -> (typed name, type, sides) for the rows libvirt drives.
LIBVIRT_PARAMETERS = {
    "compress-level": ("compression.mt.level", ValueType.INT, Side.BOTH),
    "compress-threads": ("compression.mt.threads", ValueType.INT, Side.BOTH),
    "decompress-threads": ("compression.mt.dthreads", ValueType.INT, Side.BOTH),
    "cpu-throttle-initial": ("auto_converge.initial", ValueType.INT, Side.SOURCE),
    "cpu-throttle-increment": ("auto_converge.increment", ValueType.INT, Side.SOURCE),
    "tls-creds": (None, ValueType.STRING, Side.BOTH),
    "tls-hostname": ("tls.destination", ValueType.STRING, Side.SOURCE),
    "max-bandwidth": ("bandwidth", ValueType.ULL, Side.SOURCE),
    "downtime-limit": (None, ValueType.ULL, Side.SOURCE),
    "block-incremental": (None, ValueType.BOOL, Side.SOURCE),
    "xbzrle-cache-size": ("compression.xbzrle.cache", ValueType.ULL, Side.BOTH),
    "max-postcopy-bandwidth": ("bandwidth.postcopy", ValueType.ULL, Side.BOTH),
    "multifd-channels": ("parallel.connections", ValueType.INT, Side.BOTH),
    "multifd-compression": (None, ValueType.STRING, Side.BOTH),
    "multifd-zlib-level": ("compression.zlib.level", ValueType.INT, Side.BOTH),
    "multifd-zstd-level": ("compression.zstd.level", ValueType.INT, Side.BOTH),
}

#: libvirt-facts 3b FlagMap: capability -> (flag, match, party).
FLAG_MAP = {
    "auto-converge": (MigrationFlag.AUTO_CONVERGE, FlagMatch.REQUIRED, Side.SOURCE),
    "rdma-pin-all": (MigrationFlag.RDMA_PIN_ALL, FlagMatch.REQUIRED, Side.BOTH),
    "postcopy-ram": (MigrationFlag.POSTCOPY, FlagMatch.REQUIRED, Side.BOTH),
    "multifd": (MigrationFlag.PARALLEL, FlagMatch.REQUIRED, Side.BOTH),
    "return-path": (MigrationFlag.TUNNELLED, FlagMatch.FORBIDDEN, Side.BOTH),
    "zero-copy-send": (MigrationFlag.ZEROCOPY, FlagMatch.REQUIRED, Side.SOURCE),
}

BY_KEY = {row.key: (param, row) for param, row in TABLE.items()}


def test_one_row_per_member_named_by_its_key() -> None:
    assert list(TABLE) == list(Param)
    assert all(param.value == row.key for param, row in TABLE.items())
    assert len(BY_KEY) == len(TABLE)


def test_typed_names_are_unique_and_cover_libvirt() -> None:
    typed = [row.typed_name for row in TABLE.values() if row.typed_name]
    assert len(typed) == len(set(typed))
    assert set(typed) == LIBVIRT_TYPED


def test_every_qemu_7_2_name_has_a_row_of_its_kind() -> None:
    parameters = {row.key for row in TABLE.values() if row.kind is Kind.PARAMETER}
    capabilities = {row.key for row in TABLE.values() if row.kind is Kind.CAPABILITY}
    assert parameters >= QEMU_7_2_PARAMETERS
    assert capabilities == QEMU_7_2_CAPABILITIES
    assert parameters - QEMU_7_2_PARAMETERS == {"avail-switchover-bandwidth"}


def test_at_least_forty_rows() -> None:
    assert len(TABLE) >= 40


@pytest.mark.parametrize("key", sorted(LIBVIRT_PARAMETERS))
def test_libvirt_parameter_rows(key: str) -> None:
    typed_name, value_type, side = LIBVIRT_PARAMETERS[key]
    _param, row = BY_KEY[key]
    assert (row.typed_name, row.value_type, row.side) == (typed_name, value_type, side)


def test_only_postcopy_bandwidth_is_reapplied_on_resume() -> None:
    resumed = [row.key for row in TABLE.values() if row.on_postcopy_resume]
    assert resumed == ["max-postcopy-bandwidth"]


def test_bandwidths_are_mib_per_second_typed_and_bytes_per_second_stored() -> None:
    for key in ("max-bandwidth", "max-postcopy-bandwidth", "avail-switchover-bandwidth"):
        row = BY_KEY[key][1]
        assert (row.typed_unit, row.unit, row.factor) == (
            Unit.MIB_PER_SECOND,
            Unit.BYTES_PER_SECOND,
            1024 * 1024,
        )


@pytest.mark.parametrize("key", sorted(FLAG_MAP))
def test_flag_map(key: str) -> None:
    flag, match, party = FLAG_MAP[key]
    row = BY_KEY[key][1]
    assert row.flag_rule == FlagRule(flag, match)
    assert row.side == party


def test_always_on_and_events() -> None:
    always = {row.key: row.always_on for row in TABLE.values() if row.always_on}
    assert always == {
        "pause-before-switchover": Side.SOURCE,
        "late-block-activate": Side.DESTINATION,
    }
    assert [row.key for row in TABLE.values() if not row.per_migration] == ["events"]


def test_compression_carriers() -> None:
    carried = {method: [row.key for row in TABLE.values() if method in row.carries]
               for method in CompressionMethod}  # fmt: skip
    assert carried == {
        CompressionMethod.XBZRLE: ["xbzrle"],
        CompressionMethod.MT: ["compress"],
        CompressionMethod.ZLIB: ["multifd-compression"],
        CompressionMethod.ZSTD: ["multifd-compression"],
    }


def test_engine_rows_never_reach_qemu() -> None:
    engine = {row.typed_name for row in TABLE.values() if row.kind is Kind.ENGINE}
    assert engine == {
        "migrate_uri", "destination_name", "destination_xml", "persistent_xml",
        "graphics_uri", "listen_address", "migrate_disks", "migrate_disks_detect_zeroes",
        "disks_port", "disks_uri",
    }  # fmt: skip
    assert all(row.qmp_name is None for row in TABLE.values() if row.kind is Kind.ENGINE)


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ({"kind": Kind.PARAMETER}, "QEMU-bound rows and only they have a QMP name"),
        ({"kind": Kind.ENGINE, "qmp_name": "x"}, "QEMU-bound rows and only they"),
        ({"kind": Kind.ENGINE}, "needs a typed-parameter name"),
        (
            {"kind": Kind.CAPABILITY, "qmp_name": "x", "value_type": ValueType.INT},
            "a capability is boolean",
        ),
        (
            {"qmp_name": "x", "always_on": Side.SOURCE},
            "only capabilities are turned on by flags or always",
        ),
        (
            {"qmp_name": "x", "value_type": ValueType.INT, "multi": True},
            "only strings can be multi-valued",
        ),
        ({"qmp_name": "x", "typed_unit": Unit.MIB_PER_SECOND}, "a typed unit needs"),
    ],
)
def test_contradictory_rows_are_refused(columns: dict[str, object], problem: str) -> None:
    arguments: dict[str, object] = {
        "kind": Kind.PARAMETER,
        "value_type": ValueType.STRING,
        "side": Side.SOURCE,
        "description": "test",
        **columns,
    }
    with pytest.raises(ParamsError, match=problem):
        Row(**arguments)  # type: ignore[arg-type]
