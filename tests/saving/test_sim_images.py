"""Images that cannot be restored, managed save, and editing the XML inside an image, on
the simulator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from migrator.domain import (
    AbiMismatch,
    FormatFlag,
    Graphics,
    GraphicsType,
    compare_abi,
    format_domain,
    parse_domain,
)
from migrator.drivers.base import RunState, StartMode
from migrator.saveimage import HEADER_SIZE, ImageFormat, Magic, build_image_prefix
from migrator.saving import (
    BadImage,
    DomainStateError,
    HelperFailed,
    ImageIOError,
    ManagedStartOutcome,
    NoManagedSave,
    RestoreFailed,
    XmlRejected,
)
from migrator.saving.imagefile import read_image
from tests.domain.test_abi import LIVE_PASSTHROUGH, USER_PASSTHROUGH
from tests.drivers.simkit import MiB, domain
from tests.saving.simkit import SimSaving, header_of, set_magic


@pytest.fixture
def sim(tmp_path: Path) -> SimSaving:
    return SimSaving(tmp_path)


async def saved(sim: SimSaving, path: Path | None = None) -> Path:
    """Start ``vm``, save it into ``path`` (the default image) and return the path."""
    await sim.start()
    path = path or sim.image()
    await sim.ops.save("vm", path)
    return path


def stream_of(path: Path) -> bytes:
    image = read_image(path)
    return path.read_bytes()[image.stream_offset :]


def cut_stream(path: Path) -> None:
    """Keep the header and the data section, and half of the stream."""
    stream_at = read_image(path).stream_offset
    raw = path.read_bytes()
    path.write_bytes(raw[: stream_at + (len(raw) - stream_at) // 2])


def image_with(path: Path, *, xml: str, stream: bytes, image_format: ImageFormat) -> None:
    prefix = build_image_prefix(
        xml=xml, cookie=None, was_running=True, format=image_format, magic=Magic.COMPLETE
    )
    path.write_bytes(prefix + stream)


# -- images a restore refuses ----------------------------------------------------------------


def _version_3(path: Path) -> None:
    with path.open("r+b") as file:
        file.seek(16)
        file.write((3).to_bytes(4, "little"))


def _zero_data_length(path: Path) -> None:
    with path.open("r+b") as file:
        file.seek(20)
        file.write(bytes(4))


def _partial(path: Path) -> None:
    set_magic(path, Magic.PARTIAL.value)


def _foreign(path: Path) -> None:
    set_magic(path, b"QFI\xfb" + bytes(12))


def _cut_header(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:50])


def _cut_data(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: HEADER_SIZE + 100])


@pytest.mark.parametrize(
    ("damage", "code", "message"),
    [
        (_partial, "incomplete-image", "save image is incomplete"),
        (_foreign, "bad-magic", "not a save image: image magic is incorrect"),
        # The words are read in the other byte order too, as libvirt does, and then reported.
        (_version_3, "unsupported-version", r"image version is not supported \(50331648 > 2\)"),
        (_zero_data_length, "invalid-data-length", "invalid header data length: 0"),
        (_cut_header, "truncated-header", "failed to read qemu header: 50 of 92 bytes"),
        (_cut_data, "truncated-data", "failed to read domain XML"),
    ],
    ids=lambda value: getattr(value, "__name__", None) if callable(value) else None,
)
async def test_a_restore_of_an_image_it_cannot_use_says_why_and_starts_nothing(
    sim: SimSaving, damage: object, code: str, message: str
) -> None:
    path = await saved(sim)
    assert callable(damage)
    damage(path)
    with pytest.raises(BadImage, match=message) as refused:
        await sim.ops.restore(path)
    assert refused.value.code == code
    assert str(refused.value).startswith(f"{path}: ")
    assert sim.host.guests == {}
    assert sim.world.guest("host-a", "vm") is None


async def test_an_image_with_unreadable_xml_is_refused(sim: SimSaving) -> None:
    image_with(sim.image(), xml="<domain>", stream=b"QEVM", image_format=ImageFormat.RAW)
    with pytest.raises(BadImage, match="domain XML in save image: ") as refused:
        await sim.ops.restore(sim.image())
    assert refused.value.code == "invalid-domain-xml"
    assert sim.world.guest("host-a", "vm") is None


async def test_a_missing_image_is_an_io_error(sim: SimSaving) -> None:
    with pytest.raises(ImageIOError, match="No such file") as missing:
        await sim.ops.restore(sim.image())
    assert missing.value.path == sim.image()


async def test_a_stream_cut_short_fails_the_restore_and_leaves_no_guest(sim: SimSaving) -> None:
    path = await saved(sim)
    cut_stream(path)
    with pytest.raises(RestoreFailed, match="could not load the saved state") as failed:
        await sim.ops.restore(path)
    assert "Input/output error" in failed.value.detail
    assert sim.host.guests == {}
    assert sim.world.guest("host-a", "vm") is None


async def test_a_compressed_stream_that_is_damaged_fails_in_the_decompressor(
    sim: SimSaving,
) -> None:
    xml = format_domain(domain("vm"))
    image_with(sim.image(), xml=xml, stream=b"not gzip at all", image_format=ImageFormat.GZIP)
    with pytest.raises(HelperFailed, match="'gzip -dc' exited with status 1") as failed:
        await sim.ops.restore(sim.image())
    assert "not in gzip format" in failed.value.stderr
    assert sim.world.guest("host-a", "vm") is None


async def test_a_guest_already_running_is_not_restored_again(sim: SimSaving) -> None:
    path = await saved(sim)
    await sim.ops.restore(path)
    with pytest.raises(DomainStateError, match="'vm' is already running"):
        await sim.ops.restore(path)


# -- managed save ----------------------------------------------------------------------------


async def test_managed_save_then_start_restores_and_removes_the_image(sim: SimSaving) -> None:
    await sim.start()
    await sim.ops.managed_save("vm")
    path = sim.ops.managed_save_path("vm")
    assert path == sim.directory / "managed" / "vm.save"
    assert sim.ops.has_managed_save("vm")
    assert sim.host.guests == {}
    assert "<name>vm</name>" in await sim.ops.managed_save_xml("vm")

    started = await sim.ops.start_with_managed_save("vm")
    assert started.outcome is ManagedStartOutcome.RESTORED
    assert not started.boot_fresh
    assert started.instance is not None
    assert await started.instance.run_state() is RunState.RUNNING
    assert not path.exists()


async def test_without_an_image_the_guest_boots_fresh(sim: SimSaving) -> None:
    started = await sim.ops.start_with_managed_save("vm")
    assert started.outcome is ManagedStartOutcome.NO_IMAGE
    assert started.boot_fresh


async def test_managed_save_of_a_transient_guest_is_refused(sim: SimSaving) -> None:
    await sim.start(persistent=False)
    with pytest.raises(DomainStateError, match="transient"):
        await sim.ops.managed_save("vm")
    assert not sim.ops.has_managed_save("vm")


@pytest.mark.parametrize(
    "damage", [_partial, cut_stream, _foreign, _cut_data], ids=lambda damage: damage.__name__
)
async def test_a_broken_managed_save_image_is_discarded_and_the_guest_boots_fresh(
    sim: SimSaving, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    await sim.start()
    await sim.ops.managed_save("vm")
    assert callable(damage)
    damage(sim.ops.managed_save_path("vm"))
    with caplog.at_level(logging.WARNING, logger="migrator.save"):
        started = await sim.ops.start_with_managed_save("vm")
    assert started.outcome is ManagedStartOutcome.DISCARDED
    assert started.boot_fresh
    assert started.problem
    assert not sim.ops.managed_save_path("vm").exists()
    assert sim.world.guest("host-a", "vm") is None
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "discarding the managed save image of domain 'vm'" in warning.getMessage()
    fresh = await sim.host.driver.start(sim.host.definitions["vm"], mode=StartMode.RUNNING)
    assert await fresh.run_state() is RunState.RUNNING


async def test_managed_save_images_are_removed_and_edited_by_name(sim: SimSaving) -> None:
    assert not await sim.ops.managed_save_remove("vm")
    with pytest.raises(NoManagedSave, match="'vm' has no managed save image"):
        await sim.ops.managed_save_xml("vm")
    with pytest.raises(NoManagedSave):
        await sim.ops.managed_save_define("vm", format_domain(domain("vm")))
    await sim.start()
    await sim.ops.managed_save("vm")
    xml = await sim.ops.managed_save_xml("vm", secure=True)
    titled = xml.replace("<name>vm</name>", "<name>vm</name><title>edited</title>")
    assert await sim.ops.managed_save_define("vm", titled, running=False)
    started = await sim.ops.start_with_managed_save("vm")
    assert started.instance is not None
    assert await started.instance.run_state() is RunState.PAUSED
    assert sim.host.guest("vm").domain.title == "edited"
    await sim.ops.managed_save("vm")
    assert await sim.ops.managed_save_remove("vm")
    assert not sim.ops.has_managed_save("vm")


# -- editing the XML in an image -------------------------------------------------------------


async def test_host_passthrough_edit_of_the_listen_address_passes_in_canonical_form(
    sim: SimSaving,
) -> None:
    """libvirt once compared the image's definition with the new one as each was parsed, and
    refused this edit with "Target CPU model <null> does not match source ...": the image
    held the host's CPU model (as older libvirt wrote it), the new XML did not."""
    await sim.start(LIVE_PASSTHROUGH)
    path = sim.image("db-01")
    await sim.ops.save("db-01", path)
    edited = USER_PASSTHROUGH.replace("listen='0.0.0.0'", "listen='192.0.2.7'")
    assert await sim.ops.image_define(path, edited)
    assert "192.0.2.7" in await sim.ops.image_xml(path)

    older = sim.image("older")
    image_with(older, xml=LIVE_PASSTHROUGH, stream=stream_of(path), image_format=ImageFormat.RAW)
    live = parse_domain(LIVE_PASSTHROUGH)
    inactive = format_domain(live, flags=FormatFlag.INACTIVE | FormatFlag.SECURE)
    new_xml = inactive.replace('"127.0.0.1"', '"192.0.2.8"')
    assert new_xml != inactive
    with pytest.raises(AbiMismatch) as naive:
        compare_abi(live, parse_domain(new_xml))
    assert str(naive.value) == "Target CPU model <null> does not match source Skylake-Client-IBRS"

    before = older.read_bytes()
    assert await sim.ops.image_define(older, new_xml)
    after = older.read_bytes()
    assert after[:16] == before[:16] == Magic.COMPLETE.value
    assert stream_of(older) == before[read_image(older).stream_offset :]
    instance = await sim.ops.restore(older)
    assert await instance.run_state() is RunState.RUNNING
    [display] = sim.host.guest("db-01").domain.devices.graphics
    assert display.listen == "192.0.2.8"


