"""Bandwidth and size effects on the simulator (multifd, xbzrle) and parameters changed
while a migration runs, each against the time computed here from the parameters."""

from __future__ import annotations

import pytest

from migrator.drivers.base import EventKind, MigrationStatus, RunState
from migrator.drivers.sim import Link, Workload
from tests.drivers.simkit import DESTINATION, SOURCE, GiB, MiB, Pair

PAGE = 4096

# -- multifd -------------------------------------------------------------------------------

#: One TCP stream gets 512 MiB/s through a 2 GiB/s link.
STREAMED = Link(bandwidth_bytes_s=2 * GiB, stream_bytes_s=512 * MiB)


@pytest.mark.parametrize("channels", [None, 2, 4, 16])
async def test_multifd_multiplies_the_stream_bandwidth(channels: int | None) -> None:
    pair = Pair(link=STREAMED)
    source, destination, uri = await pair.prepare(
        memory_bytes=GiB,
        capabilities=[] if channels is None else ["multifd"],
        parameters={"max-bandwidth": 0},
    )
    if channels is not None:
        await source.set_parameters({"multifd-channels": channels})
        await destination.set_parameters({"multifd-channels": channels})
    progress = await pair.migrate(source, uri)

    assert STREAMED.stream_bytes_s is not None
    bandwidth = min(STREAMED.bandwidth_bytes_s, STREAMED.stream_bytes_s * (channels or 1))
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.total_time == round(GiB / bandwidth * 1000)


async def test_multifd_on_one_side_only_fails_and_the_destination_exits() -> None:
    pair = Pair(link=STREAMED)
    source, destination, uri = await pair.prepare(source_capabilities=["multifd"])
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.FAILED
    assert not destination.alive
    assert await source.run_state() is RunState.RUNNING
    assert pair.statuses(DESTINATION) == [
        MigrationStatus.SETUP,
        MigrationStatus.ACTIVE,
        MigrationStatus.FAILED,
    ]


# -- xbzrle --------------------------------------------------------------------------------

MEMORY = 256 * MiB
SMALL_SET = Workload(working_set_bytes=64 * MiB, dirty_rate_bytes_s=48 * MiB, xbzrle_ratio=0.25)
BANDWIDTH = 64 * MiB
DOWNTIME_MS = 50
CACHE = 64 * MiB


def predict_total_ms(*, xbzrle: bool) -> tuple[float, list[tuple[int, float]]]:
    """Total time, and (pass, guest bytes) of every pass including the stop-and-copy. With
    xbzrle, passes from the third send ``hit * ratio + (1 - hit)`` of their bytes."""
    hit = min(1.0, CACHE / SMALL_SET.working_set_bytes)

    def wire(pass_number: int) -> float:
        if not xbzrle or pass_number < 3:
            return 1.0
        return hit * SMALL_SET.xbzrle_ratio + (1 - hit)

    pending, pass_number, elapsed_ms = float(MEMORY), 1, 0.0
    passes: list[tuple[int, float]] = []
    while True:
        passes.append((pass_number, pending))
        seconds = pending * wire(pass_number) / BANDWIDTH
        elapsed_ms += seconds * 1000
        dirtied = min(SMALL_SET.working_set_bytes, SMALL_SET.dirty_rate_bytes_s * seconds)
        pass_number += 1
        if dirtied / BANDWIDTH * 1000 <= DOWNTIME_MS:
            passes.append((pass_number, dirtied))
            link = Link(bandwidth_bytes_s=BANDWIDTH).bandwidth_bytes_s
            return elapsed_ms + dirtied * wire(pass_number) / link * 1000, passes
        pending = dirtied


