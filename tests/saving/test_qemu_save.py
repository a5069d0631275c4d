"""Save and restore of the running test guest on real QEMU, through :class:`SaveOps` over the
first host of a :class:`QemuCluster` (whose driver follows every QEMU's heartbeat).

Nothing here is timed: the guard only stops a broken test from hanging.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from migrator.drivers.base import MigrationStatus, RunState, StartMode
from migrator.drivers.qemu import QEMUInstance
from migrator.saveimage import ImageFormat, Magic
from migrator.saving import (
    BadImage,
    ManagedStartOutcome,
    RestoreFailed,
    SaveCancelled,
    SaveError,
    SaveOps,
    SavePhase,
    XmlRejected,
)
from migrator.saving.imagefile import read_image
from migrator.testguest.heartbeat_log import HeartbeatReport
from tests.drivers.contract import next_statuses
from tests.integration.qemu_cluster import GuestShape, QemuCluster, pid_exists
from tests.saving.simkit import header_of, set_magic

pytestmark = pytest.mark.qemu

GUARD_S = 60
MiB = 1024 * 1024
#: A guest whose 32 MiB working set is rewritten 64 MiB/s and checked all the time.
STEADY = GuestShape(memory_mib=128, working_set_mib=32, dirty_rate_mib_s=64)
#: A guest that only beats its heart.
IDLE = GuestShape(memory_mib=64)
#: Heartbeats a restored guest must send (one per millisecond of guest time).
AFTER = 300


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[QemuCluster]:
    directory = tmp_path / "cluster"
    directory.mkdir()
    async with QemuCluster(directory) as hosts:
        yield hosts


@pytest.fixture
def ops(cluster: QemuCluster, tmp_path: Path) -> SaveOps:
    return SaveOps(cluster.a, managed_save_dir=tmp_path / "managed")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs: far too small for the guest's memory."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def restored_source(cluster: QemuCluster) -> str:
    """The heartbeat source of the latest QEMU of ``vm`` on ``a``."""
    return cluster.serial_source(cluster.a, "vm")


async def resumed(cluster: QemuCluster, before: str, *, sweeps: int = 1) -> HeartbeatReport:
    """Wait until the latest QEMU of ``vm`` has beaten AFTER times and the guest has verified
    its working set ``sweeps`` times since; check that its heartbeats carry on from
    ``before``'s."""
    name = restored_source(cluster)
    assert name != before
    first = await cluster.monitor.wait_for(lambda r: r.source(name).heartbeats >= 1)
    report = await cluster.monitor.wait_for(
        lambda r: (
            r.source(name).heartbeats >= AFTER
            and r.verified_sweeps >= first.verified_sweeps + sweeps
        )
    )
    last = report.source(before).last_seq
    assert last is not None
    assert report.source(name).first_seq == last + 1
    assert report.anomaly_count == 0, report.anomalies
    assert report.bad_page_reports == 0, report.bad_pages
    return report


def instance(cluster: QemuCluster) -> QEMUInstance:
    return cluster.instance(cluster.a, "vm")


async def save_idle_guest(
    cluster: QemuCluster, ops: SaveOps, image: Path, *, running_after: bool | None = None
) -> None:
    """Start an IDLE ``vm``, let it beat a while, and save it into ``image``."""
    await cluster.start("vm", IDLE)
    await cluster.monitor.wait_for(lambda r: r.heartbeats >= 100)
    await ops.save("vm", image, running_after=running_after)


async def test_a_saved_guest_restores_with_its_memory_and_heartbeat(
    cluster: QemuCluster, ops: SaveOps, tmp_path: Path
) -> None:
    image = tmp_path / "vm.img"
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", STEADY, warm=True)
        await cluster.monitor.wait_for(lambda r: r.heartbeats >= AFTER and r.verified_sweeps >= 1)
        statistics = await ops.save("vm", image)
        assert not source.alive
        assert not pid_exists(source.pid)
        assert cluster.a.guests == {}
        restored = await ops.restore(image)
        assert await restored.run_state() is RunState.RUNNING
        await resumed(cluster, "host-a")
        memory = await cluster.memory_check(instance(cluster), "vm")
    assert memory.intact, memory.bad_pages
    assert statistics.success is True
    assert statistics.memory_total is not None
    assert statistics.memory_total >= STEADY.memory_mib * MiB
    assert statistics.data_processed is not None
    assert statistics.data_processed >= STEADY.working_set_mib * MiB
    raw = image.read_bytes()
    assert raw[:16] == Magic.COMPLETE.value
    assert raw[read_image(image).stream_offset :][:4] == b"QEVM"
    assert stat.S_IMODE(image.stat().st_mode) == 0o600


