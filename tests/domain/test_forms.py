"""The defaults libvirt fills in, and the inactive and canonical forms, on examples."""

from __future__ import annotations

from dataclasses import replace

from migrator.domain import (
    ConsoleTargetType,
    Cpu,
    CpuFallback,
    CpuMatch,
    DiskBus,
    DiskFormat,
    Domain,
    InputBus,
    InterfaceModel,
    MemballoonModel,
    SerialTargetModel,
    SerialTargetType,
    VideoModel,
    inactive,
    migratable,
    parse_domain,
    with_defaults,
)
from tests.domain.documents import fixture, minimal

DEVICES = (
    "<disk type='file'><source file='/a.img'/><target dev='vdb'/></disk>"
    "<disk type='file'><source file='/b.img'/><target dev='sdc'/></disk>"
    "<disk type='file' device='cdrom'><target dev='hdc'/></disk>"
    "<interface type='user'/>"
    "<serial type='pty'/><serial type='pty'><target port='3'/></serial><serial type='pty'/>"
    "<console type='pty'/>"
    "<input type='mouse'/><input type='tablet'/>"
    "<graphics type='vnc'/>"
)


def _domain(arch: str | None, *, cpu: str = "") -> Domain:
    document = minimal(top=cpu, devices=DEVICES)
    if arch is None:
        document = document.replace(" arch='x86_64'", "")
    else:
        document = document.replace("x86_64", arch)
    return parse_domain(document)


def test_defaults_on_x86() -> None:
    filled = with_defaults(_domain("x86_64"))
    devices = filled.devices
    assert [(d.target_dev, d.target_bus, d.format) for d in devices.disks] == [
        ("vdb", DiskBus.VIRTIO, DiskFormat.RAW),
        ("sdc", DiskBus.SCSI, DiskFormat.RAW),
        ("hdc", DiskBus.IDE, DiskFormat.RAW),
    ]
    assert devices.interfaces[0].model is InterfaceModel.RTL8139
    assert [(s.target_type, s.target_port, s.target_model) for s in devices.serials] == [
        (SerialTargetType.ISA_SERIAL, 4, SerialTargetModel.ISA_SERIAL),
        (SerialTargetType.ISA_SERIAL, 3, SerialTargetModel.ISA_SERIAL),
        (SerialTargetType.ISA_SERIAL, 5, SerialTargetModel.ISA_SERIAL),
    ]
    assert [(c.target_type, c.target_port) for c in devices.consoles] == [
        (ConsoleTargetType.SERIAL, 0)
    ]
    assert [i.bus for i in devices.inputs] == [InputBus.PS2, InputBus.USB]
    (video,) = devices.videos
    assert (video.model, video.vram, video.heads, video.primary) == (VideoModel.VGA, 16384, 1, True)
    assert devices.memballoon is not None
    assert devices.memballoon.model is MemballoonModel.VIRTIO
    assert (filled.current_memory_kib, filled.current_vcpus) == (512 * 1024, 1)


def test_defaults_on_aarch64() -> None:
    devices = with_defaults(_domain("aarch64")).devices
    assert devices.interfaces[0].model is InterfaceModel.VIRTIO
    assert devices.serials[0].target_type is SerialTargetType.SYSTEM_SERIAL
    assert devices.serials[0].target_model is SerialTargetModel.PL011
    assert [i.bus for i in devices.inputs] == [InputBus.USB, InputBus.USB]
    assert devices.videos[0].model is VideoModel.VIRTIO


def test_no_architecture_no_guessing() -> None:
    devices = with_defaults(_domain(None)).devices
    assert devices.interfaces[0].model is None
    assert devices.serials[0].target_type is None
    assert devices.inputs[0].bus is None
    assert devices.videos[0].model is None
    assert devices.videos[0].primary is None


def test_cpu_defaults() -> None:
    custom = with_defaults(_domain("x86_64", cpu="<cpu><model>Haswell</model></cpu>")).cpu
    assert custom is not None
    assert (custom.match, custom.fallback) == (CpuMatch.EXACT, CpuFallback.ALLOW)
    passthrough = with_defaults(_domain("x86_64", cpu="<cpu mode='host-passthrough'/>")).cpu
    assert passthrough is not None and passthrough.migratable is True
    assert with_defaults(_domain("x86_64", cpu="<cpu/>")).cpu == Cpu()


def test_canonical_form_orders_disks_as_libvirt() -> None:
    document = minimal(
        devices="<disk type='file'><source file='/a'/><target dev='vdaa'/></disk>"
        "<disk type='file'><source file='/b'/><target dev='sdb'/></disk>"
        "<disk type='file'><source file='/c'/><target dev='vdb'/></disk>"
        "<disk type='file'><source file='/d'/><target dev='sda'/></disk>"
    )
    disks = migratable(parse_domain(document)).devices.disks
    assert [disk.target_dev for disk in disks] == ["vdb", "vdaa", "sda", "sdb"]


def test_console_only_and_serial_only_are_one_guest() -> None:
    console_only = parse_domain(minimal(devices="<console type='pty'/>"))
    serial_only = parse_domain(minimal(devices="<serial type='pty'/>"))
    both = parse_domain(
        minimal(
            devices="<serial type='pty'><target port='0'/></serial>"
            "<console type='pty'><target type='serial' port='0'/></console>"
        )
    )
    assert migratable(console_only) == migratable(serial_only) == migratable(both)
    assert migratable(both).devices.consoles == ()


def test_inactive_keeps_user_aliases_and_tap_names() -> None:
    running = parse_domain(fixture("running.xml"))
    devices = running.devices
    renamed = replace(
        running,
        devices=replace(
            devices,
            disks=(replace(devices.disks[0], alias="ua-boot"), devices.disks[1]),
            interfaces=(
                replace(devices.interfaces[0], target_dev="tap-web0"),
                devices.interfaces[1],
            ),
        ),
    )
    form = inactive(renamed)
    assert [disk.alias for disk in form.devices.disks] == ["ua-boot", None]
    assert [i.target_dev for i in form.devices.interfaces] == ["tap-web0", None]
    assert form.devices.serials[0].source.path is None
    assert form.devices.graphics[0].port is None
    assert form.cpu == running.cpu
