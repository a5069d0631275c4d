"""The daemon's API on the sim driver: two in-process daemons in one simulated world, each
reached by a client over its unix socket. Round trips, refusals, one job per domain, events,
restarts, and both migration modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable

import pytest

from migrator.client import (
    Client,
    ClientError,
    DomainState,
    Event,
    JobEvent,
    JobOperation,
    JobType,
    LifecycleEvent,
    LifecycleKind,
)
from migrator.client import phasewire as wire
from migrator.client.remote import RemoteDestination, RemoteSource
from migrator.client.session import Session, open_session
from migrator.client.uri import parse_uri
from migrator.domain import format_domain
from migrator.drivers.sim import Fault, FaultKind, FaultPoint, Workload
from params import MigrationFlag as F
from tests.runtime.cluster import MiB, make_domain

from .conftest import SimPair

GUARD_S = 30
P2P = F.LIVE | F.PEER2PEER


async def define_and_start(client: Client, name: str = "vm") -> None:
    await client.define(format_domain(make_domain(name)))
    await client.start(name)


async def names(client: Client, *, include_inactive: bool = False) -> dict[str, DomainState]:
    return {d.name: d.state for d in await client.list_domains(include_inactive=include_inactive)}


class Recorder:
    """Every event one client receives from the moment :func:`recorder` returns."""

    def __init__(self, client: Client) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(client))

    async def _run(self, client: Client) -> None:
        with contextlib.suppress(ClientError):
            async for event in client.events():
                self.events.append(event)
                self._changed.set()

    async def wait_for(self, predicate: Callable[[Event], bool]) -> None:
        while not any(predicate(event) for event in self.events):
            self._changed.clear()
            await self._changed.wait()

    def lifecycle(self) -> list[tuple[str, LifecycleKind, str]]:
        return [(e.domain, e.event, e.detail) for e in self.events if isinstance(e, LifecycleEvent)]

    def jobs(self) -> list[JobEvent]:
        return [e for e in self.events if isinstance(e, JobEvent)]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def recorder(client: Client) -> Recorder:
    await client.subscribe()
    return Recorder(client)


def job_done(domain: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, JobEvent) and e.domain == domain and e.done


# -- round trips ---------------------------------------------------------------------------------


async def test_host_info_names_host_uuid_and_driver(sim_pair: SimPair) -> None:
    info = await sim_pair.ca.host_info()
    assert (info.name, info.driver, info.uri) == ("host-a", "sim", None)
    assert info.uuid == sim_pair.a.host.uuid
    assert info.uuid != (await sim_pair.cb.host_info()).uuid


async def test_domain_lifecycle_round_trip(sim_pair: SimPair) -> None:
    client = sim_pair.ca
    domain = make_domain("vm", memory_mib=96)
    summary = await client.define(format_domain(domain))
    assert (summary.name, summary.uuid, summary.state, summary.persistent) == (
        "vm",
        str(domain.uuid),
        DomainState.SHUTOFF,
        True,
    )
    assert await names(client) == {}
    assert await names(client, include_inactive=True) == {"vm": DomainState.SHUTOFF}

    await client.start("vm", paused=True)
    info = await client.dominfo("vm")
    assert (info.state, info.memory_kib, info.vcpus, info.job) == (
        DomainState.PAUSED,
        96 * 1024,
        1,
        None,
    )
    await client.resume("vm")
    assert await names(client) == {"vm": DomainState.RUNNING}
    await client.suspend("vm")
    assert (await client.dominfo("vm")).state is DomainState.PAUSED
    await client.resume("vm")

    assert "<name>vm</name>" in await client.dumpxml("vm")
    assert "<memory" in await client.dumpxml("vm", inactive=True, migratable=True)

    await client.destroy("vm")
    assert await names(client, include_inactive=True) == {"vm": DomainState.SHUTOFF}
    await client.undefine("vm")
    assert await names(client, include_inactive=True) == {}


async def test_state_directory_holds_definitions_and_live_guests(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca, "vm")
    state_dir = sim_pair.a.config.state_dir
    assert (state_dir / "definitions" / "vm.xml").exists()
    assert (state_dir / "live" / "vm.xml").exists()
    await sim_pair.ca.destroy("vm")
    assert not (state_dir / "live" / "vm.xml").exists()
    await sim_pair.ca.undefine("vm")
    assert not (state_dir / "definitions" / "vm.xml").exists()


async def test_a_restarted_daemon_keeps_definitions_and_finds_its_guests(
    sim_pair: SimPair,
) -> None:
    await define_and_start(sim_pair.ca, "running")
    await sim_pair.ca.define(format_domain(make_domain("idle")))
    uuid = (await sim_pair.ca.host_info()).uuid

    await sim_pair.restart(sim_pair.a)

    assert (await sim_pair.ca.host_info()).uuid == uuid
    assert await names(sim_pair.ca, include_inactive=True) == {
        "idle": DomainState.SHUTOFF,
        "running": DomainState.RUNNING,
    }
    await sim_pair.ca.destroy("running")


async def test_speed_and_downtime_settings(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca)
    await sim_pair.ca.migrate_setspeed("vm", 123)
    assert await sim_pair.ca.migrate_getspeed("vm") == 123
    await sim_pair.ca.migrate_setmaxdowntime("vm", 750)
    with pytest.raises(ClientError) as refused:
        await sim_pair.ca.migrate_setspeed("vm", -1)
    assert refused.value.code == "invalid-argument"


# -- refusals ------------------------------------------------------------------------------------


async def test_unknown_domains_are_named(sim_pair: SimPair) -> None:
    client = sim_pair.ca
    for call in (
        lambda: client.dominfo("ghost"),
        lambda: client.start("ghost"),
        lambda: client.destroy("ghost"),
        lambda: client.undefine("ghost"),
        lambda: client.dumpxml("ghost"),
        lambda: client.domjobinfo("ghost"),
        lambda: client.migrate("ghost", sim_pair.b.unix_uri, flags=P2P),
    ):
        with pytest.raises(ClientError) as refused:
            await call()
        assert refused.value.code == "no-domain"
        assert "ghost" in refused.value.message


async def test_requests_in_the_wrong_state_are_refused(sim_pair: SimPair) -> None:
    client = sim_pair.ca
    await client.define(format_domain(make_domain("vm")))
    cases = [
        (lambda: client.destroy("vm"), "is not running"),
        (lambda: client.migrate("vm", sim_pair.b.unix_uri, flags=P2P), "is not running"),
        (lambda: client.domjobabort("vm"), "no job is active"),
    ]
    for call, words in cases:
        with pytest.raises(ClientError) as refused:
            await call()
        assert refused.value.code == "invalid-state"
        assert words in refused.value.message
    await client.start("vm")
    with pytest.raises(ClientError, match="already running") as again:
        await client.start("vm")
    assert again.value.code == "invalid-state"
    await client.destroy("vm")


async def test_bad_arguments_are_refused_with_libvirts_words(sim_pair: SimPair) -> None:
    client = sim_pair.ca
    cases = [
        (lambda: client.define("<domain"), None),
        (
            lambda: client.define(
                format_domain(dataclasses.replace(make_domain("vm"), name="a/b"))
            ),
            "cannot contain '/'",
        ),
        (
            lambda: client.migrate("vm", sim_pair.b.unix_uri, flags=F.OFFLINE | F.PEER2PEER),
            "offline migration must be specified with the persistent flag set",
        ),
        (
            lambda: client.migrate("vm", sim_pair.b.unix_uri, flags=F.PEER2PEER | F.POSTCOPY),
            "post-copy migration is not supported with non-live",
        ),
        (
            lambda: client.migrate("vm", "http://elsewhere", flags=P2P),
            "the scheme must be",
        ),
    ]
    await define_and_start(client)
    for call, words in cases:
        with pytest.raises(ClientError) as refused:
            await call()
        assert refused.value.code == "invalid-argument", refused.value
        if words:
            assert words in refused.value.message
    other = dataclasses.replace(make_domain("vm"), uuid=make_domain("other").uuid)
    with pytest.raises(ClientError, match="already exists with uuid"):
        await client.define(format_domain(other))


async def test_destination_xml_must_describe_the_same_guest(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca)
    bigger = format_domain(make_domain("vm", memory_mib=128))
    with pytest.raises(ClientError) as refused:
        await sim_pair.ca.migrate(
            "vm", sim_pair.b.unix_uri, flags=P2P, typed={"destination_xml": bigger}
        )
    assert refused.value.code == "invalid-argument"
    assert "destination_xml" in refused.value.message
    assert "max memory" in refused.value.message
    assert refused.value.details["field"] == "memory"
    assert await names(sim_pair.ca) == {"vm": DomainState.RUNNING}
    assert (await sim_pair.ca.domjobinfo("vm")).job_type is JobType.NONE


# -- one job per domain, events ------------------------------------------------------------------


async def test_a_second_request_during_a_migration_is_busy_at_once(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca)
    events = await recorder(sim_pair.ca)
    # The migration stops progressing in its second pre-copy pass until it is cancelled.
    sim_pair.world.inject(Fault(FaultKind.HANG, "host-a", FaultPoint.on_pass(2)))
    async with asyncio.timeout(GUARD_S):
        migration = asyncio.create_task(sim_pair.ca.migrate("vm", sim_pair.b.unix_uri, flags=P2P))
        await events.wait_for(lambda e: isinstance(e, JobEvent) and e.phase == "perform3")

        for call in (
            lambda: sim_pair.ca.migrate("vm", sim_pair.b.unix_uri, flags=P2P),
            lambda: sim_pair.ca.destroy("vm"),
            lambda: sim_pair.ca.undefine("vm"),
        ):
            with pytest.raises(ClientError) as busy:
                await call()
            assert busy.value.code == "busy"
            assert busy.value.message == "domain 'vm' is busy with migration-out"
        # As libvirt, the outgoing migration lets the guest be suspended and resumed ...
        await sim_pair.ca.suspend("vm")
        assert (await sim_pair.ca.dominfo("vm")).state is DomainState.PAUSED
        await sim_pair.ca.resume("vm")
        assert (await sim_pair.ca.dominfo("vm")).state is DomainState.RUNNING
        # ... but not the incoming guest.
        with pytest.raises(ClientError) as incoming:
            await sim_pair.cb.suspend("vm")
        assert incoming.value.message == "domain 'vm' is busy with migration-in"

        info = await sim_pair.ca.dominfo("vm")
        assert info.job is JobOperation.MIGRATION_OUT
        job = await sim_pair.ca.domjobinfo("vm")
        assert (job.job_type, job.operation, job.phase) == (
            JobType.UNBOUNDED,
            "migration-out",
            "perform3",
        )
        assert (await sim_pair.cb.dominfo("vm")).job is JobOperation.MIGRATION_IN
        await events.wait_for(
            lambda e: (
                isinstance(e, JobEvent)
                and e.phase == "perform3"
                and (e.statistics.data_processed or 0) > 0
            )
        )

        await sim_pair.ca.domjobabort("vm")
        with pytest.raises(ClientError) as failed:
            await migration
    assert failed.value.code == "migration-failed"
    assert "cancelled" in failed.value.message
    assert await names(sim_pair.ca) == {"vm": DomainState.RUNNING}
    assert await names(sim_pair.cb, include_inactive=True) == {}
    completed = await sim_pair.ca.domjobinfo("vm", completed=True)
    assert completed.job_type is JobType.CANCELLED
    phases = [e.phase for e in events.jobs() if e.domain == "vm"]
    assert phases[0] == "begin3"
    assert phases[-1] == "confirm3_cancelled"
    assert events.jobs()[-1].done
    await events.close()


async def test_lifecycle_events_arrive_in_order(sim_pair: SimPair) -> None:
    events = await recorder(sim_pair.ca)
    await define_and_start(sim_pair.ca)
    await sim_pair.ca.suspend("vm")
    await sim_pair.ca.resume("vm")
    await sim_pair.ca.shutdown("vm")
    await events.wait_for(lambda e: isinstance(e, LifecycleEvent) and e.detail == "shutdown")
    await sim_pair.ca.undefine("vm")
    await events.wait_for(
        lambda e: isinstance(e, LifecycleEvent) and e.event is LifecycleKind.UNDEFINED
    )
    assert events.lifecycle() == [
        ("vm", LifecycleKind.DEFINED, "updated"),
        ("vm", LifecycleKind.STARTED, "booted"),
        ("vm", LifecycleKind.SUSPENDED, "paused"),
        ("vm", LifecycleKind.RESUMED, "unpaused"),
        ("vm", LifecycleKind.SHUTDOWN, "guest"),
        ("vm", LifecycleKind.STOPPED, "shutdown"),
        ("vm", LifecycleKind.UNDEFINED, "removed"),
    ]
    assert await names(sim_pair.ca, include_inactive=True) == {}
    await events.close()


# -- migration -----------------------------------------------------------------------------------

COMBINATIONS = [
    (F(0), {"host-a"}, set()),
    (F.PERSIST_DEST, {"host-a", "host-b"}, {"host-b"}),
    (F.UNDEFINE_SOURCE, set(), set()),
    (F.PERSIST_DEST | F.UNDEFINE_SOURCE, {"host-b"}, {"host-b"}),
]


@pytest.mark.parametrize("direct", [False, True], ids=["p2p", "direct"])
@pytest.mark.parametrize(("extra", "defined_on", "persistent_on"), COMBINATIONS)
async def test_migration_moves_the_guest_and_its_definition(
    sim_pair: SimPair,
    direct: bool,
    extra: F,
    defined_on: set[str],
    persistent_on: set[str],
) -> None:
    await define_and_start(sim_pair.ca)
    arrivals = await recorder(sim_pair.cb)
    flags = F.LIVE | extra | (F(0) if direct else F.PEER2PEER)
    info = await sim_pair.ca.migrate("vm", sim_pair.b.unix_uri, flags=flags, direct=direct)

    assert (info.job_type, info.operation) == (JobType.COMPLETED, "migration-out")
    assert info.statistics.memory_total == 64 * 1024 * 1024
    assert await names(sim_pair.ca) == {}
    [arrived] = await sim_pair.cb.list_domains()
    assert (arrived.name, arrived.state) == ("vm", DomainState.RUNNING)
    assert {arrived.persistent} == {"host-b" in persistent_on}
    defined = {
        host
        for host, client in (("host-a", sim_pair.ca), ("host-b", sim_pair.cb))
        if "vm" in await names(client, include_inactive=True)
        and (await client.dominfo("vm")).persistent
    }
    assert defined == defined_on
    await arrivals.wait_for(job_done("vm"))
    assert ("vm", LifecycleKind.MIGRATED_IN, "migrated") in arrivals.lifecycle()
    completed = await sim_pair.cb.domjobinfo("vm", completed=True)
    assert (completed.job_type, completed.operation) == (JobType.COMPLETED, "migration-in")
    await arrivals.close()


async def test_offline_migration_moves_only_the_definition(sim_pair: SimPair) -> None:
    await sim_pair.ca.define(format_domain(make_domain("vm")))
    flags = F.OFFLINE | F.PERSIST_DEST | F.PEER2PEER | F.UNDEFINE_SOURCE
    info = await sim_pair.ca.migrate("vm", sim_pair.b.unix_uri, flags=flags)
    assert info.job_type is JobType.COMPLETED
    assert await names(sim_pair.ca, include_inactive=True) == {}
    assert await names(sim_pair.cb, include_inactive=True) == {"vm": DomainState.SHUTOFF}


async def test_paused_guest_arrives_paused(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca)
    await sim_pair.ca.suspend("vm")
    await sim_pair.ca.migrate("vm", sim_pair.b.unix_uri, flags=P2P)
    assert await names(sim_pair.cb) == {"vm": DomainState.PAUSED}


async def test_the_same_host_is_refused(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca)
    with pytest.raises(ClientError) as refused:
        await sim_pair.ca.migrate("vm", sim_pair.a.unix_uri, flags=P2P)
    assert refused.value.code == "migration-failed"
    assert "same host" in refused.value.message
    assert await names(sim_pair.ca) == {"vm": DomainState.RUNNING}


async def test_an_unreachable_destination_is_named(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca)
    gone = f"migrator+unix://{sim_pair.root}/nobody.sock"
    with pytest.raises(ClientError) as refused:
        await sim_pair.ca.migrate("vm", gone, flags=P2P)
    assert refused.value.code == "unreachable"
    assert gone in refused.value.message
    assert await names(sim_pair.ca) == {"vm": DomainState.RUNNING}


async def test_a_cookie_from_a_host_never_introduced_is_refused(sim_pair: SimPair) -> None:
    await define_and_start(sim_pair.ca)
    source = await open_session(parse_uri(sim_pair.a.unix_uri), tls_dir=None)
    destination = await open_session(parse_uri(sim_pair.b.unix_uri), tls_dir=None)
    try:
        begun = await RemoteSource(source).begin("vm", flags=P2P, typed={})
        with pytest.raises(ClientError) as refused:
            await RemoteDestination(destination).prepare(
                cookie=begun.cookie, xml=begun.xml, flags=P2P, typed={}
            )
        assert refused.value.code == "migration-failed"
        await RemoteSource(source).confirm("vm", cookie=None, cancelled=True)
    finally:
        await source.close()
        await destination.close()
    assert await names(sim_pair.ca) == {"vm": DomainState.RUNNING}


async def prepared_by_hand(sim_pair: SimPair) -> tuple[Session, Session]:
    """Start ``vm`` on ``a`` and run Begin and Prepare of a live migration to ``b`` as a
    managed-direct client does; the client's sessions with ``a`` and ``b``."""
    await define_and_start(sim_pair.ca)
    await sim_pair.ca._call("host.trust", peer=sim_pair.b.unix_uri)
    source = await open_session(parse_uri(sim_pair.a.unix_uri), tls_dir=None)
    destination = await open_session(parse_uri(sim_pair.b.unix_uri), tls_dir=None)
    begun = await RemoteSource(source).begin("vm", flags=F.LIVE, typed={})
    await RemoteDestination(destination).prepare(
        cookie=begun.cookie, xml=begun.xml, flags=F.LIVE, typed={}
    )
    return source, destination


