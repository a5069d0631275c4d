"""Live migration of the running test guest between two real QEMU processes, driven by the
phase machines and the job runner of two in-process hosts.

After every test the guest runs on exactly one host, and the other has neither a QEMU of it
nor a job record. Nothing here is timed: the guard only stops a broken test from hanging.
"""

from __future__ import annotations

import asyncio
import enum
import os
import signal

import pytest

from migrator.drivers.qemu import QEMUInstance
from migrator.drivers.qemu.rundir import RunPaths
from migrator.phases import SourcePhase
from migrator.runtime.host import HostError
from migrator.runtime.source import MigrationFailed
from migrator.status import MigrationStatus, RunState
from migrator.testguest.heartbeat_log import HeartbeatReport
from migrator.testguest.protocol import PAGE_SIZE
from params import MigrationFlag
from tests.integration.qemu_cluster import (
    LIVE_P2P,
    GuestShape,
    QemuCluster,
    pid_exists,
    sample_progress,
)

pytestmark = pytest.mark.qemu

GUARD_S = 60
MiB = 1024 * 1024
SOURCE = "host-a"

#: A guest that a migration at QEMU's default bandwidth moves in well under a second.
STEADY = GuestShape(memory_mib=128, working_set_mib=32, dirty_rate_mib_s=20)
#: A guest that rewrites its working set eight times a second.
BUSY = GuestShape(memory_mib=128, working_set_mib=8, dirty_rate_mib_s=64)
#: Bandwidth (MiB/s) at which every pass over BUSY finds its whole working set dirty again:
#: far more than QEMU can send within its 300 ms downtime limit.
SLOW = {"bandwidth": 8}
#: Passes over memory after which a test takes pre-copy alone as not converging.
STUCK_PASSES = 4
#: What QEMU reports while pre-copy runs (before the first sample, nothing).
PRECOPY = frozenset({MigrationStatus.NONE, MigrationStatus.SETUP, MigrationStatus.ACTIVE})


class Ending(enum.Enum):
    """How a migration that leaves the guest on the source ends."""

    CANCELLED = "cancelled"
    DESTINATION_KILLED = "destination killed"


# -- helpers -------------------------------------------------------------------------------


async def not_converging(cluster: QemuCluster, source: QEMUInstance) -> None:
    """Wait until QEMU has made STUCK_PASSES passes over memory, and check that it has been
    migrating all along without completing."""
    samples = await sample_progress(source, lambda p: p.dirty_sync_count >= STUCK_PASSES)
    statuses = {sample.status for sample in samples}
    assert statuses <= PRECOPY, statuses
    assert samples[-1].status is MigrationStatus.ACTIVE
    assert samples[-1].dirty_sync_count >= STUCK_PASSES
    assert cluster.source.job("vm").state is SourcePhase.PERFORM3


async def arrived(cluster: QemuCluster, source: QEMUInstance) -> tuple[HeartbeatReport, int]:
    """Check that the guest runs on ``b`` only; wait until it has beaten 300 times there and
    verified its whole working set twice since its first heartbeat there. The final report,
    and the number the first heartbeat on ``b`` carried."""
    destination = cluster.serial_source(cluster.b, "vm")
    first = await cluster.monitor.wait_for(lambda r: r.source(destination).heartbeats >= 1)
    report = await cluster.monitor.wait_for(
        lambda r: (
            r.source(destination).heartbeats >= 300
            and r.verified_sweeps >= first.verified_sweeps + 2
        )
    )
    instance = cluster.instance(cluster.b, "vm")
    assert await instance.run_state() is RunState.RUNNING
    assert not source.alive
    assert not pid_exists(source.pid)
    assert "vm" not in cluster.a.guests
    assert list(cluster.b.guests) == ["vm"]
    first_seq = report.source(destination).first_seq
    assert first_seq is not None
    return report, first_seq