async def test_a_guest_restores_paused_or_running_as_asked(
    cluster: QemuCluster, ops: SaveOps, tmp_path: Path
) -> None:
    image = tmp_path / "vm.img"
    async with asyncio.timeout(GUARD_S):
        await save_idle_guest(cluster, ops, image, running_after=False)
        assert not header_of(image).was_running
        paused = await ops.restore(image)
        assert await paused.run_state() is RunState.PAUSED
        await paused.kill()
        cluster.a.remove_guest("vm")
        running = await ops.restore(image, start_paused=False)
        assert await running.run_state() is RunState.RUNNING
        await resumed(cluster, "host-a", sweeps=0)


async def test_managed_save_then_start_restores_the_guest(
    cluster: QemuCluster, ops: SaveOps
) -> None:
    async with asyncio.timeout(GUARD_S):
        await cluster.start("vm", STEADY, warm=True)
        await ops.managed_save("vm")
        assert ops.has_managed_save("vm")
        assert cluster.a.guests == {}
        started = await ops.start_with_managed_save("vm")
        assert started.outcome is ManagedStartOutcome.RESTORED
        assert not ops.has_managed_save("vm")
        await resumed(cluster, "host-a")
        memory = await cluster.memory_check(instance(cluster), "vm")
    assert memory.intact, memory.bad_pages


async def boot_fresh(cluster: QemuCluster) -> None:
    """Start ``vm`` on ``a`` from its definition, as ``start`` does without an image."""
    domain = cluster.a.definitions["vm"]
    fresh = await cluster.driver(cluster.a).start(domain, mode=StartMode.RUNNING)
    cluster.a.add_guest(domain, fresh)


