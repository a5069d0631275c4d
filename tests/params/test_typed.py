"""Typed parameters + flags -> parameter set, with libvirt's rules and messages (section 3c),
and the set -> the typed parameters for the destination (qemuMigrationParamsDump).
"""

from __future__ import annotations

import pytest

from params import (
    MigrationFlag,
    Param,
    ParamsError,
    ParamSet,
    Side,
    destination_typed,
    from_typed,
    to_typed,
    typed_from_text,
)

F = MigrationFlag
NO_FLAGS = F(0)
MIB = 1024 * 1024


def build(
    typed: dict[str, object], flags: MigrationFlag = NO_FLAGS, side: Side = Side.SOURCE
) -> ParamSet:
    return from_typed(typed, flags=flags, side=side)


def refused(
    typed: dict[str, object], flags: MigrationFlag = NO_FLAGS, side: Side = Side.SOURCE
) -> ParamsError:
    with pytest.raises(ParamsError) as info:
        build(typed, flags, side)
    return info.value


@pytest.mark.parametrize(
    ("typed", "flags", "message"),
    [
        ({"auto_converge.initial": 20}, F.LIVE, "Turn auto convergence on to tune it"),
        ({"auto_converge.increment": 5}, F.LIVE, "Turn auto convergence on to tune it"),
        ({"parallel.connections": 4}, F.LIVE, "Turn parallel migration on to tune it"),
        ({"compression.mt.level": 1}, F(0), "Turn multithread compression on to tune it"),
        ({"compression.mt.threads": 2}, F(0), "Turn multithread compression on to tune it"),
        ({"compression.mt.dthreads": 2}, F(0), "Turn multithread compression on to tune it"),
        ({"compression.xbzrle.cache": MIB}, F(0), "Turn xbzrle compression on to tune it"),
        # libvirt checks tuning before COMPRESSED picks xbzrle, so a cache size needs the
        # method named.
        (
            {"compression.xbzrle.cache": MIB},
            F.COMPRESSED,
            "Turn xbzrle compression on to tune it",
        ),
        ({"compression.zlib.level": 1}, F.PARALLEL, "Turn zlib compression on to tune it"),
        (
            {"compression": "zstd", "compression.zlib.level": 1},
            F.PARALLEL,
            "Turn zlib compression on to tune it",
        ),
        ({"compression.zstd.level": 1}, F.PARALLEL, "Turn zstd compression on to tune it"),
        (
            {"compression": ["mt", "mt"]},
            F(0),
            "Compression method 'mt' is specified twice",
        ),
        (
            {"compression": "xbzrle"},
            F.PARALLEL,
            "Compression method 'xbzrle' isn't supported with parallel migration",
        ),
        (
            {"compression": "mt"},
            F.PARALLEL,
            "Compression method 'mt' isn't supported with parallel migration",
        ),
        (
            {"compression": "zlib"},
            F(0),
            "Compression method 'zlib' is only supported with parallel migration",
        ),
        (
            {"compression": "zstd"},
            F.COMPRESSED,
            "Compression method 'zstd' is only supported with parallel migration",
        ),
        (
            {"compression": ["zlib", "zstd"]},
            F.PARALLEL,
            "Only one compression method could be specified with parallel compression",
        ),
        (
            {},
            F.PARALLEL | F.COMPRESSED,
            "No compression algorithm selected for parallel migration",
        ),
        ({"compression": "lz4"}, F(0), "Unsupported compression method 'lz4'"),
        ({"speed": 1}, F(0), "parameter 'speed' not supported"),
        (
            {"bandwidth": 1 << 44},
            F(0),
            "migration parameter 'bandwidth' must be less than 17592186044416",
        ),
        (
            {"bandwidth.postcopy": 1 << 44},
            F(0),
            "migration parameter 'bandwidth.postcopy' must be less than 17592186044416",
        ),
        (
            {"compression": "mt", "compression.mt.level": 10},
            F(0),
            "migration parameter 'compression.mt.level' must be between 0 and 9, not 10",
        ),
        ({"bandwidth": -1}, F(0), "migration parameter 'bandwidth' must be between 0 and"),
        (
            {"bandwidth": "fast"},
            F(0),
            "invalid type 'string' for parameter 'bandwidth', expected 'ullong'",
        ),
        (
            {"migrate_uri": 5},
            F(0),
            "invalid type 'int' for parameter 'migrate_uri', expected 'string'",
        ),
        (
            {"disks_port": True},
            F(0),
            "invalid type 'boolean' for parameter 'disks_port', expected 'int'",
        ),
        (
            {"migrate_uri": ["tcp://a", "tcp://b"]},
            F(0),
            "parameter 'migrate_uri' occurs multiple times",
        ),
        ({"migrate_disks": []}, F(0), "migration parameter 'migrate_disks' needs at least"),
        (
            {"migrate_uri": "tcp://a\x00"},
            F(0),
            "migration parameter 'migrate_uri' holds a control character",
        ),
    ],
)
def test_rules_and_messages(typed: dict[str, object], flags: MigrationFlag, message: str) -> None:
    error = refused(typed, flags)
    assert str(error).startswith(message)


