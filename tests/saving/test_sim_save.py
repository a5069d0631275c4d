"""Save and restore on the simulator: the image written, run states, refusals, failures,
abort, compression and bypassing the cache.

The simulator's stream is short, but every byte of it goes through the same descriptors,
pipes and helper programs as QEMU's; the tests on real QEMU are in ``test_qemu_save.py``.
"""

from __future__ import annotations

import asyncio
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cookies import JobOperation, from_xml
from migrator.domain import FormatFlag, format_domain, parse_domain
from migrator.drivers.base import MigrationStatus, RunState
from migrator.drivers.sim import Fault, FaultKind, FaultPoint
from migrator.runtime.host import HostError
from migrator.runtime.records import JobRecord, JobSide
from migrator.saveimage import PADDING, ImageFormat, Magic, SaveHeader, parse_data
from migrator.saving import (
    BypassCacheUnsupported,
    DomainBusy,
    SaveCancelled,
    SaveError,
    SaveFailed,
    SavePhase,
    UnsupportedFormat,
    XmlRejected,
)
from tests.drivers.contract import next_statuses
from tests.drivers.simkit import MiB, domain
from tests.saving.simkit import HOST, SimSaving, header_of

IMAGE_FLAGS = FormatFlag.INACTIVE | FormatFlag.SECURE | FormatFlag.MIGRATABLE

#: The first bytes of each compressor's output.
COMPRESSED_MAGIC = {
    ImageFormat.GZIP: b"\x1f\x8b",
    ImageFormat.BZIP2: b"BZh",
    ImageFormat.XZ: b"\xfd7zXZ\x00",
    ImageFormat.ZSTD: b"\x28\xb5\x2f\xfd",
}


@pytest.fixture
def sim(tmp_path: Path) -> SimSaving:
    return SimSaving(tmp_path)


def fault(kind: FaultKind, status: MigrationStatus) -> Fault:
    return Fault(kind=kind, host=HOST, point=FaultPoint.on_status(status), instance="vm")


# -- the image -------------------------------------------------------------------------------


async def test_a_save_writes_a_complete_image_and_stops_the_guest(sim: SimSaving) -> None:
    instance = await sim.start()
    live = sim.host.guest("vm").domain
    statistics = await sim.ops.save("vm", sim.image())

    raw = sim.image().read_bytes()
    header = SaveHeader.unpack(raw)
    xml, cookie = parse_data(header, raw[92:])
    assert raw[:16] == Magic.COMPLETE.value
    assert header.version == 2
    assert header.was_running
    assert header.format is ImageFormat.RAW
    assert cookie is not None
    saved_by = from_xml(cookie)
    assert (saved_by.name, saved_by.uuid) == ("vm", str(live.uuid))
    assert (saved_by.hostname, saved_by.hostuuid) == (sim.host.name, sim.host.uuid)
    assert xml == format_domain(live, flags=IMAGE_FLAGS)
    assert header.cookie_offset == len(xml.encode()) + 1
    assert header.data_len == header.cookie_offset + len(cookie.encode()) + 1 + PADDING
    assert raw[92 + header.data_len :][:4] == b"QEVM"
    assert stat.S_IMODE(sim.image().stat().st_mode) == 0o600

    assert not instance.alive
    assert sim.host.guests == {}
    assert "vm" in sim.host.definitions
    assert statistics.operation is JobOperation.SAVE
    assert statistics.success is True
    assert statistics.memory_total == 64 * MiB
    assert sim.ops.completed["vm"] == statistics
    with pytest.raises(SaveError, match="not being saved"):
        sim.ops.job("vm")


async def test_the_bandwidth_limit_is_lifted_for_the_save_only(sim: SimSaving) -> None:
    instance = await sim.start()
    await instance.set_parameters({"max-bandwidth": 8 * MiB})
    sim.world.inject(fault(FaultKind.HANG, MigrationStatus.ACTIVE))
    async with instance.listen() as events:
        save = asyncio.create_task(sim.ops.save("vm", sim.image()))
        await next_statuses(events, {MigrationStatus.ACTIVE})
        during = (await instance.query_parameters())["max-bandwidth"]
        await sim.ops.job("vm").abort()
        with pytest.raises(SaveCancelled):
            await save
    assert isinstance(during, int)
    assert during >= 1 << 62
    assert (await instance.query_parameters())["max-bandwidth"] == 8 * MiB


