"""Pre-copy convergence on the simulator, against predictions computed here from the
parameters (the model of the issue: each pass sends what the guest dirtied during the one
before, capped by its working set; switchover once what remains fits in the downtime limit
at the migration bandwidth; the stop-and-copy runs at the link's full speed)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.drivers.base import MigrationStatus, RunState
from migrator.drivers.sim import Link, Workload
from tests.drivers.simkit import GiB, MiB, Pair

LINK = Link(bandwidth_bytes_s=GiB)


@dataclass(frozen=True)
class Prediction:
    live_passes: int
    live_ms: float
    final_bytes: float


def predict(
    *, memory: int, working_set: int, dirty_rate: float, bandwidth: float, downtime_ms: float
) -> Prediction:
    """Iterate the pre-copy passes until what the last one left fits in the downtime."""
    pending = float(memory)
    elapsed_s = 0.0
    passes = 0
    while True:
        passes += 1
        seconds = pending / bandwidth
        elapsed_s += seconds
        dirtied = min(working_set, dirty_rate * seconds)
        if dirtied / bandwidth * 1000 <= downtime_ms:
            return Prediction(passes, elapsed_s * 1000, dirtied)
        pending = dirtied


@pytest.mark.parametrize(
    ("max_bandwidth", "downtime_ms", "working_set", "passes"),
    [
        (GiB, 300, GiB, 1),
        (GiB, 10, GiB, 2),
        (128 * MiB, 300, GiB, 2),
        (128 * MiB, 10, GiB, 4),
        (32 * MiB, 300, 64 * MiB, 6),
    ],
)
async def test_a_1gib_guest_dirtying_20mibs_converges_as_predicted(
    max_bandwidth: int, downtime_ms: int, working_set: int, passes: int
) -> None:
    pair = Pair(link=LINK)
    rate = 20 * MiB
    source, destination, uri = await pair.prepare(
        memory_bytes=GiB,
        workload=Workload(working_set_bytes=working_set, dirty_rate_bytes_s=rate),
        parameters={"max-bandwidth": max_bandwidth, "downtime-limit": downtime_ms},
    )
    expected = predict(
        memory=GiB,
        working_set=working_set,
        dirty_rate=rate,
        bandwidth=min(max_bandwidth, LINK.bandwidth_bytes_s),
        downtime_ms=downtime_ms,
    )
    assert expected.live_passes == passes  # the table's intent, checked against the formula

    progress = await pair.migrate(source, uri)

    downtime = expected.final_bytes / LINK.bandwidth_bytes_s * 1000
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.dirty_sync_count == expected.live_passes + 1
    assert progress.downtime == round(downtime)
    assert progress.total_time == round(expected.live_ms + downtime)
    assert progress.remaining == 0
    assert progress.total == GiB
    assert await destination.run_state() is RunState.PAUSED


@settings(max_examples=40)
@given(
    memory_mib=st.integers(min_value=16, max_value=4096),
    working_set_share=st.floats(min_value=0.0, max_value=1.0),
    dirty_share=st.floats(min_value=0.0, max_value=0.9),
    bandwidth_mib=st.integers(min_value=8, max_value=2048),
    downtime_ms=st.integers(min_value=1, max_value=2000),
)
async def test_passes_match_the_prediction_whenever_the_guest_dirties_slower_than_the_link(
    memory_mib: int,
    working_set_share: float,
    dirty_share: float,
    bandwidth_mib: int,
    downtime_ms: int,
) -> None:
    memory = memory_mib * MiB
    working_set = int(memory * working_set_share)
    bandwidth = bandwidth_mib * MiB
    rate = int(bandwidth * dirty_share)
    expected = predict(
        memory=memory,
        working_set=working_set,
        dirty_rate=rate,
        bandwidth=bandwidth,
        downtime_ms=downtime_ms,
    )
    pair = Pair(link=Link(bandwidth_bytes_s=bandwidth))
    source, _destination, uri = await pair.prepare(
        memory_bytes=memory,
        workload=Workload(working_set_bytes=working_set, dirty_rate_bytes_s=rate),
        parameters={"max-bandwidth": 0, "downtime-limit": downtime_ms},
    )
    progress = await pair.migrate(source, uri)
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.dirty_sync_count == expected.live_passes + 1


# -- a guest that dirties faster than the bandwidth ------------------------------------------

FAST = Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=256 * MiB)
BANDWIDTH = 128 * MiB  # QEMU's default max-bandwidth
BOUND_MS = 602_000.0


async def test_a_guest_dirtying_faster_than_the_bandwidth_never_converges() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare(memory_bytes=GiB, workload=FAST)
    await source.migrate(uri)
    await pair.world.sleep(BOUND_MS)

    progress = await source.query_migration()
    first_pass_ms = GiB / BANDWIDTH * 1000
    steady_pass_ms = FAST.working_set_bytes / BANDWIDTH * 1000
    passes_done = 1 + int((BOUND_MS - first_pass_ms) // steady_pass_ms)
    assert progress.status is MigrationStatus.ACTIVE
    assert progress.dirty_sync_count == passes_done + 1
    assert progress.remaining > 0
    assert progress.cpu_throttle_percentage == 0
    assert await source.run_state() is RunState.RUNNING
    await source.cancel_migration()
    assert (await source.query_migration()).status is MigrationStatus.CANCELLING
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.CANCELLED


def throttle_steps(*, initial: int, increment: int, maximum: int) -> set[int]:
    steps = {initial}
    level = initial
    while level < maximum:
        level = min(level + increment, maximum)
        steps.add(level)
    return steps


async def test_auto_converge_throttles_until_it_converges() -> None:
    pair = Pair()
    source, _destination, uri = await pair.prepare(
        memory_bytes=GiB, workload=FAST, source_capabilities=["auto-converge"]
    )
    await source.migrate(uri)
    seen: set[int] = set()
    while not (progress := await source.query_migration()).status.finished:
        seen.add(progress.cpu_throttle_percentage)
        assert pair.world.now_ms < BOUND_MS
        await pair.world.sleep(1000)
    assert progress.status is MigrationStatus.COMPLETED
    throttled = seen - {0}
    assert throttled
    assert throttled <= throttle_steps(initial=20, increment=10, maximum=99)
    assert progress.cpu_throttle_percentage == 0  # throttling ends with the migration


async def test_post_copy_completes_what_pre_copy_cannot() -> None:
    pair = Pair()
    source, destination, uri = await pair.prepare(
        memory_bytes=GiB, workload=FAST, capabilities=["postcopy-ram"]
    )
    await source.migrate(uri)
    await pair.world.sleep(30_000)
    assert (await source.query_migration()).status is MigrationStatus.ACTIVE
    await source.start_postcopy()
    await pair.world.sleep(0)
    assert (await source.query_migration()).status is MigrationStatus.POSTCOPY_ACTIVE
    await destination.resume()
    await pair.world.sleep(BOUND_MS)
    progress = await source.query_migration()
    assert progress.status is MigrationStatus.COMPLETED
    assert progress.postcopy_requests > 0
    assert await destination.run_state() is RunState.RUNNING
    assert await source.run_state() is RunState.POSTMIGRATE


async def test_a_zero_downtime_limit_never_converges_but_time_moves_on() -> None:
    pair = Pair()
    tiny = Workload(working_set_bytes=4096, dirty_rate_bytes_s=MiB)
    source, _destination, uri = await pair.prepare(workload=tiny, parameters={"downtime-limit": 0})
    await source.migrate(uri)
    await pair.world.sleep(2000.5)
    progress = await source.query_migration()
    # Pass 1 (64 MiB at 128 MiB/s) ends at 500 ms; each later pass lasts the 1 ms minimum.
    assert progress.status is MigrationStatus.ACTIVE
    assert progress.dirty_sync_count == 2 + 1500