async def test_an_edit_that_changes_the_guest_is_refused_naming_the_field(
    sim: SimSaving,
) -> None:
    path = await saved(sim)
    before = path.read_bytes()
    bigger = format_domain(domain("vm", memory_bytes=128 * MiB))
    with pytest.raises(XmlRejected, match="does not describe the saved guest") as refused:
        await sim.ops.image_define(path, bigger)
    assert refused.value.field == "memory"
    assert "memory" in str(refused.value)
    with pytest.raises(XmlRejected, match="cannot be read") as unreadable:
        await sim.ops.image_define(path, "<domain type='kvm'>")
    assert unreadable.value.field is None
    assert path.read_bytes() == before


async def test_new_xml_larger_than_the_padding_is_refused(sim: SimSaving) -> None:
    path = await saved(sim)
    before = path.read_bytes()
    xml = await sim.ops.image_xml(path, secure=True)
    huge = xml.replace(
        "<name>vm</name>", f"<name>vm</name><description>{'x' * 70_000}</description>"
    )
    with pytest.raises(BadImage, match="new xml too large to fit in file") as refused:
        await sim.ops.image_define(path, huge)
    assert refused.value.code == "xml-too-large"
    assert path.read_bytes() == before


async def test_defining_the_same_xml_changes_nothing_but_the_state_can_change(
    sim: SimSaving,
) -> None:
    path = await saved(sim)
    before = path.read_bytes()
    xml = await sim.ops.image_xml(path, secure=True)
    assert not await sim.ops.image_define(path, xml)
    assert not await sim.ops.image_define(path, xml, running=True)
    assert path.read_bytes() == before
    assert await sim.ops.image_define(path, xml, running=False)
    assert not header_of(path).was_running
    assert stream_of(path) == before[read_image(path).stream_offset :]


async def test_image_xml_leaves_passwords_out_unless_asked(sim: SimSaving) -> None:
    vnc = Graphics(type=GraphicsType.VNC, passwd="s3cret")
    await sim.start(domain("vm", graphics=[vnc]))
    await sim.ops.save("vm", sim.image())
    assert "s3cret" not in await sim.ops.image_xml(sim.image())
    assert "s3cret" in await sim.ops.image_xml(sim.image(), secure=True)
    assert "s3cret" in read_image(sim.image()).xml


async def test_a_partial_image_cannot_be_edited(sim: SimSaving) -> None:
    path = await saved(sim)
    xml = await sim.ops.image_xml(path, secure=True)
    set_magic(path, Magic.PARTIAL.value)
    with pytest.raises(BadImage, match="save image is incomplete"):
        await sim.ops.image_define(path, xml)
    assert path.read_bytes()[:16] == Magic.PARTIAL.value


def test_the_image_stores_the_migratable_form() -> None:
    live = parse_domain(LIVE_PASSTHROUGH)
    stored = parse_domain(
        format_domain(live, flags=FormatFlag.INACTIVE | FormatFlag.SECURE | FormatFlag.MIGRATABLE)
    )
    assert stored.cpu is not None
    assert stored.cpu.model is None