@pytest.mark.parametrize(
    ("paused", "running_after", "start_paused", "runs"),
    [
        (False, None, None, True),
        (True, None, None, False),
        (False, False, None, False),
        (True, True, None, True),
        (False, None, True, False),
        (True, None, False, True),
    ],
)
async def test_a_restored_guest_runs_or_stays_paused_as_asked(
    sim: SimSaving,
    paused: bool,
    running_after: bool | None,
    start_paused: bool | None,
    runs: bool,
) -> None:
    await sim.start(paused=paused)
    await sim.ops.save("vm", sim.image(), running_after=running_after)
    expected = not paused if running_after is None else running_after
    assert header_of(sim.image()).was_running is expected
    instance = await sim.ops.restore(sim.image(), start_paused=start_paused)
    assert await instance.run_state() is (RunState.RUNNING if runs else RunState.PAUSED)
    assert sim.host.guest("vm").instance is instance
    assert sim.image().exists()


async def test_a_save_with_new_xml_stores_it_if_the_guest_is_the_same(sim: SimSaving) -> None:
    await sim.start()
    live = sim.host.guest("vm").domain
    edited = format_domain(live).replace("<name>vm</name>", "<name>vm</name><title>saved</title>")
    await sim.ops.save("vm", sim.image(), xml=edited)
    stored = parse_domain(parse_data(header_of(sim.image()), sim.image().read_bytes()[92:])[0])
    assert stored.title == "saved"


async def test_a_save_with_xml_of_another_guest_is_refused_before_anything_happens(
    sim: SimSaving,
) -> None:
    instance = await sim.start()
    bigger = format_domain(domain("vm", memory_bytes=128 * MiB))
    with pytest.raises(XmlRejected, match="memory") as refused:
        await sim.ops.save("vm", sim.image(), xml=bigger)
    assert refused.value.field is not None
    assert not sim.image().exists()
    assert await instance.run_state() is RunState.RUNNING


# -- refusals --------------------------------------------------------------------------------


async def test_saves_that_cannot_start_are_refused(sim: SimSaving) -> None:
    with pytest.raises(HostError, match="not running"):
        await sim.ops.save("vm", sim.image())
    await sim.start()
    with pytest.raises(SaveError, match="not absolute") as relative:
        await sim.ops.save("vm", Path("vm.img"))
    assert relative.value.code == "bad-path"
    with pytest.raises(UnsupportedFormat, match="mapped-ram"):
        await sim.ops.save("vm", sim.image(), compression=ImageFormat.SPARSE)
    sim.host.status.save(
        "vm",
        JobRecord(job_id="j", side=JobSide.SOURCE, domain="vm", phase="perform3", flags=0),
    )
    with pytest.raises(DomainBusy, match="migration job"):
        await sim.ops.save("vm", sim.image())
    assert not sim.image().exists()


async def test_a_second_save_of_a_guest_being_saved_is_refused(sim: SimSaving) -> None:
    instance = await sim.start()
    sim.world.inject(fault(FaultKind.HANG, MigrationStatus.ACTIVE))
    async with instance.listen() as events:
        save = asyncio.create_task(sim.ops.save("vm", sim.image()))
        await next_statuses(events, {MigrationStatus.ACTIVE})
        with pytest.raises(DomainBusy, match="already being saved"):
            await sim.ops.save("vm", sim.directory / "other.img")
        await sim.ops.job("vm").abort()
        with pytest.raises(SaveCancelled):
            await save


# -- progress, abort, failures ---------------------------------------------------------------