def assert_heartbeat_continued(report: HeartbeatReport, *, first_seq: int) -> None:
    """One unbroken heartbeat sequence from ``a`` into ``b``, and no page found damaged."""
    last_on_source = report.source(SOURCE).last_seq
    assert last_on_source is not None
    assert first_seq == last_on_source + 1
    assert report.anomaly_count == 0, report.anomalies
    assert report.bad_page_reports == 0, report.bad_pages


async def stays_on_source(
    cluster: QemuCluster, source: QEMUInstance, destination: QEMUInstance
) -> None:
    """Check that the guest runs on, on ``a`` only, and that ``b`` is clean."""
    seen = cluster.monitor.report().source(SOURCE).heartbeats
    report = await cluster.monitor.wait_for(lambda r: r.source(SOURCE).heartbeats >= seen + 300)
    assert await source.run_state() is RunState.RUNNING
    assert list(cluster.a.guests) == ["vm"]
    assert cluster.b.guests == {}
    assert not destination.alive
    assert not pid_exists(destination.pid)
    assert RunPaths.of(cluster.driver(cluster.b).run_dir, "vm").running_pid() is None
    assert cluster.a.status.names() == []
    assert cluster.b.status.names() == []
    for side in (cluster.source, cluster.destination):
        with pytest.raises(HostError, match="has no"):
            side.job("vm")
    assert report.anomaly_count == 0, report.anomalies
    assert report.bad_page_reports == 0, report.bad_pages


def destination_qemu(cluster: QemuCluster) -> QEMUInstance:
    """The incoming QEMU on ``b`` (once the source migrates, Prepare has started it)."""
    [instance] = cluster.driver(cluster.b).started
    return instance


async def end_on_source(
    cluster: QemuCluster, migration: asyncio.Task[None], ending: Ending
) -> MigrationFailed:
    """End a migration that is under way the given way; the error it failed with."""
    if ending is Ending.CANCELLED:
        await cluster.source.cancel("vm")
    else:
        os.kill(destination_qemu(cluster).pid, signal.SIGKILL)
    with pytest.raises(MigrationFailed) as failed:
        await migration
    return failed.value


# -- tests -----------------------------------------------------------------------------------


async def test_live_migration_moves_the_running_guest(cluster: QemuCluster) -> None:
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", STEADY)
        await cluster.monitor.wait_for(lambda r: r.heartbeats >= 300 and r.verified_sweeps >= 1)
        await cluster.migrate("vm")
        report, first_seq = await arrived(cluster, source)
        memory = await cluster.memory_check(cluster.instance(cluster.b, "vm"), "vm")
    assert_heartbeat_continued(report, first_seq=first_seq)
    assert cluster.a.status.names() == []
    assert cluster.b.status.names() == []
    assert cluster.source.completed["vm"].phase == SourcePhase.CONFIRM3.value
    assert memory.intact, memory.bad_pages
    assert memory.pages_checked == STEADY.working_set_mib * MiB // PAGE_SIZE
    assert report.last_seq is not None
    assert memory.status.heartbeats > report.last_seq


async def test_auto_converge_lands_a_guest_that_outruns_the_bandwidth(
    cluster: QemuCluster,
) -> None:
    typed = {**SLOW, "auto_converge.initial": 95, "auto_converge.increment": 4}
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", BUSY, warm=True)
        migration = cluster.migrate_in_background(
            "vm", flags=LIVE_P2P | MigrationFlag.AUTO_CONVERGE, typed=typed
        )
        samples = await sample_progress(source, lambda p: p.status is MigrationStatus.COMPLETED)
        await migration
        report, first_seq = await arrived(cluster, source)
    throttled = [i for i, sample in enumerate(samples) if sample.cpu_throttle_percentage]
    assert throttled, "QEMU never throttled the guest"
    before_throttling = samples[: throttled[0]]
    assert before_throttling
    assert {sample.status for sample in before_throttling} <= PRECOPY
    # QEMU throttles only once passes over memory keep finding too much of it dirty.
    assert before_throttling[-1].dirty_sync_count >= 3
    assert max(sample.cpu_throttle_percentage for sample in samples) >= 95
    assert_heartbeat_continued(report, first_seq=first_seq)