@pytest.mark.parametrize("xbzrle", [False, True])
async def test_xbzrle_shrinks_the_passes_after_the_bulk_pass(xbzrle: bool) -> None:
    pair = Pair(link=Link(bandwidth_bytes_s=BANDWIDTH))
    source, _destination, uri = await pair.prepare(
        memory_bytes=MEMORY,
        workload=SMALL_SET,
        source_capabilities=["xbzrle"] if xbzrle else [],
        parameters={"downtime-limit": DOWNTIME_MS, "xbzrle-cache-size": CACHE},
    )
    progress = await pair.migrate(source, uri)

    total_ms, passes = predict_total_ms(xbzrle=xbzrle)
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.dirty_sync_count == len(passes)
    assert progress.total_time == round(total_ms)
    if not xbzrle:
        assert progress.xbzrle_pages == progress.xbzrle_cache_miss == 0
        return
    encoded_pages = sum(size for number, size in passes if number >= 3) / PAGE
    assert progress.xbzrle_cache_size == CACHE
    assert progress.xbzrle_cache_miss == sum(size for number, size in passes if number == 2) / PAGE
    assert abs(progress.xbzrle_pages - encoded_pages) <= 1
    assert abs(progress.xbzrle_bytes - encoded_pages * PAGE * SMALL_SET.xbzrle_ratio) <= PAGE
    assert total_ms < predict_total_ms(xbzrle=False)[0]


async def test_xbzrle_that_overflows_sends_whole_pages() -> None:
    pair = Pair(link=Link(bandwidth_bytes_s=BANDWIDTH))
    overflowing = Workload(
        working_set_bytes=SMALL_SET.working_set_bytes,
        dirty_rate_bytes_s=SMALL_SET.dirty_rate_bytes_s,
        xbzrle_ratio=1.5,
    )
    source, _destination, uri = await pair.prepare(
        memory_bytes=MEMORY,
        workload=overflowing,
        source_capabilities=["xbzrle"],
        parameters={"downtime-limit": DOWNTIME_MS},
    )
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.total_time == round(predict_total_ms(xbzrle=False)[0])
    assert progress.xbzrle_overflow > 0
    assert progress.xbzrle_pages == progress.xbzrle_bytes == 0


# -- parameters changed mid-migration --------------------------------------------------------


async def test_raising_max_bandwidth_mid_migration_speeds_up_the_rest() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare(memory_bytes=GiB)
    await source.migrate(uri)
    await pair.world.sleep(2000)
    progress = await source.query_migration()
    sent_so_far = 2 * 128 * MiB
    assert progress.transferred == sent_so_far
    assert progress.remaining == GiB - sent_so_far
    await source.set_parameters({"max-bandwidth": 512 * MiB})
    await pair.world.sleep(60_000)
    progress = await source.query_migration()
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.total_time == 2000 + round((GiB - sent_so_far) / (512 * MiB) * 1000)


async def test_raising_the_downtime_limit_mid_migration_switches_over_at_the_pass_end() -> None:
    busy = Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=256 * MiB)
    link = Link(bandwidth_bytes_s=GiB)
    pair = Pair(link=link)
    source, _destination, uri = await pair.prepare(memory_bytes=GiB, workload=busy)
    await source.migrate(uri)
    # Passes at 128 MiB/s: 0-8 s (all of memory), then 4 s each for the working set.
    await pair.world.sleep(10_000)
    assert (await source.query_migration()).dirty_sync_count == 2
    await source.set_parameters({"downtime-limit": 5000})
    await pair.world.sleep(60_000)
    progress = await source.query_migration()
    downtime = busy.working_set_bytes / link.bandwidth_bytes_s * 1000
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.dirty_sync_count == 3
    assert progress.downtime == round(downtime)
    assert progress.total_time == round(12_000 + downtime)


async def test_pausing_the_source_stops_the_dirtying() -> None:
    busy = Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=256 * MiB)
    pair = Pair()
    source, _destination, uri = await pair.prepare(memory_bytes=GiB, workload=busy)
    await source.migrate(uri)
    await pair.world.sleep(10_000)
    await source.pause()
    await pair.world.sleep(60_000)
    progress = await source.query_migration()
    # Pass 2 (8-12 s) ends with the working set dirtied before the pause at 10 s; pass 3
    # (12-16 s) sends it while nothing is dirtied, so pass 4 has nothing left.
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.dirty_sync_count == 4
    assert progress.total_time == 16_000
    assert progress.downtime == 0
    assert pair.kinds(SOURCE).count(EventKind.STOPPED) == 1