async def test_an_aborted_save_leaves_the_guest_running_and_no_file(sim: SimSaving) -> None:
    instance = await sim.start()
    sim.world.inject(fault(FaultKind.HANG, MigrationStatus.ACTIVE))
    async with instance.listen() as events:
        save = asyncio.create_task(sim.ops.save("vm", sim.image()))
        await next_statuses(events, {MigrationStatus.ACTIVE})
        job = sim.ops.job("vm")
        statistics = await job.statistics()
        assert job.phase is SavePhase.WRITING
        assert statistics.operation is JobOperation.SAVE
        assert statistics.memory_total == 64 * MiB
        assert sim.image().read_bytes()[:16] == Magic.PARTIAL.value
        await job.abort()
        with pytest.raises(SaveCancelled, match="was cancelled") as cancelled:
            await save
    assert cancelled.value.domain == "vm"
    assert not sim.image().exists()
    assert await instance.run_state() is RunState.RUNNING
    assert sim.host.guest("vm").instance is instance
    assert sim.ops.completed["vm"].success is False
    assert sim.ops.completed["vm"].errmsg == str(cancelled.value)


async def test_a_failed_save_removes_its_file_and_resumes_the_guest(sim: SimSaving) -> None:
    instance = await sim.start()
    sim.world.inject(fault(FaultKind.COMMAND_FAILURE, MigrationStatus.ACTIVE))
    with pytest.raises(SaveFailed, match="injected failure at active") as failed:
        await sim.ops.save("vm", sim.image())
    assert failed.value.detail == "injected failure at active"
    assert not sim.image().exists()
    assert await instance.run_state() is RunState.RUNNING


async def test_a_failed_save_leaves_a_file_it_did_not_create(sim: SimSaving) -> None:
    """As libvirt: only a file the save created is removed."""
    instance = await sim.start(paused=True)
    sim.image().write_bytes(b"the user's file")
    sim.world.inject(fault(FaultKind.COMMAND_FAILURE, MigrationStatus.ACTIVE))
    with pytest.raises(SaveFailed):
        await sim.ops.save("vm", sim.image())
    assert sim.image().exists()
    assert await instance.run_state() is RunState.PAUSED


async def test_a_guest_that_crashes_while_saved_is_gone(sim: SimSaving) -> None:
    sim.world.inject(fault(FaultKind.CRASH, MigrationStatus.ACTIVE))
    await sim.start()
    with pytest.raises(SaveFailed, match="crashed"):
        await sim.ops.save("vm", sim.image())
    assert not sim.image().exists()
    assert sim.host.guests == {}


# -- the data path ---------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", list(COMPRESSED_MAGIC), ids=lambda f: f.name.lower())
async def test_compressed_images_restore(sim: SimSaving, image_format: ImageFormat) -> None:
    await sim.start()
    await sim.ops.save("vm", sim.image(), compression=image_format)
    header = header_of(sim.image())
    assert header.format is image_format
    stream = sim.image().read_bytes()[92 + header.data_len :]
    assert stream.startswith(COMPRESSED_MAGIC[image_format])
    instance = await sim.ops.restore(sim.image())
    assert await instance.run_state() is RunState.RUNNING


async def test_the_default_format_applies_to_every_save(tmp_path: Path) -> None:
    sim = SimSaving(tmp_path)
    sim.ops.image_format = ImageFormat.ZSTD
    await sim.start()
    await sim.ops.save("vm", sim.image())
    assert header_of(sim.image()).format is ImageFormat.ZSTD


@pytest.mark.parametrize("image_format", [ImageFormat.RAW, ImageFormat.GZIP])
async def test_bypassing_the_cache_writes_the_same_image(
    sim: SimSaving, image_format: ImageFormat
) -> None:
    await sim.start()
    await sim.ops.save("vm", sim.image(), bypass_cache=True, compression=image_format)
    assert sim.image().read_bytes()[:16] == Magic.COMPLETE.value
    instance = await sim.ops.restore(sim.image())
    assert await instance.run_state() is RunState.RUNNING


@pytest.fixture
def ramfs(tmp_path: Path) -> Iterator[Path]:
    """A ramfs mount: a filesystem without O_DIRECT."""
    mount = tmp_path / "ramfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


async def test_bypassing_the_cache_where_it_cannot_be_is_a_clear_error(
    sim: SimSaving, ramfs: Path
) -> None:
    instance = await sim.start()
    image = ramfs / "vm.img"
    with pytest.raises(BypassCacheUnsupported, match="does not support O_DIRECT"):
        await sim.ops.save("vm", image, bypass_cache=True)
    assert not image.exists()
    assert await instance.run_state() is RunState.RUNNING
    await sim.ops.save("vm", image)
    assert image.read_bytes()[:16] == Magic.COMPLETE.value