async def test_postcopy_lands_a_guest_that_outruns_the_bandwidth(cluster: QemuCluster) -> None:
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", BUSY, warm=True)
        migration = cluster.migrate_in_background(
            "vm", flags=LIVE_P2P | MigrationFlag.POSTCOPY, typed=SLOW
        )
        await not_converging(cluster, source)
        await cluster.source.switch_to_postcopy("vm")
        await migration
        report, first_seq = await arrived(cluster, source)
        memory = await cluster.memory_check(cluster.instance(cluster.b, "vm"), "vm")
    assert cluster.source.completed["vm"].postcopy_started
    assert_heartbeat_continued(report, first_seq=first_seq)
    assert memory.intact, memory.bad_pages


async def test_cancel_leaves_the_source_running_and_the_destination_clean(
    cluster: QemuCluster,
) -> None:
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", BUSY, warm=True)
        migration = cluster.migrate_in_background("vm", typed=SLOW)
        await not_converging(cluster, source)
        destination = destination_qemu(cluster)
        failed = await end_on_source(cluster, migration, Ending.CANCELLED)
        await stays_on_source(cluster, source, destination)
    assert str(failed) == "migration was cancelled"
    assert cluster.source.completed["vm"].phase == SourcePhase.CONFIRM3_CANCELLED.value


async def test_killing_the_destination_qemu_leaves_the_source_running(
    cluster: QemuCluster,
) -> None:
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", BUSY, warm=True)
        migration = cluster.migrate_in_background("vm", typed=SLOW)
        await sample_progress(source, lambda p: p.dirty_sync_count >= 2)
        destination = destination_qemu(cluster)
        failed = await end_on_source(cluster, migration, Ending.DESTINATION_KILLED)
        await stays_on_source(cluster, source, destination)
    # QEMU's own words follow: how its socket broke.
    assert str(failed).startswith(
        "migration did not complete (phase perform3_failed, QEMU status failed): "
    )
    assert failed.domain == "vm"
    assert cluster.source.completed["vm"].phase == SourcePhase.CONFIRM3_CANCELLED.value


@pytest.mark.parametrize("ending", list(Ending), ids=lambda ending: ending.value)
async def test_the_source_parameters_after_a_migration_equal_those_before(
    cluster: QemuCluster, ending: Ending
) -> None:
    flags = LIVE_P2P | MigrationFlag.AUTO_CONVERGE | MigrationFlag.POSTCOPY
    typed = {
        **SLOW,
        "bandwidth.postcopy": 16,
        "auto_converge.initial": 30,
        "auto_converge.increment": 5,
    }
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", BUSY)
        parameters = await source.query_parameters()
        capabilities = await source.execute("query-migrate-capabilities")
        migration = cluster.migrate_in_background("vm", flags=flags, typed=typed)
        await sample_progress(source, lambda p: p.status is MigrationStatus.ACTIVE)
        parameters_during = await source.query_parameters()
        enabled_during = await source.execute("query-migrate-capabilities")
        destination = destination_qemu(cluster)
        await end_on_source(cluster, migration, ending)
        await stays_on_source(cluster, source, destination)
        parameters_after = await source.query_parameters()
        capabilities_after = await source.execute("query-migrate-capabilities")
    assert parameters_during["max-bandwidth"] == 8 * MiB != parameters["max-bandwidth"]
    assert parameters_during["max-postcopy-bandwidth"] == 16 * MiB
    assert parameters_during["cpu-throttle-initial"] == 30
    assert parameters_during["cpu-throttle-increment"] == 5
    assert isinstance(enabled_during, list)
    assert {"capability": "postcopy-ram", "state": True} in enabled_during
    assert {"capability": "auto-converge", "state": True} in enabled_during
    assert parameters_after == parameters
    assert capabilities_after == capabilities
