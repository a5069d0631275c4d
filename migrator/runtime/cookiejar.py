"""Building and reading migration cookies for one host: signing with the host's key,
verifying against the peers it trusts, and libvirt's per-phase checks."""

from __future__ import annotations

from collections.abc import Iterable

import cookies
from cookies import Capability, Cookie, CookiePhase, Graphics, GraphicsType, JobStatistics
from migrator.domain import Domain
from migrator.drivers.base import GraphicsEndpoint
from migrator.runtime.host import Host
from params import TABLE, Kind, Side


def write(
    host: Host,
    *,
    domain: Domain,
    capabilities: Iterable[str] | None = None,
    side: Side = Side.SOURCE,
    graphics: Iterable[GraphicsEndpoint] = (),
    statistics: JobStatistics | None = None,
    persistent: str | None = None,
) -> bytes:
    """A signed cookie from ``host`` about ``domain`` with the given features."""
    cookie = Cookie(
        name=domain.name,
        uuid=str(domain.uuid),
        hostname=host.name,
        hostuuid=host.uuid,
        capabilities=None if capabilities is None else _capabilities(capabilities, side=side),
        graphics=_relocatable(graphics),
        statistics=statistics,
        persistent=persistent,
    )
    return cookies.encode(cookie, signing_key=host.signing_key)


def read(host: Host, data: bytes, *, domain: Domain, consumer: CookiePhase) -> Cookie:
    """Verify, decode and check a cookie that phase ``consumer`` receives.

    Optional features the phase does not consume are dropped.

    Raises:
        CookieError: bad signature or sender, wrong guest, same host, or a mandatory
            feature this phase does not accept.
    """
    cookie = cookies.decode(data, trusted_keys=host.trusted_keys)
    allowed = cookies.PHASE_FEATURES[consumer].consumes
    cookies.check(
        cookie,
        expected_name=domain.name,
        expected_uuid=str(domain.uuid),
        local_host_uuid=host.uuid,
        allowed=allowed,
    )
    return cookie.restricted(allowed)


def capability_names(cookie: Cookie) -> frozenset[str]:
    """The migration capabilities the cookie's sender supports."""
    return frozenset(cap.name for cap in cookie.capabilities or ())


def graphics_endpoint(cookie: Cookie) -> GraphicsEndpoint | None:
    """Where display clients should go, when the sender has a SPICE display."""
    graphics = cookie.graphics
    if graphics is None:
        return None
    return GraphicsEndpoint(
        type=graphics.type.value,
        listen=graphics.listen or cookie.hostname,
        port=graphics.port,
        tls_port=graphics.tls_port,
    )


def _capabilities(supported: Iterable[str], *, side: Side) -> tuple[Capability, ...]:
    always_on = {
        row.qmp_name
        for row in TABLE.values()
        if row.kind is Kind.CAPABILITY and row.always_on is not None and side in row.always_on
    }
    return tuple(Capability(name=name, auto=name in always_on) for name in sorted(supported))


def _relocatable(endpoints: Iterable[GraphicsEndpoint]) -> Graphics | None:
    # libvirt relocates SPICE clients only; VNC clients reconnect by themselves.
    for endpoint in endpoints:
        if endpoint.type == GraphicsType.SPICE.value and endpoint.port is not None:
            return Graphics(
                type=GraphicsType.SPICE,
                port=endpoint.port,
                tls_port=endpoint.tls_port,
                listen=endpoint.listen,
            )
    return None
