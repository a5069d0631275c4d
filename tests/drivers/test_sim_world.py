"""The simulated world: addresses and ports, links, several migrations at once, and
determinism (the same inputs give the same trace and statistics)."""

from __future__ import annotations

import asyncio

import pytest

from migrator.drivers.base import CommandFailed, MigrationProgress, MigrationStatus, StartMode
from migrator.drivers.sim import (
    Fault,
    FaultKind,
    FaultPoint,
    Link,
    SimDriver,
    SimError,
    SimWorld,
    TraceRecord,
    Workload,
)
from migrator.drivers.sim.network import Address, parse_uri
from tests.drivers.simkit import DESTINATION, SOURCE, GiB, MiB, Pair, domain


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("tcp:host-b:0", Address("host-b", 0)),
        ("tcp:[::]:4444", Address("::", 4444)),
        ("tcp::49152", Address("", 49152)),
    ],
)
def test_uris_parse(uri: str, address: Address) -> None:
    assert parse_uri(uri) == address


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("unix:/tmp/sock", "Parameter 'uri' expects a valid migration protocol"),
        ("tcp:host-b", "error parsing address 'host-b'"),
        ("tcp:host-b:99999", "error parsing address 'host-b:99999'"),
    ],
)
def test_bad_uris_are_refused(uri: str, message: str) -> None:
    with pytest.raises(CommandFailed) as caught:
        parse_uri(uri)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (f"tcp:{SOURCE}:0", "Failed to bind socket: Cannot assign requested address"),
        ("tcp:elsewhere:0", "address resolution failed for elsewhere:0: Name or service not known"),
        (f"tcp:{DESTINATION}:5900", "Failed to find an available port: Address already in use"),
    ],
)
async def test_listening_needs_a_local_free_address(listen: str, message: str) -> None:
    pair = Pair()
    instance = await pair.destination_driver.start(domain(), mode=StartMode.INCOMING)
    pair.world.network.take_display_port(DESTINATION, 5900)
    with pytest.raises(CommandFailed) as caught:
        await instance.start_incoming(listen)
    assert str(caught.value) == message


async def test_local_addresses_name_the_host_itself() -> None:
    pair = Pair()
    first = await pair.destination_driver.start(domain("one"), mode=StartMode.INCOMING)
    second = await pair.destination_driver.start(domain("two"), mode=StartMode.INCOMING)
    assert await first.start_incoming("tcp:0.0.0.0:0") == "tcp:0.0.0.0:49152"
    assert await second.start_incoming("tcp:[::]:0") == "tcp:[::]:49153"
    # From the source, "localhost" is the source: nothing listens there.
    source = await pair.source_driver.start(domain("one"), mode=StartMode.RUNNING)
    progress = await pair.migrate(source, "tcp:localhost:49152")
    assert progress.error_desc == "Failed to connect to 'localhost:49152': Connection refused"


async def test_a_link_cut_mid_migration_fails_it_and_a_new_link_is_used_at_once() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare(memory_bytes=GiB)
    await source.migrate(uri)
    await pair.world.sleep(1000)
    pair.world.set_link(SOURCE, DESTINATION, link=Link(bandwidth_bytes_s=GiB, up=False))
    await pair.world.sleep(0)
    progress = await source.query_migration()
    assert progress.status is MigrationStatus.FAILED
    assert progress.error_desc == "Unable to write to socket: No route to host"


async def test_a_faster_link_does_not_beat_max_bandwidth_but_a_slower_one_limits() -> None:
    pair = Pair(link=Link(bandwidth_bytes_s=32 * MiB))
    source, _destination, uri = await pair.prepare()
    progress = await pair.migrate(source, uri)
    assert progress.total_time == 2000  # 64 MiB at the link's 32 MiB/s, under 128 MiB/s


@pytest.mark.parametrize(
    "build",
    [
        lambda: Link(bandwidth_bytes_s=0),
        lambda: Link(bandwidth_bytes_s=1, stream_bytes_s=0),
        lambda: Workload(dirty_rate_bytes_s=-1),
        lambda: Workload(nonzero_bytes=-1),
        lambda: Workload(xbzrle_ratio=0),
        lambda: SimWorld().add_host("localhost"),
        lambda: SimWorld().set_link("x", "y", link=Link(bandwidth_bytes_s=1)),
    ],
)
def test_impossible_worlds_are_refused(build) -> None:
    with pytest.raises(SimError):
        build()


async def test_concurrent_migrations_keep_their_own_pace() -> None:
    pair = Pair()
    small, _, small_uri = await pair.prepare(name="small", memory_bytes=64 * MiB)
    large, _, large_uri = await pair.prepare(name="large", memory_bytes=512 * MiB)
    results = await asyncio.gather(pair.migrate(large, large_uri), pair.migrate(small, small_uri))
    assert [p.total_time for p in results] == [4000, 500]
    assert pair.world.now_ms == 4000


# -- determinism ---------------------------------------------------------------------------


async def scenario() -> tuple[tuple[TraceRecord, ...], list[MigrationProgress]]:
    """Two guests at once, auto-converge on one, post-copy on the other, a partition of the
    destination host when post-copy starts (which also cuts the first guest's pre-copy
    if it is still running), and the post-copy recovery."""
    pair = Pair()
    world = pair.world
    busy = Workload(working_set_bytes=256 * MiB, dirty_rate_bytes_s=200 * MiB)
    first, _first_dest, first_uri = await pair.prepare(
        name="first", memory_bytes=GiB, workload=busy, source_capabilities=["auto-converge"]
    )
    second, second_dest, second_uri = await pair.prepare(
        name="second", memory_bytes=GiB, workload=busy, capabilities=["postcopy-ram"]
    )
    world.inject(
        Fault(
            kind=FaultKind.LINK_DOWN,
            host=DESTINATION,
            instance="second",
            point=FaultPoint.on_status(MigrationStatus.POSTCOPY_ACTIVE),
            duration_ms=1500,
        )
    )
    await first.migrate(first_uri)
    await second.migrate(second_uri)
    await world.sleep(40_000)
    await second.start_postcopy()
    await world.sleep(2000)
    await second_dest.recover_postcopy(second_uri)
    await second.migrate(second_uri, resume=True)
    await world.sleep(300_000)
    stats = [await first.query_migration(), await second.query_migration()]
    return world.trace, stats


async def test_the_same_inputs_give_the_same_trace_and_statistics() -> None:
    trace, stats = await scenario()
    again_trace, again_stats = await scenario()
    assert trace == again_trace
    assert stats == again_stats
    first, second = stats
    assert first.status is MigrationStatus.COMPLETED
    assert first.dirty_sync_count > 2
    assert second.status is MigrationStatus.COMPLETED
    assert MigrationStatus.POSTCOPY_RECOVER in Pair.statuses_in(trace, host=SOURCE, name="second")


async def test_two_drivers_on_one_host_share_its_guests() -> None:
    world = SimWorld()
    first = SimDriver(world, SOURCE)
    second = SimDriver(world, SOURCE)
    await first.start(domain(), mode=StartMode.RUNNING)
    assert await second.attach(domain()) is not None
    assert world.hosts == {SOURCE}