def test_errors_name_the_parameter() -> None:
    assert refused({"speed": 1}).name == "speed"
    assert refused({"auto_converge.initial": 20}).name == "auto_converge.initial"
    assert refused({"compression": "lz4"}).name == "lz4"


def test_first_failing_method_wins_like_libvirt() -> None:
    # libvirt checks each method in turn: the parallel rule fires before the repetition.
    error = refused({"compression": ["xbzrle", "xbzrle"]}, F.PARALLEL)
    assert str(error) == "Compression method 'xbzrle' isn't supported with parallel migration"


def test_units_are_converted() -> None:
    pset = build({"bandwidth": 100, "bandwidth.postcopy": 7, "bandwidth.avail.switchover": 1})
    assert pset.get(Param.MAX_BANDWIDTH) == 100 * MIB
    assert pset.get(Param.MAX_POSTCOPY_BANDWIDTH) == 7 * MIB
    assert pset.get(Param.AVAIL_SWITCHOVER_BANDWIDTH) == MIB
    largest = (2**64 - 1) // MIB
    assert build({"bandwidth": largest}).get(Param.MAX_BANDWIDTH) == largest * MIB


def test_flags_turn_capabilities_on_for_their_party() -> None:
    flags = F.LIVE | F.AUTO_CONVERGE | F.POSTCOPY | F.RDMA_PIN_ALL | F.ZEROCOPY | F.PARALLEL
    source = build({}, flags, Side.SOURCE).capabilities
    destination = build({}, flags, Side.DESTINATION).capabilities
    assert source == {
        Param.AUTO_CONVERGE,
        Param.POSTCOPY_RAM,
        Param.RDMA_PIN_ALL,
        Param.ZERO_COPY_SEND,
        Param.MULTIFD,
        Param.RETURN_PATH,
    }
    assert destination == {Param.POSTCOPY_RAM, Param.RDMA_PIN_ALL, Param.MULTIFD, Param.RETURN_PATH}


def test_tunnelled_forbids_return_path() -> None:
    assert Param.RETURN_PATH in build({}, F.LIVE).capabilities
    assert Param.RETURN_PATH not in build({}, F.LIVE | F.TUNNELLED).capabilities


def test_party_filters_qemu_rows_but_keeps_engine_rows() -> None:
    typed = {"auto_converge.initial": 20, "tls.destination": "b", "listen_address": "::"}
    source = build(typed, F.AUTO_CONVERGE, Side.SOURCE)
    destination = build(typed, F(0), Side.DESTINATION)
    assert source.get(Param.CPU_THROTTLE_INITIAL) == 20
    assert source.get(Param.TLS_HOSTNAME) == "b"
    # Source-only tuning is not even read on the destination (no "Turn ... on" there).
    assert destination.get(Param.CPU_THROTTLE_INITIAL) is None
    assert destination.get(Param.TLS_HOSTNAME) is None
    # The source passes engine values on (listen_address is used by the destination).
    assert source.get(Param.LISTEN_ADDRESS) == "::"
    assert destination.get(Param.LISTEN_ADDRESS) == "::"