async def test_partial_and_cut_images_fail_a_restore_and_are_discarded_by_start(
    cluster: QemuCluster, ops: SaveOps
) -> None:
    driver = cluster.driver(cluster.a)
    async with asyncio.timeout(GUARD_S):
        await cluster.start("vm", IDLE)
        await ops.managed_save("vm")
        path = ops.managed_save_path("vm")

        set_magic(path, Magic.PARTIAL.value)
        starts = len(driver.started)
        with pytest.raises(BadImage, match="save image is incomplete"):
            await ops.restore(path)
        assert len(driver.started) == starts
        started = await ops.start_with_managed_save("vm")
        assert started.outcome is ManagedStartOutcome.DISCARDED
        assert not path.exists()
        assert len(driver.started) == starts
        await boot_fresh(cluster)

        await ops.managed_save("vm")
        stream_at = read_image(path).stream_offset
        raw = path.read_bytes()
        path.write_bytes(raw[: stream_at + (len(raw) - stream_at) // 2])
        with pytest.raises(RestoreFailed, match="could not load the saved state") as failed:
            await ops.restore(path)
        attempt = driver.started[-1]
        assert not attempt.alive
        assert not pid_exists(attempt.pid)
        assert cluster.a.guests == {}
        started = await ops.start_with_managed_save("vm")
        assert started.outcome is ManagedStartOutcome.DISCARDED
        assert started.problem is not None
        assert not path.exists()
        assert not driver.started[-1].alive
        await boot_fresh(cluster)
        assert await instance(cluster).run_state() is RunState.RUNNING
    assert failed.value.detail


async def test_an_edited_image_restores_and_an_abi_change_is_refused(
    cluster: QemuCluster, ops: SaveOps, tmp_path: Path
) -> None:
    image = tmp_path / "vm.img"
    async with asyncio.timeout(GUARD_S):
        await save_idle_guest(cluster, ops, image)
        xml = await ops.image_xml(image, secure=True)
        before = image.read_bytes()
        with pytest.raises(XmlRejected, match="memory") as refused:
            await ops.image_define(image, xml.replace("65536", "131072"))
        assert refused.value.field == "memory"
        assert image.read_bytes() == before
        titled = xml.replace("<name>vm</name>", "<name>vm</name><title>edited</title>")
        assert await ops.image_define(image, titled)
        after = image.read_bytes()
        offset = read_image(image).stream_offset
        assert after[:16] == before[:16]
        assert after[offset:] == before[offset:]
        restored = await ops.restore(image)
        assert await restored.run_state() is RunState.RUNNING
        assert cluster.a.guest("vm").domain.title == "edited"
        await resumed(cluster, "host-a", sweeps=0)


@pytest.mark.parametrize("bypass_cache", [False, True], ids=["qemu-writes", "direct-writer"])
async def test_a_full_disk_fails_the_save_and_the_guest_runs_on(
    cluster: QemuCluster, ops: SaveOps, small_tmpfs: Path, bypass_cache: bool
) -> None:
    """QEMU's own write fails (SaveFailed), or the direct writer's (HelperFailed)."""
    image = small_tmpfs / "vm.img"
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", STEADY, warm=True)
        bandwidth = (await source.query_parameters())["max-bandwidth"]
        with pytest.raises(SaveError, match="No space left on device") as failed:
            await ops.save("vm", image, bypass_cache=bypass_cache)
        assert not image.exists()
        assert await source.run_state() is RunState.RUNNING
        assert cluster.a.guest("vm").instance is source
        assert (await source.query_parameters())["max-bandwidth"] == bandwidth
        seen = cluster.monitor.report().source("host-a").heartbeats
        report = await cluster.monitor.wait_for(
            lambda r: r.source("host-a").heartbeats >= seen + AFTER
        )
    assert failed.value.path == image
    assert report.anomaly_count == 0, report.anomalies
    assert report.bad_page_reports == 0, report.bad_pages


class FifoReader:
    """Reads a FIFO in a thread: ``hold_after`` bytes, then nothing until :meth:`drain`,
    then everything up to the end."""

    def __init__(self, path: Path, *, hold_after: int) -> None:
        self._path = path
        self._hold_after = hold_after
        self._drain = threading.Event()
        self.read = 0

    def drain(self) -> None:
        self._drain.set()

    def run(self) -> int:
        with self._path.open("rb", buffering=0) as fifo:
            while self.read < self._hold_after:
                chunk = fifo.read(self._hold_after - self.read)
                if not chunk:
                    return self.read
                self.read += len(chunk)
            self._drain.wait()
            while chunk := fifo.read(1 << 20):
                self.read += len(chunk)
        return self.read


async def test_an_aborted_save_leaves_the_guest_running(
    cluster: QemuCluster, ops: SaveOps, tmp_path: Path
) -> None:
    """The image is a FIFO that stops taking data a little way into the stream, so the save
    is surely under way when it is aborted. The save did not create the FIFO, so it stays."""
    fifo = tmp_path / "vm.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo, hold_after=256 * 1024)
    async with asyncio.timeout(GUARD_S):
        source = await cluster.start("vm", STEADY, warm=True)
        reading = asyncio.create_task(asyncio.to_thread(reader.run))
        try:
            async with source.listen() as events:
                save = asyncio.create_task(ops.save("vm", fifo))
                await next_statuses(events, {MigrationStatus.ACTIVE})
            job = ops.job("vm")
            assert job.phase is SavePhase.WRITING
            statistics = await job.statistics()
            assert statistics.memory_total is not None
            assert statistics.memory_total >= STEADY.memory_mib * MiB
            await job.abort()
        finally:
            reader.drain()
        with pytest.raises(SaveCancelled, match="was cancelled"):
            await save
        await reading
        assert await source.run_state() is RunState.RUNNING
        seen = cluster.monitor.report().source("host-a").heartbeats
        report = await cluster.monitor.wait_for(
            lambda r: r.source("host-a").heartbeats >= seen + AFTER
        )
    assert reader.read < STEADY.working_set_mib * MiB
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert ops.completed["vm"].success is False
    assert report.anomaly_count == 0, report.anomalies


async def test_a_compressed_save_bypassing_the_cache_restores(
    cluster: QemuCluster, ops: SaveOps, tmp_path: Path
) -> None:
    image = tmp_path / "vm.img"
    async with asyncio.timeout(GUARD_S):
        await cluster.start("vm", STEADY, warm=True)
        await ops.save("vm", image, compression=ImageFormat.ZSTD, bypass_cache=True)
        assert header_of(image).format is ImageFormat.ZSTD
        assert image.stat().st_size < STEADY.working_set_mib * MiB
        await ops.restore(image)
        await resumed(cluster, "host-a")
        memory = await cluster.memory_check(instance(cluster), "vm")
    assert memory.intact, memory.bad_pages
