"""Features, records and the Cookie: numbering, validation, derived properties."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from cookies import (
    Capability,
    Cookie,
    CookieError,
    Feature,
    Graphics,
    GraphicsType,
    JobStatistics,
    LockState,
    Nbd,
    NbdDisk,
    Network,
)
from cookies.features import announced_feature
from tests.cookies.conftest import GUEST_UUID, SOURCE_HOST

LIBVIRT_FEATURES = [
    "graphics",
    "lockstate",
    "persistent",
    "network",
    "nbd",
    "statistics",
    "memory-hotplug",
    "cpu-hotplug",
    "cpu",
    "allowReboot",
    "capabilities",
    "block-dirty-bitmaps",
]


def test_feature_bits_and_names_follow_libvirt() -> None:
    assert [feature.wire_name for feature in sorted(Feature, key=lambda f: f.bit)] == (
        LIBVIRT_FEATURES
    )
    assert [feature.bit for feature in Feature] == list(range(12))


def test_mandatory_features_are_libvirts() -> None:
    assert {feature for feature in Feature if feature.mandatory} == {
        Feature.LOCKSTATE,
        Feature.PERSISTENT,
        Feature.MEMORY_HOTPLUG,
        Feature.CPU_HOTPLUG,
    }


def test_announced_feature_knows_every_carried_feature() -> None:
    for feature in Feature:
        if feature is not Feature.ALLOW_REBOOT:
            assert announced_feature(feature.wire_name) is feature


def test_unknown_announced_feature_is_refused_by_name() -> None:
    with pytest.raises(CookieError, match=r"^Unknown migration cookie feature teleport$") as info:
        announced_feature("teleport")
    assert info.value.feature == "teleport"


def test_allow_reboot_is_known_but_unsupported() -> None:
    with pytest.raises(CookieError, match=r"^Unsupported migration cookie feature allowReboot$"):
        announced_feature("allowReboot")


def _cookie(**changes: Any) -> Cookie:
    base: dict[str, Any] = {
        "name": "vm1",
        "uuid": GUEST_UUID,
        "hostname": "src",
        "hostuuid": SOURCE_HOST,
    }
    return Cookie(**(base | changes))


def test_uuids_are_kept_in_canonical_form() -> None:
    cookie = _cookie(uuid=GUEST_UUID.upper(), hostuuid=uuid.UUID(SOURCE_HOST))
    assert cookie.uuid == GUEST_UUID
    assert cookie.hostuuid == SOURCE_HOST


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Cookie.name must not be empty"),
        ({"hostname": 7}, "Cookie.hostname must be str, not int"),
        ({"uuid": "not-a-uuid"}, "Cookie.uuid: 'not-a-uuid' is not a UUID"),
        ({"hostuuid": None}, "Cookie.hostuuid: None is not a UUID"),
        ({"name": "vm\x00"}, "Cookie.name holds characters that XML cannot carry"),
        ({"memory_hotplug": 1}, "Cookie.memory_hotplug must be bool, not int"),
        ({"capabilities": [Capability("xbzrle")]}, "Cookie.capabilities must be a tuple"),
        ({"graphics": "spice"}, "Cookie.graphics must be Graphics, not str"),
    ],
)
def test_cookie_refuses_bad_fields(changes: dict[str, object], message: str) -> None:
    with pytest.raises(CookieError, match=message):
        _cookie(**changes)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Graphics(type=GraphicsType.VNC, port=70000, listen="::"),
            "Graphics.port must be from 0 to 65535, not 70000",
        ),
        (
            lambda: Graphics(type=GraphicsType.VNC, port=True, listen="::"),
            "Graphics.port must be int, not bool",
        ),
        (
            lambda: Graphics(type="vnc", port=5900, listen="::"),  # type: ignore[arg-type]
            "Graphics.type must be GraphicsType, not str",
        ),
        (lambda: Nbd(port=0), "Nbd.port must be from 1 to 65535, not 0"),
        (lambda: NbdDisk("vda", -1), "NbdDisk.capacity must be from 0 to"),
        (lambda: NbdDisk("", 1), "NbdDisk.target must not be empty"),
        (
            lambda: Network((1,)),  # type: ignore[arg-type]
            "Network.interfaces must be a tuple of NetworkInterface",
        ),
        (lambda: JobStatistics(auto_converge_throttle=101), "must be from 0 to 100, not 101"),
        (lambda: JobStatistics(delta=-(2**63) - 1), "JobStatistics.delta must be from"),
        (lambda: JobStatistics(time_elapsed=2**64), "JobStatistics.time_elapsed must be from"),
        (
            lambda: JobStatistics(operation=5),  # type: ignore[arg-type]
            "JobStatistics.operation must be JobOperation",
        ),
        (
            lambda: JobStatistics(success=1),  # type: ignore[arg-type]
            "JobStatistics.success must be bool, not int",
        ),
        (lambda: LockState(None, b"lease"), "LockState.leases given without a lock driver"),
        (lambda: LockState("sanlock", b"\xff"), "LockState.leases must be UTF-8 text"),
        (lambda: LockState("sanlock", b"a\x01"), "LockState.leases holds characters"),
        (lambda: LockState("", b""), "LockState.driver must not be empty"),
        (
            lambda: LockState("sanlock", "text"),  # type: ignore[arg-type]
            "LockState.leases must be bytes, not str",
        ),
        (
            lambda: Capability("xbzrle", None),  # type: ignore[arg-type]
            "Capability.auto is required",
        ),
    ],
)
def test_records_refuse_bad_fields(build: Callable[[], object], message: str) -> None:
    with pytest.raises(CookieError, match=message):
        build()


def test_text_check_covers_non_ascii() -> None:
    assert Capability("zéro-copie\u00a0\U0001f600").name.startswith("zéro")
    with pytest.raises(CookieError, match=r"XML cannot carry"):
        Capability("zéro\ufffe")
    with pytest.raises(CookieError, match=r"XML cannot carry"):
        Capability("zéro\ud800")


def test_features_reflect_the_fields(cookie: Cookie) -> None:
    assert cookie.features == {
        Feature.GRAPHICS,
        Feature.LOCKSTATE,
        Feature.PERSISTENT,
        Feature.NBD,
        Feature.STATISTICS,
        Feature.CAPABILITIES,
    }
    assert cookie.mandatory_features == (Feature.LOCKSTATE, Feature.PERSISTENT)
    flags = dataclasses.replace(cookie, memory_hotplug=True, cpu_hotplug=True, capabilities=())
    assert {Feature.MEMORY_HOTPLUG, Feature.CPU_HOTPLUG, Feature.CAPABILITIES} <= flags.features
    assert _cookie().features == frozenset()


def test_restricted_drops_the_features_outside_the_set(cookie: Cookie) -> None:
    hotplug = dataclasses.replace(cookie, memory_hotplug=True)
    kept = hotplug.restricted({Feature.NBD, Feature.CAPABILITIES})
    assert kept.features == {Feature.NBD, Feature.CAPABILITIES}
    assert kept.nbd == cookie.nbd
    assert kept.memory_hotplug is False
    assert (kept.name, kept.uuid, kept.hostuuid) == (cookie.name, cookie.uuid, cookie.hostuuid)