def test_compression_methods_turn_on_their_carriers() -> None:
    pset = build({"compression": ["mt", "xbzrle"], "compression.mt.level": 3})
    assert {Param.COMPRESS, Param.XBZRLE} <= pset.capabilities
    assert pset.get(Param.COMPRESSION) == ("mt", "xbzrle")
    assert pset.get(Param.COMPRESS_LEVEL) == 3
    parallel = build({"compression": "zstd", "compression.zstd.level": 5}, F.PARALLEL)
    assert parallel.get(Param.MULTIFD_COMPRESSION) == "zstd"
    assert parallel.get(Param.MULTIFD_ZSTD_LEVEL) == 5
    assert Param.MULTIFD in parallel.capabilities


def test_compressed_flag_defaults_to_xbzrle() -> None:
    pset = build({}, F.COMPRESSED)
    assert Param.XBZRLE in pset.capabilities
    assert pset.get(Param.COMPRESSION) == ("xbzrle",)
    named = build({"compression": "mt"}, F.COMPRESSED)
    assert Param.XBZRLE not in named.capabilities


def test_destination_typed_is_libvirts_dump() -> None:
    typed = {
        "bandwidth": 100,
        "bandwidth.postcopy": 10,
        "auto_converge.initial": 20,
        "tls.destination": "host-b",
        "parallel.connections": 4,
        "compression": "zlib",
        "compression.zlib.level": 6,
        "listen_address": "10.0.0.2",
        "migrate_disks": ["vda", "vdb"],
        "graphics_uri": "spice://b",
    }
    flags = F.LIVE | F.AUTO_CONVERGE | F.PARALLEL
    params, extra = destination_typed(from_typed(typed, flags=flags, side=Side.SOURCE))
    assert params == {
        "bandwidth.postcopy": 10,
        "parallel.connections": 4,
        "compression.zlib.level": 6,
        "listen_address": "10.0.0.2",
        "migrate_disks": ["vda", "vdb"],
        "compression": ["zlib"],
    }
    assert extra == F(0)


def test_dump_turns_plain_xbzrle_into_the_compressed_flag() -> None:
    params, extra = destination_typed(build({"compression": "xbzrle"}))
    assert (params, extra) == ({"compression": ["xbzrle"]}, F.COMPRESSED)
    tuned = build({"compression": "xbzrle", "compression.xbzrle.cache": 64 * MIB})
    params, extra = destination_typed(tuned)
    assert extra == F(0)
    assert params["compression.xbzrle.cache"] == 64 * MIB
    assert destination_typed(build({"compression": ["xbzrle", "mt"]}))[1] == F(0)


def test_to_typed_divides_by_the_unit() -> None:
    pset = build({"bandwidth": 33, "bandwidth.postcopy": 2})
    assert to_typed(pset, side=Side.SOURCE) == ({"bandwidth": 33, "bandwidth.postcopy": 2}, F(0))


def test_typed_from_text() -> None:
    typed = typed_from_text(
        ["bandwidth=100", "compression=mt", "compression=xbzrle", "migrate_uri=tcp://a=b"]
    )
    assert typed == {
        "bandwidth": 100,
        "migrate_uri": "tcp://a=b",
        "compression": ["mt", "xbzrle"],
    }


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["bandwidth"], "expected NAME=VALUE, not 'bandwidth'"),
        (["speed=1"], "parameter 'speed' not supported"),
        (["bandwidth=fast"], "invalid value 'fast' for migration parameter 'bandwidth'"),
        (["bandwidth=-1"], "invalid value '-1' for migration parameter 'bandwidth'"),
        (["bandwidth=1", "bandwidth=2"], "parameter 'bandwidth' occurs multiple times"),
    ],
)
def test_typed_from_text_errors(items: list[str], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        typed_from_text(items)