async def test_a_controller_that_goes_away_leaves_the_guest_on_the_source(
    sim_pair: SimPair,
) -> None:
    """A managed-direct client that disconnects after Prepare: the destination abandons its
    incoming guest and the source ends its job, the guest running on."""
    on_a, on_b = await recorder(sim_pair.ca), await recorder(sim_pair.cb)
    source, destination = await prepared_by_hand(sim_pair)
    assert (await sim_pair.cb.dominfo("vm")).job is JobOperation.MIGRATION_IN

    await source.close()
    await destination.close()

    async with asyncio.timeout(GUARD_S):
        await on_a.wait_for(job_done("vm"))
        await on_b.wait_for(job_done("vm"))
    assert await names(sim_pair.ca) == {"vm": DomainState.RUNNING}
    assert (await sim_pair.ca.dominfo("vm")).job is None
    assert await names(sim_pair.cb, include_inactive=True) == {}
    incoming = sim_pair.world.guest("host-b", "vm")
    assert incoming is None or not incoming.alive
    await on_a.close()
    await on_b.close()


async def test_an_incoming_guest_that_died_is_closed_when_its_controller_goes(
    sim_pair: SimPair,
) -> None:
    """The incoming QEMU dies after Prepare and no Finish ever comes (the source is cut
    off): once the controlling connection is gone the destination closes the job, leaving
    no record behind."""
    on_b = await recorder(sim_pair.cb)
    source, destination = await prepared_by_hand(sim_pair)
    incoming = sim_pair.world.guest("host-b", "vm")
    assert incoming is not None
    incoming.die("killed while waiting for the stream")
    assert sim_pair.b.host.status.names() == ["vm"]

    await destination.close()

    async with asyncio.timeout(GUARD_S):
        await on_b.wait_for(job_done("vm"))
    assert sim_pair.b.host.status.names() == []
    assert await names(sim_pair.cb, include_inactive=True) == {}
    await RemoteSource(source).confirm("vm", cookie=None, cancelled=True)
    await source.close()
    assert await names(sim_pair.ca) == {"vm": DomainState.RUNNING}
    await on_b.close()


