"""Migrations with TLS between two in-process daemons on the sim driver: a daemon started
without a certificate directory refuses them at once, on either side, in either mode, and
leaves nothing behind; with certificates on both sides they complete."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from migrator.client import Client, ClientError, DomainState
from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.daemon.service import Daemon
from migrator.domain import format_domain
from migrator.drivers.sim import SimWorld
from params import MigrationFlag as F
from tests.runtime.cluster import make_domain

from .conftest import SimPair
from .processes import short_directory

TLS = F.LIVE | F.TLS


@contextlib.asynccontextmanager
async def daemons(*, certified: tuple[str, ...]) -> AsyncIterator[SimPair]:
    """Daemons ``host-a`` and ``host-b`` in one simulated world; those in ``certified`` are
    started with a certificate directory (a name only, to the simulator)."""
    world = SimWorld(record_trace=False)
    with short_directory() as root:
        started = []
        for name in ("host-a", "host-b"):
            config = DaemonConfig(
                state_dir=root / name,
                host_name=name,
                driver=DriverKind.SIM,
                tls_dir=Path("certs") / name if name in certified else None,
            )
            daemon = Daemon(config, sim_world=world)
            await daemon.start()
            started.append(daemon)
        a, b = started
        pair = SimPair(
            world, a, b, await Client.connect(a.unix_uri), await Client.connect(b.unix_uri), root
        )
        try:
            yield pair
        finally:
            await pair.ca.close()
            await pair.cb.close()
            await a.stop()
            await b.stop()


async def running(client: Client, *, include_inactive: bool = False) -> dict[str, DomainState]:
    domains = await client.list_domains(include_inactive=include_inactive)
    return {summary.name: summary.state for summary in domains}


async def assert_nothing_happened(pair: SimPair) -> None:
    """The guest runs on the source as before, and no job was left on either host."""
    assert await running(pair.ca) == {"vm": DomainState.RUNNING}
    assert (await pair.ca.dominfo("vm")).job is None
    assert await running(pair.cb, include_inactive=True) == {}
    guest = pair.world.guest("host-a", "vm")
    assert guest is not None and guest.tls_credentials == {}
    assert pair.world.guest("host-b", "vm") is None
    assert pair.a.host.status.names() == [] and pair.b.host.status.names() == []


@pytest.mark.parametrize("direct", [False, True], ids=["p2p", "direct"])
@pytest.mark.parametrize(
    ("certified", "refusing"),
    [((), "host-a"), (("host-b",), "host-a"), (("host-a",), "host-b")],
    ids=["neither", "source-lacks", "destination-lacks"],
)
async def test_a_host_without_certificates_refuses_at_once(
    certified: tuple[str, ...], refusing: str, direct: bool
) -> None:
    async with daemons(certified=certified) as pair:
        await pair.ca.define(format_domain(make_domain()))
        await pair.ca.start("vm")
        flags = TLS | (F(0) if direct else F.PEER2PEER)
        with pytest.raises(ClientError) as refused:
            await pair.ca.migrate("vm", pair.b.unix_uri, flags=flags, direct=direct)
        assert refused.value.code == "invalid-argument"
        assert refused.value.message == (
            f"a migration with TLS needs a certificate directory on {refusing}: "
            "start its daemon with --tls-dir"
        )
        await assert_nothing_happened(pair)


@pytest.mark.parametrize("direct", [False, True], ids=["p2p", "direct"])
async def test_with_certificates_on_both_hosts_the_guest_moves(direct: bool) -> None:
    async with daemons(certified=("host-a", "host-b")) as pair:
        await pair.ca.define(format_domain(make_domain()))
        await pair.ca.start("vm")
        flags = TLS | (F(0) if direct else F.PEER2PEER)
        await pair.ca.migrate("vm", pair.b.unix_uri, flags=flags, direct=direct)
        assert await running(pair.ca) == {}
        assert await running(pair.cb) == {"vm": DomainState.RUNNING}
        arrived = pair.world.guest("host-b", "vm")
        assert arrived is not None and arrived.tls_credentials == {}
