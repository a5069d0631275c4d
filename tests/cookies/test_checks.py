"""libvirt's checks on an incoming cookie, with its messages."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from cookies import PHASE_FEATURES, Cookie, CookieError, CookiePhase, Feature, LockState, check
from tests.cookies.conftest import DESTINATION_HOST, GUEST_UUID, SOURCE_HOST

EVERYTHING = frozenset(Feature)


def _check(cookie: Cookie, **overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "expected_name": "vm1",
        "expected_uuid": GUEST_UUID,
        "local_host_uuid": DESTINATION_HOST,
        "allowed": EVERYTHING,
    }
    check(cookie, **(arguments | overrides))


def test_matching_cookie_passes(cookie: Cookie) -> None:
    _check(cookie)
    _check(cookie, expected_uuid=GUEST_UUID.upper(), local_lock_driver="sanlock")


def test_unexpected_name(cookie: Cookie) -> None:
    with pytest.raises(CookieError, match=r"^Incoming cookie data had unexpected name vm1 vs vm2$"):
        _check(cookie, expected_name="vm2")


def test_unexpected_uuid(cookie: Cookie) -> None:
    other = str(uuid.uuid4())
    with pytest.raises(
        CookieError, match=f"^Incoming cookie data had unexpected UUID {GUEST_UUID} vs {other}$"
    ):
        _check(cookie, expected_uuid=other)


def test_same_host_is_refused(cookie: Cookie) -> None:
    with pytest.raises(
        CookieError, match=f"^Attempt to migrate guest to the same host {SOURCE_HOST}$"
    ):
        _check(cookie, local_host_uuid=SOURCE_HOST.upper())


def test_malformed_expected_uuid_is_a_cookie_error(cookie: Cookie) -> None:
    with pytest.raises(CookieError, match=r"expected guest UUID: 'vm1' is not a UUID"):
        _check(cookie, expected_uuid="vm1")


@pytest.mark.parametrize(
    "feature", [Feature.LOCKSTATE, Feature.PERSISTENT, Feature.MEMORY_HOTPLUG, Feature.CPU_HOTPLUG]
)
def test_mandatory_feature_outside_the_phase_is_refused(cookie: Cookie, feature: Feature) -> None:
    flagged = dataclasses.replace(cookie, memory_hotplug=True, cpu_hotplug=True)
    with pytest.raises(
        CookieError, match=f"^Unsupported migration cookie feature {feature.wire_name}$"
    ) as info:
        _check(flagged, allowed=EVERYTHING - {feature})
    assert info.value.feature == feature.wire_name


def test_optional_features_outside_the_phase_are_left_to_restricted(cookie: Cookie) -> None:
    allowed = frozenset({Feature.LOCKSTATE, Feature.PERSISTENT})
    _check(cookie, allowed=allowed)
    assert cookie.restricted(allowed).features == allowed


def test_lock_driver_must_match(cookie: Cookie) -> None:
    with pytest.raises(
        CookieError, match=r"^Source host lock driver sanlock different from target lockd$"
    ):
        _check(cookie, local_lock_driver="lockd")


def test_lock_driver_is_not_compared_without_lease_state_or_outside_the_phase(
    cookie: Cookie,
) -> None:
    _check(dataclasses.replace(cookie, lockstate=LockState()), local_lock_driver="lockd")
    _check(
        dataclasses.replace(cookie, lockstate=None, persistent=None),
        local_lock_driver="lockd",
        allowed=frozenset(),
    )


def test_phases_are_all_described() -> None:
    assert set(PHASE_FEATURES) == set(CookiePhase)
    for features in PHASE_FEATURES.values():
        assert Feature.ALLOW_REBOOT not in features.consumes | features.emits


@pytest.mark.parametrize(
    ("sender", "receiver"),
    [
        (CookiePhase.BEGIN, CookiePhase.PREPARE),
        (CookiePhase.PREPARE, CookiePhase.PERFORM),
        (CookiePhase.PERFORM, CookiePhase.FINISH),
        (CookiePhase.FINISH, CookiePhase.CONFIRM),
        (CookiePhase.BEGIN_RESUME, CookiePhase.PREPARE_RESUME),
        (CookiePhase.PREPARE_RESUME, CookiePhase.PERFORM_RESUME),
        (CookiePhase.PERFORM_RESUME, CookiePhase.FINISH),
    ],
)
def test_each_phase_consumes_the_mandatory_features_the_previous_one_emits(
    sender: CookiePhase, receiver: CookiePhase
) -> None:
    mandatory = {feature for feature in PHASE_FEATURES[sender].emits if feature.mandatory}
    assert mandatory <= PHASE_FEATURES[receiver].consumes


def test_phase_table_matches_libvirt() -> None:
    assert PHASE_FEATURES[CookiePhase.BEGIN].consumes == frozenset()
    assert PHASE_FEATURES[CookiePhase.PREPARE].emits == {
        Feature.GRAPHICS,
        Feature.CAPABILITIES,
        Feature.NBD,
        Feature.BLOCK_DIRTY_BITMAPS,
    }
    assert PHASE_FEATURES[CookiePhase.FINISH].consumes == {
        Feature.NETWORK,
        Feature.STATISTICS,
        Feature.NBD,
        Feature.PERSISTENT,
    }
    assert PHASE_FEATURES[CookiePhase.CONFIRM].emits == frozenset()
    assert PHASE_FEATURES[CookiePhase.PERFORM_RESUME].emits == {Feature.STATISTICS}