async def test_phase_requests_check_their_parameters(sim_pair: SimPair) -> None:
    session = await open_session(parse_uri(sim_pair.a.unix_uri), tls_dir=None)
    try:
        for method, params in (
            ("migration.begin", {"name": "vm"}),
            ("migration.begin", {"name": "vm", "flags": 1 << 40}),
            ("migration.prepare", {"cookie": "text", "xml": "", "flags": 0}),
            ("migration.finish", {"name": 3, "cancelled": False}),
            ("host.trust", {"uuid": "nope", "name": "x", "key": b"k"}),
        ):
            with pytest.raises(ClientError) as refused:
                await session.call(method, params)
            assert refused.value.code == "invalid-argument", (method, refused.value)
        with pytest.raises(ClientError) as same:
            await session.call(
                "host.trust",
                {"uuid": sim_pair.a.host.uuid, "name": "x", "key": bytes(32)},
            )
        assert same.value.code == "trust-refused"
    finally:
        await session.close()
    assert wire.KNOWN_FLAGS & (1 << 40) == 0


async def test_a_migration_that_cannot_converge_finishes_in_post_copy(sim_pair: SimPair) -> None:
    sim_pair.world.set_workload(
        "vm", Workload(working_set_bytes=48 * MiB, dirty_rate_bytes_s=4096 * MiB)
    )
    await define_and_start(sim_pair.ca)
    events = await recorder(sim_pair.ca)
    async with asyncio.timeout(GUARD_S):
        migration = asyncio.create_task(
            sim_pair.ca.migrate("vm", sim_pair.b.unix_uri, flags=P2P | F.POSTCOPY)
        )
        await events.wait_for(lambda e: isinstance(e, JobEvent) and e.phase == "perform3")
        with pytest.raises(ClientError) as refused:
            await sim_pair.ca.migrate_postcopy("ghost")
        assert refused.value.code == "invalid-state"
        await sim_pair.ca.migrate_postcopy("vm")
        info = await migration
    assert info.job_type is JobType.COMPLETED
    assert await names(sim_pair.cb) == {"vm": DomainState.RUNNING}
    assert await names(sim_pair.ca) == {}
    await events.close()
