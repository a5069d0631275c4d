"""Post-copy on the simulator: the switch, page requests, pauses and recovery."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from migrator.drivers.base import CommandFailed, EventKind, MigrationStatus, RunState
from migrator.drivers.sim import Workload
from tests.drivers.simkit import DESTINATION, SOURCE, GiB, MiB, Pair

BUSY = Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=256 * MiB)
LINK_BYTES_S = 1_250_000_000
RECOVER_URI = f"tcp:{DESTINATION}:0"


async def switched(pair: Pair, *, source_capabilities: Iterable[str] = ()):
    """A busy guest switched to post-copy 2 s into its migration."""
    source, destination, uri = await pair.prepare(
        memory_bytes=GiB,
        workload=BUSY,
        capabilities=["postcopy-ram"],
        source_capabilities=source_capabilities,
    )
    await source.migrate(uri)
    await pair.world.sleep(2000)
    await source.start_postcopy()
    await pair.world.sleep(0)
    return source, destination


async def test_the_destination_pulls_the_rest_and_counts_page_requests() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(
        memory_bytes=GiB, workload=BUSY, capabilities=["postcopy-ram"]
    )
    await destination.resume()  # start as soon as it can (QEMU's autostart)
    await source.migrate(uri)
    await pair.world.sleep(2000)
    await source.start_postcopy()
    await pair.world.sleep(600_000)
    progress = await source.query_migration()

    # At 2 s, pass 1 (128 MiB/s) has 768 MiB left, and the guest has dirtied its working set.
    pulled = 768 * MiB + BUSY.working_set_bytes
    seconds = pulled / LINK_BYTES_S  # max-postcopy-bandwidth 0: the link's speed
    # The running destination touches pages at the workload's rate; a touch misses in
    # proportion to what is still missing, which falls linearly from all to nothing.
    requests = BUSY.dirty_rate_bytes_s / 4096 * seconds / 2
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.total_time == round(2000 + seconds * 1000)
    assert progress.downtime == 0
    assert abs(progress.postcopy_requests - requests) <= 1
    assert progress.dirty_sync_count == 2  # the setup sync and the one at the switch
    assert pair.statuses(SOURCE) == [
        MigrationStatus.SETUP,
        MigrationStatus.ACTIVE,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.COMPLETED,
    ]
    assert pair.kinds(DESTINATION)[-3:] == [
        EventKind.MIGRATION,
        EventKind.RESUMED,
        EventKind.MIGRATION,
    ]
    assert await destination.run_state() is RunState.RUNNING
    assert await source.run_state() is RunState.POSTMIGRATE


async def test_a_paused_destination_requests_nothing() -> None:
    pair = Pair()
    source, destination = await switched(pair)
    assert await destination.run_state() is RunState.PAUSED
    await pair.world.sleep(600_000)
    progress = await source.query_migration()
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.postcopy_requests == 0


async def test_max_postcopy_bandwidth_limits_the_pull() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare(
        memory_bytes=GiB,
        workload=BUSY,
        capabilities=["postcopy-ram"],
        parameters={"max-postcopy-bandwidth": 64 * MiB},
    )
    await source.migrate(uri)
    await pair.world.sleep(2000)
    await source.start_postcopy()
    await pair.world.sleep(600_000)
    progress = await source.query_migration()
    assert progress.total_time == 2000 + 1280 * 1000 // 64


async def test_a_switch_requested_near_the_end_completes_as_pre_copy() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare(capabilities=["postcopy-ram"])
    await source.migrate(uri)
    await pair.world.sleep(0)
    await source.set_parameters({"downtime-limit": 1_000_000})
    await source.start_postcopy()
    await pair.world.sleep(10_000)
    assert (await source.query_migration()).status is MigrationStatus.COMPLETED
    assert MigrationStatus.POSTCOPY_ACTIVE not in pair.statuses(SOURCE)


async def test_pause_before_switchover_holds_the_switch_too() -> None:
    pair = Pair()
    source, destination = await switched(pair, source_capabilities=["pause-before-switchover"])
    assert (await source.query_migration()).status is MigrationStatus.PRE_SWITCHOVER
    assert (await destination.query_migration()).status is MigrationStatus.ACTIVE
    await source.continue_migration()
    await pair.world.sleep(600_000)
    assert pair.statuses(SOURCE) == [
        MigrationStatus.SETUP,
        MigrationStatus.ACTIVE,
        MigrationStatus.PRE_SWITCHOVER,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.COMPLETED,
    ]


async def test_a_destination_without_postcopy_fails_the_switch() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(
        memory_bytes=GiB, workload=BUSY, source_capabilities=["postcopy-ram"]
    )
    await source.migrate(uri)
    await pair.world.sleep(2000)
    await source.start_postcopy()
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.FAILED
    assert not destination.alive
    # QEMU leaves the source stopped after a failed switch; the caller restarts it.
    assert await source.run_state() is RunState.POSTMIGRATE
    await source.resume()
    assert await source.run_state() is RunState.RUNNING


@pytest.mark.parametrize("side", ["source", "destination"])
async def test_migrate_pause_pauses_both_sides_until_recovered(side: str) -> None:
    pair = Pair()
    source, destination = await switched(pair)
    await (source if side == "source" else destination).pause_postcopy()
    await pair.world.sleep(0)
    for instance in (source, destination):
        assert (await instance.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED
    with pytest.raises(CommandFailed, match="only supported during postcopy-active"):
        await source.pause_postcopy()
    await destination.recover_postcopy(RECOVER_URI)
    await source.migrate(f"tcp:{DESTINATION}:49152", resume=True)
    await pair.world.sleep(600_000)
    for instance in (source, destination):
        assert (await instance.query_migration()).status is MigrationStatus.COMPLETED


async def test_recovery_needs_a_paused_post_copy() -> None:
    pair = Pair()
    source, destination = await switched(pair)
    with pytest.raises(CommandFailed, match="Migrate recover can only be run"):
        await destination.recover_postcopy(RECOVER_URI)
    with pytest.raises(CommandFailed, match="Cannot resume if there is no paused migration"):
        await source.migrate(RECOVER_URI, resume=True)


async def test_resuming_to_an_address_nobody_recovers_on_stays_paused() -> None:
    pair = Pair()
    source, destination = await switched(pair)
    await source.pause_postcopy()
    await pair.world.sleep(0)
    await source.migrate(f"tcp:{DESTINATION}:49152", resume=True)
    await pair.world.sleep(60_000)
    assert (await source.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED
    assert (await destination.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED


async def test_losing_the_destination_in_post_copy_pauses_the_source() -> None:
    pair = Pair()
    source, destination = await switched(pair)
    await destination.kill()
    await pair.world.sleep(60_000)
    assert (await source.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED
    assert not (await source.run_state()).cpus_running
    await source.cancel_migration()
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.CANCELLED
    assert await source.run_state() is RunState.POSTMIGRATE  # no restart after a switch


async def test_losing_the_source_in_post_copy_pauses_the_destination() -> None:
    pair = Pair()
    source, destination = await switched(pair)
    await destination.resume()
    await source.kill()
    await pair.world.sleep(60_000)
    assert destination.alive
    assert (await destination.query_migration()).status is MigrationStatus.POSTCOPY_PAUSED
    assert await destination.run_state() is RunState.RUNNING
