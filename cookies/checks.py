"""The checks a phase makes on an incoming cookie before using it (libvirt's, same messages)."""

from __future__ import annotations

from collections.abc import Set

from cookies.cookie import Cookie
from cookies.errors import CookieError
from cookies.features import Feature
from cookies.schema import canonical_uuid


def check(
    cookie: Cookie,
    *,
    expected_name: str,
    expected_uuid: str,
    local_host_uuid: str,
    allowed: Set[Feature],
    local_lock_driver: str | None = None,
) -> None:
    """Check that ``cookie`` is for this guest, from another host, and fits this phase.

    ``allowed`` is what the phase consumes (``PHASE_FEATURES[phase].consumes``): a
    mandatory feature outside it is refused; optional ones outside it are for the caller to
    drop with ``cookie.restricted(allowed)``. When ``local_lock_driver`` is given and the
    phase takes lock state, the sender's lock driver must be the same.

    Raises:
        CookieError: "Incoming cookie data had unexpected name <name> vs <expected>", the
            same for the UUID, "Attempt to migrate guest to the same host <uuid>",
            "Unsupported migration cookie feature <name>", or "Source host lock driver <a>
            different from target <b>".
    """
    if cookie.name != expected_name:
        raise CookieError(
            f"Incoming cookie data had unexpected name {cookie.name} vs {expected_name}"
        )
    expected = canonical_uuid(expected_uuid, field="expected guest UUID")
    if cookie.uuid != expected:
        raise CookieError(f"Incoming cookie data had unexpected UUID {cookie.uuid} vs {expected}")
    if cookie.hostuuid == canonical_uuid(local_host_uuid, field="local host UUID"):
        raise CookieError(f"Attempt to migrate guest to the same host {cookie.hostuuid}")
    for feature in cookie.mandatory_features:
        if feature not in allowed:
            raise CookieError(
                f"Unsupported migration cookie feature {feature.wire_name}",
                feature=feature.wire_name,
            )
    lockstate = cookie.lockstate
    if (
        local_lock_driver is not None
        and Feature.LOCKSTATE in allowed
        and lockstate is not None
        and lockstate.driver is not None
        and lockstate.driver != local_lock_driver
    ):
        raise CookieError(
            f"Source host lock driver {lockstate.driver} different from target {local_lock_driver}",
            feature=Feature.LOCKSTATE.wire_name,
        )
