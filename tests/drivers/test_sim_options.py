"""QEMU 7.2's migration parameters and capabilities as the simulator validates them."""

from __future__ import annotations

import pytest

from migrator.drivers.base import CommandFailed
from migrator.drivers.sim import CAPABILITIES
from migrator.drivers.sim.options import (
    apply_capabilities,
    apply_parameters,
    default_capabilities,
    default_parameters,
)

DEFAULTS = default_parameters()
NO_CAPS = default_capabilities()


def test_defaults_are_qemu_72s() -> None:
    assert {
        name: DEFAULTS[name]
        for name in (
            "max-bandwidth",
            "downtime-limit",
            "cpu-throttle-initial",
            "cpu-throttle-increment",
            "max-cpu-throttle",
            "multifd-channels",
            "xbzrle-cache-size",
            "throttle-trigger-threshold",
            "max-postcopy-bandwidth",
            "multifd-compression",
            "tls-creds",
        )
    } == {
        "max-bandwidth": 134217728,
        "downtime-limit": 300,
        "cpu-throttle-initial": 20,
        "cpu-throttle-increment": 10,
        "max-cpu-throttle": 99,
        "multifd-channels": 2,
        "xbzrle-cache-size": 67108864,
        "throttle-trigger-threshold": 50,
        "max-postcopy-bandwidth": 0,
        "multifd-compression": "none",
        "tls-creds": "",
    }
    assert len(CAPABILITIES) == 21
    assert not any(NO_CAPS.values())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"downtime-limit": "fast"}, "Parameter 'downtime-limit' expects uint64"),
        ({"max-bandwidth": -1}, "Parameter 'max-bandwidth' expects size"),
        ({"max-bandwidth": 1.5}, "Parameter 'max-bandwidth' expects size"),
        ({"cpu-throttle-initial": 300}, "Parameter 'cpu-throttle-initial' expects uint8_t"),
        ({"multifd-channels": True}, "Parameter 'multifd-channels' expects uint64"),
        ({"x-checkpoint-delay": 1 << 32}, "Parameter 'x-checkpoint-delay' expects uint32_t"),
        (
            {"block-incremental": 1},
            "Invalid parameter type for 'block-incremental', expected: boolean",
        ),
        ({"tls-creds": 5}, "Invalid parameter type for 'tls-creds', expected: StrOrNull"),
        (
            {"multifd-compression": "lz4"},
            "Parameter 'multifd-compression' does not accept value 'lz4'",
        ),
        ({"warp": 9}, "Parameter 'warp' is unexpected"),
        ({"compress-level": 10}, "Parameter 'compress_level' expects a value between 0 and 9"),
        (
            {"cpu-throttle-initial": 0},
            "Parameter 'cpu_throttle_initial' expects an integer in the range of 1 to 99",
        ),
        (
            {"throttle-trigger-threshold": 101},
            "Parameter 'throttle_trigger_threshold' expects an integer in the range of 1 to 100",
        ),
        (
            {"downtime-limit": 2_000_001},
            "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 ms",
        ),
        (
            {"downtime-limit": -1},
            "Parameter 'downtime_limit' expects an integer in the range of 0 to 2000000 ms",
        ),
        ({"multifd-channels": 0}, "Parameter 'multifd_channels' expects a value between 1 and 255"),
        (
            {"multifd-zstd-level": 21},
            "Parameter 'multifd_zstd_level' expects a value between 0 and 20",
        ),
        (
            {"xbzrle-cache-size": 3 * 4096},
            "Parameter 'xbzrle_cache_size' expects a power of two no less than the target"
            " page size",
        ),
        (
            {"xbzrle-cache-size": 2048},
            "Parameter 'xbzrle_cache_size' expects a power of two no less than the target"
            " page size",
        ),
        (
            {"cpu-throttle-initial": 50, "max-cpu-throttle": 40},
            "Parameter 'max_cpu_throttle' expects an integer in the range of"
            " cpu_throttle_initial to 99",
        ),
        ({"announce-step": 0}, "Parameter 'announce_step' expects a value between 0 and 10000"),
    ],
)
def test_bad_parameters_get_qemus_message(changes: dict[str, object], message: str) -> None:
    with pytest.raises(CommandFailed) as caught:
        apply_parameters(DEFAULTS, changes, capabilities=NO_CAPS)
    assert str(caught.value) == message


def test_good_parameters_merge_into_the_current_ones() -> None:
    merged = apply_parameters(
        DEFAULTS,
        {"max-bandwidth": 1 << 30, "tls-creds": None, "cpu-throttle-tailslow": True},
        capabilities=NO_CAPS,
    )
    assert merged == {
        **DEFAULTS,
        "max-bandwidth": 1 << 30,
        "tls-creds": "",
        "cpu-throttle-tailslow": True,
    }


def test_zero_copy_refuses_tls() -> None:
    caps = {**NO_CAPS, "multifd": True, "zero-copy-send": True}
    with pytest.raises(CommandFailed, match="Zero copy only available"):
        apply_parameters(DEFAULTS, {"tls-creds": "tls0"}, capabilities=caps)


def on(*names: str) -> list[dict[str, object]]:
    return [{"capability": name, "state": True} for name in names]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ("xbzrle", "Invalid parameter type for 'capabilities', expected: array"),
        (["xbzrle"], "Invalid parameter type for 'capabilities[0]', expected: object"),
        ([{"state": True}], "Parameter 'capabilities[0].capability' is missing"),
        (
            on("events", "warp"),
            "Parameter 'capabilities[1].capability' does not accept value 'warp'",
        ),
        ([{"capability": "xbzrle"}], "Parameter 'capabilities[0].state' is missing"),
        (
            [{"capability": "xbzrle", "state": 1}],
            "Invalid parameter type for 'capabilities[0].state', expected: boolean",
        ),
        (
            [{"capability": "xbzrle", "state": True, "x": 1}],
            "Parameter 'capabilities[0].x' is unexpected",
        ),
        (on("postcopy-preempt"), "Postcopy preempt requires postcopy-ram"),
        (on("multifd", "compress"), "Multifd is not compatible with compress"),
        (
            on("zero-copy-send"),
            "Zero copy only available for non-compressed non-TLS multifd migration",
        ),
        (on("postcopy-ram", "x-ignore-shared"), "Postcopy is not compatible with ignore-shared"),
        (on("background-snapshot", "xbzrle"), "Background-snapshot is not compatible with xbzrle"),
    ],
)
def test_bad_capabilities_get_qemus_message(request_: object, message: str) -> None:
    with pytest.raises(CommandFailed) as caught:
        apply_capabilities(NO_CAPS, request_, parameters=DEFAULTS, migrating=False)
    assert str(caught.value) == message


def test_capabilities_are_locked_while_migrating() -> None:
    with pytest.raises(CommandFailed, match="There's a migration process in progress"):
        apply_capabilities(NO_CAPS, on("xbzrle"), parameters=DEFAULTS, migrating=True)


def test_capabilities_merge_and_can_be_turned_off() -> None:
    caps = apply_capabilities(
        NO_CAPS, on("multifd", "zero-copy-send"), parameters=DEFAULTS, migrating=False
    )
    assert caps["multifd"] and caps["zero-copy-send"]
    caps = apply_capabilities(
        caps,
        [{"capability": "zero-copy-send", "state": False}],
        parameters=DEFAULTS,
        migrating=False,
    )
    assert caps == {**NO_CAPS, "multifd": True}
