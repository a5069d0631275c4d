"""Parameter sets <-> QMP arguments and replies (libvirt's Apply, Check, Fetch, Reset)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from params import (
    TABLE,
    MigrationFlag,
    Param,
    ParamsError,
    ParamSet,
    Side,
    capability_changes,
    from_qmp_query,
    from_typed,
    reset_capabilities,
    startup_capabilities,
    to_qmp_capabilities,
    to_qmp_parameters,
)

from .test_table import QEMU_7_2_CAPABILITIES

#: query-migrate-parameters of a freshly started QEMU 7.2 (its defaults).
QEMU_7_2_DEFAULTS: dict[str, object] = {
    "announce-initial": 50,
    "announce-max": 550,
    "announce-rounds": 5,
    "announce-step": 100,
    "compress-level": 1,
    "compress-threads": 8,
    "compress-wait-thread": True,
    "decompress-threads": 2,
    "throttle-trigger-threshold": 50,
    "cpu-throttle-initial": 20,
    "cpu-throttle-increment": 10,
    "cpu-throttle-tailslow": False,
    "tls-creds": "",
    "tls-hostname": "",
    "tls-authz": "",
    "max-bandwidth": 134217728,
    "downtime-limit": 300,
    "x-checkpoint-delay": 20000,
    "block-incremental": False,
    "multifd-channels": 2,
    "multifd-compression": "none",
    "xbzrle-cache-size": 67108864,
    "max-postcopy-bandwidth": 0,
    "max-cpu-throttle": 99,
    "multifd-zlib-level": 1,
    "multifd-zstd-level": 1,
}


def states(items: list[dict[str, object]]) -> dict[object, object]:
    return {item["capability"]: item["state"] for item in items}


def test_every_supported_capability_is_set_explicitly() -> None:
    pset = from_typed({}, flags=MigrationFlag.LIVE | MigrationFlag.POSTCOPY, side=Side.SOURCE)
    items = to_qmp_capabilities(
        pset, supported=QEMU_7_2_CAPABILITIES, remote_supported=None, side=Side.SOURCE
    )
    got = states(items)
    assert set(got) == QEMU_7_2_CAPABILITIES - {"events"}
    assert {name for name, on in got.items() if on} == {
        "postcopy-ram",
        "return-path",
        "pause-before-switchover",
    }
    assert all(set(item) == {"capability", "state"} for item in items)


def test_unsupported_capabilities_are_left_out_unless_requested() -> None:
    supported = ["xbzrle", "return-path", "events", "some-future-cap"]
    got = states(
        to_qmp_capabilities(
            ParamSet(), supported=supported, remote_supported=None, side=Side.SOURCE
        )
    )
    assert got == {"xbzrle": False, "return-path": False}


def test_requested_but_unsupported_capability_is_refused() -> None:
    pset = from_typed({}, flags=MigrationFlag.POSTCOPY, side=Side.DESTINATION)
    with pytest.raises(ParamsError) as info:
        to_qmp_capabilities(
            pset, supported=["return-path"], remote_supported=None, side=Side.DESTINATION
        )
    assert str(info.value) == "Migration option 'postcopy-ram' is not supported by QEMU binary"
    assert info.value.name == "postcopy-ram"


def test_always_on_follows_the_party() -> None:
    supported = QEMU_7_2_CAPABILITIES
    source = states(
        to_qmp_capabilities(ParamSet(), supported=supported, remote_supported=(), side=Side.SOURCE)
    )
    destination = states(
        to_qmp_capabilities(
            ParamSet(), supported=supported, remote_supported=(), side=Side.DESTINATION
        )
    )
    assert source["pause-before-switchover"] and not source["late-block-activate"]
    assert destination["late-block-activate"] and not destination["pause-before-switchover"]


def test_always_on_needs_local_support() -> None:
    got = states(
        to_qmp_capabilities(
            ParamSet(), supported=["xbzrle"], remote_supported=None, side=Side.SOURCE
        )
    )
    assert got == {"xbzrle": False}


def test_always_on_for_both_parties_needs_the_remote() -> None:
    table = dict(TABLE)
    table[Param.X_IGNORE_SHARED] = replace(TABLE[Param.X_IGNORE_SHARED], always_on=Side.BOTH)
    supported = ["x-ignore-shared"]

    def state(remote: list[str] | None) -> object:
        items = to_qmp_capabilities(
            ParamSet(), supported=supported, remote_supported=remote, side=Side.SOURCE, table=table
        )
        return states(items)["x-ignore-shared"]

    assert state(None) is False
    assert state([]) is False
    assert state(["x-ignore-shared"]) is True


def test_events_is_never_touched_by_a_migration() -> None:
    supported = QEMU_7_2_CAPABILITIES
    assert "events" not in states(reset_capabilities(supported=supported))
    assert startup_capabilities(supported=supported) == [{"capability": "events", "state": True}]
    assert startup_capabilities(supported=["xbzrle"]) == []
    with pytest.raises(ParamsError, match="'events' is set when QEMU starts"):
        ParamSet.validated({}, [Param.EVENTS])


def test_capabilities_only_in_a_migration_job() -> None:
    pset = from_typed({}, flags=MigrationFlag.LIVE, side=Side.SOURCE)
    with pytest.raises(ParamsError) as info:
        to_qmp_capabilities(
            pset,
            supported=QEMU_7_2_CAPABILITIES,
            remote_supported=None,
            side=Side.SOURCE,
            in_migration_job=False,
        )
    assert str(info.value) == "Migration capabilities can only be set by a migration job"
    assert (
        to_qmp_capabilities(
            ParamSet(),
            supported=QEMU_7_2_CAPABILITIES,
            remote_supported=None,
            side=Side.SOURCE,
            in_migration_job=False,
        )
        == []
    )


def test_reset_turns_every_supported_capability_off() -> None:
    got = states(reset_capabilities(supported=QEMU_7_2_CAPABILITIES))
    assert set(got) == QEMU_7_2_CAPABILITIES - {"events"}
    assert not any(got.values())


def test_parameters_are_only_the_set_ones() -> None:
    pset = from_typed(
        {
            "bandwidth": 10,
            "bandwidth.postcopy": 5,
            "migrate_uri": "tcp://b:49152",
            "compression": "mt",
            "compression.mt.threads": 4,
        },
        flags=MigrationFlag.LIVE,
        side=Side.SOURCE,
    )
    assert to_qmp_parameters(pset) == {
        "compress-threads": 4,
        "max-bandwidth": 10 * 1024 * 1024,
        "max-postcopy-bandwidth": 5 * 1024 * 1024,
    }
    assert to_qmp_parameters(pset, postcopy_resume=True) == {
        "max-postcopy-bandwidth": 5 * 1024 * 1024
    }
    assert to_qmp_parameters(ParamSet()) == {}


def test_parallel_compression_is_a_parameter() -> None:
    pset = from_typed(
        {"compression": "zlib", "compression.zlib.level": 9, "parallel.connections": 8},
        flags=MigrationFlag.PARALLEL,
        side=Side.DESTINATION,
    )
    assert to_qmp_parameters(pset) == {
        "multifd-channels": 8,
        "multifd-compression": "zlib",
        "multifd-zlib-level": 9,
    }


def test_query_reply_of_qemu_7_2_round_trips() -> None:
    originals = from_qmp_query(QEMU_7_2_DEFAULTS)
    assert len(originals.values) == len(QEMU_7_2_DEFAULTS)
    assert originals.get(Param.MAX_BANDWIDTH) == 134217728
    assert originals.capabilities == frozenset()
    assert to_qmp_parameters(originals) == QEMU_7_2_DEFAULTS


def test_query_reply_ignores_unknown_names() -> None:
    reply = {
        "downtime-limit": 300,
        "block-bitmap-mapping": [],
        "vcpu-dirty-limit": 1,
        "mode": "normal",
    }
    assert from_qmp_query(reply) == ParamSet({Param.DOWNTIME_LIMIT: 300})


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            {"max-bandwidth": "fast"},
            "invalid type 'string' for parameter 'max-bandwidth', expected 'ullong'",
        ),
        ({"downtime-limit": 1.5}, "invalid type 'double' for parameter 'downtime-limit'"),
        ({"tls-creds": None}, "invalid type 'NoneType' for parameter 'tls-creds'"),
        ({"block-incremental": 0}, "invalid type 'int' for parameter 'block-incremental'"),
        ({"multifd-channels": True}, "invalid type 'boolean' for parameter 'multifd-channels'"),
        ({"multifd-compression": "lz4"}, "invalid value 'lz4' for migration parameter"),
        ({"max-bandwidth": -1}, "migration parameter 'max-bandwidth' must be between 0 and"),
    ],
)
def test_query_reply_with_wrong_types_is_refused(reply: dict[str, object], message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        from_qmp_query(reply)


def test_query_reply_never_sets_capabilities() -> None:
    assert from_qmp_query({"xbzrle": True}) == ParamSet()


def test_capability_changes_keep_only_what_differs() -> None:
    wanted = [
        {"capability": "xbzrle", "state": False},
        {"capability": "return-path", "state": True},
        {"capability": "postcopy-ram", "state": False},
    ]
    current = {"xbzrle": False, "return-path": False, "postcopy-ram": True, "events": True}
    assert capability_changes(wanted, current=current) == [
        {"capability": "return-path", "state": True},
        {"capability": "postcopy-ram", "state": False},
    ]
    # A capability QEMU did not report is sent as it is.
    assert capability_changes(wanted, current={"return-path": True}) == [wanted[0], wanted[2]]
