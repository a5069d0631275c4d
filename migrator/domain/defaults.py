"""What a definition means where it says nothing: libvirt's defaults, filled in.

libvirt fills these in when it defines a domain (its post-parse step); a definition that
writes them and one that leaves them out describe the same guest. :func:`with_defaults`
makes that explicit, so that the hypervisor driver builds the guest from one answer and
the ABI check compares like with like. Defaults that depend on the architecture are only
filled in when the architecture is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from migrator.domain.devices import (
    ConsoleTargetType,
    ControllerModel,
    ControllerType,
    Devices,
    Disk,
    DiskBus,
    DiskFormat,
    Input,
    InputBus,
    InputType,
    Interface,
    InterfaceModel,
    Memballoon,
    MemballoonModel,
    Serial,
    SerialTargetModel,
    SerialTargetType,
    Video,
    VideoModel,
)
from migrator.domain.model import (
    Arch,
    BootDevice,
    Clock,
    Cpu,
    CpuFallback,
    CpuMatch,
    CpuMode,
    Domain,
    LifecycleAction,
    VcpuPlacement,
)

__all__ = [
    "DISK_BUS_BY_PREFIX",
    "X86",
    "disk_bus",
    "serial_defaults",
    "with_defaults",
]

X86 = frozenset({Arch.X86_64, Arch.I686})
_ARM = frozenset({Arch.AARCH64, Arch.ARMV7L})

#: The bus a disk is on when only its target name is written (``vda`` is virtio).
DISK_BUS_BY_PREFIX: dict[str, DiskBus] = {
    "vd": DiskBus.VIRTIO,
    "sd": DiskBus.SCSI,
    "hd": DiskBus.IDE,
}

#: Memory of each video model in KiB, as libvirt fills it: (ram, vram, vgamem).
VIDEO_MEMORY: dict[VideoModel, tuple[int | None, int | None, int | None]] = {
    VideoModel.VGA: (None, 16384, None),
    VideoModel.CIRRUS: (None, 16384, None),
    VideoModel.BOCHS: (None, 16384, None),
    VideoModel.QXL: (65536, 65536, 16384),
    VideoModel.VIRTIO: (None, None, None),
    VideoModel.RAMFB: (None, None, None),
    VideoModel.NONE: (None, None, None),
}

#: The QEMU device of each serial target type (system-serial depends on the architecture).
SERIAL_TARGET_MODEL: dict[SerialTargetType, SerialTargetModel] = {
    SerialTargetType.ISA_SERIAL: SerialTargetModel.ISA_SERIAL,
    SerialTargetType.USB_SERIAL: SerialTargetModel.USB_SERIAL,
    SerialTargetType.PCI_SERIAL: SerialTargetModel.PCI_SERIAL,
}
SYSTEM_SERIAL_MODEL: dict[Arch, SerialTargetModel] = {
    Arch.AARCH64: SerialTargetModel.PL011,
    Arch.ARMV7L: SerialTargetModel.PL011,
    Arch.RISCV64: SerialTargetModel.UART_16550A,
}

T = TypeVar("T")


def disk_bus(disk: Disk) -> DiskBus:
    """Return the bus ``disk`` is on: the written one, else the one its target name implies.

    A name with no known prefix is on IDE, as in libvirt.
    """
    if disk.target_bus is not None:
        return disk.target_bus
    return DISK_BUS_BY_PREFIX.get(disk.target_dev[:2], DiskBus.IDE)


def with_defaults(domain: Domain) -> Domain:
    """Return ``domain`` with every default libvirt would fill in written out.

    Fills: current memory and vCPUs, vCPU placement, the lifecycle actions, the clock, the
    boot device, CPU match/fallback/migratable, disk bus and format, interface model,
    serial and console targets, input buses, video model, memory and primary flag, a video
    card for a domain with graphics but none, and the virtio memory balloon.
    """
    arch = domain.os.arch
    os = domain.os
    if not os.boot and os.kernel is None:
        os = replace(os, boot=(BootDevice.HD,))
    return replace(
        domain,
        current_memory_kib=_default(domain.current_memory_kib, domain.memory_kib),
        current_vcpus=_default(domain.current_vcpus, domain.vcpus),
        vcpu_placement=_default(domain.vcpu_placement, VcpuPlacement.STATIC),
        os=os,
        cpu=None if domain.cpu is None else _cpu_defaults(domain.cpu),
        clock=_default(domain.clock, Clock()),
        on_poweroff=_default(domain.on_poweroff, LifecycleAction.DESTROY),
        on_reboot=_default(domain.on_reboot, LifecycleAction.RESTART),
        on_crash=_default(domain.on_crash, LifecycleAction.DESTROY),
        devices=_device_defaults(domain.devices, arch),
    )


def _default(value: T | None, default: T) -> T:
    return default if value is None else value


def _cpu_defaults(cpu: Cpu) -> Cpu:
    match cpu.mode:
        case CpuMode.HOST_PASSTHROUGH:
            return replace(cpu, migratable=_default(cpu.migratable, True))
        case CpuMode.HOST_MODEL:
            return replace(cpu, fallback=_default(cpu.fallback, CpuFallback.ALLOW))
        case CpuMode.CUSTOM:
            if cpu.model is None:
                return cpu
            return replace(
                cpu,
                match=_default(cpu.match, CpuMatch.EXACT),
                fallback=_default(cpu.fallback, CpuFallback.ALLOW),
            )


def _device_defaults(devices: Devices, arch: Arch | None) -> Devices:
    videos = devices.videos
    if devices.graphics and not videos:
        videos = (Video(),)
    return replace(
        devices,
        disks=tuple(
            replace(
                disk,
                target_bus=disk_bus(disk),
                format=_default(disk.format, DiskFormat.RAW),
            )
            for disk in devices.disks
        ),
        controllers=tuple(
            replace(controller, model=_scsi_model(arch))
            if controller.type is ControllerType.SCSI and controller.model is None
            else controller
            for controller in devices.controllers
        ),
        interfaces=tuple(_interface_defaults(interface, arch) for interface in devices.interfaces),
        serials=_numbered(
            tuple(serial_defaults(serial, arch) for serial in devices.serials),
            port=lambda serial: serial.target_port,
            renumber=lambda serial, port: replace(serial, target_port=port),
        ),
        consoles=_numbered(
            tuple(
                replace(console, target_type=_default(console.target_type, target_type))
                for console, target_type in zip(
                    devices.consoles, _console_target_types(len(devices.consoles)), strict=True
                )
            ),
            port=lambda console: console.target_port,
            renumber=lambda console, port: replace(console, target_port=port),
        ),
        inputs=tuple(_input_defaults(device, arch) for device in devices.inputs),
        videos=_video_defaults(videos, arch),
        memballoon=_default(devices.memballoon, Memballoon(model=MemballoonModel.VIRTIO)),
    )


def _console_target_types(count: int) -> list[ConsoleTargetType]:
    """The first console is the serial port's, as in libvirt; the others are virtio consoles."""
    return [ConsoleTargetType.SERIAL, *[ConsoleTargetType.VIRTIO] * (count - 1)][:count]


def _scsi_model(arch: Arch | None) -> ControllerModel | None:
    if arch is None:
        return None
    return ControllerModel.LSILOGIC if arch in X86 else ControllerModel.VIRTIO_SCSI


def _interface_defaults(interface: Interface, arch: Arch | None) -> Interface:
    if interface.model is not None or arch is None:
        return interface
    model = InterfaceModel.RTL8139 if arch in X86 else InterfaceModel.VIRTIO
    return replace(interface, model=model)


def serial_defaults(serial: Serial, arch: Arch | None) -> Serial:
    """Return ``serial`` with its target type and model filled in for ``arch``."""
    target_type = serial.target_type
    if target_type is None and arch is not None:
        if arch in X86:
            target_type = SerialTargetType.ISA_SERIAL
        elif arch in _ARM or arch is Arch.RISCV64:
            target_type = SerialTargetType.SYSTEM_SERIAL
    target_model = serial.target_model
    if target_model is None and target_type is not None:
        if target_type is SerialTargetType.SYSTEM_SERIAL:
            target_model = None if arch is None else SYSTEM_SERIAL_MODEL.get(arch)
        else:
            target_model = SERIAL_TARGET_MODEL[target_type]
    return replace(serial, target_type=target_type, target_model=target_model)


def _numbered(
    devices: tuple[T, ...],
    *,
    port: Callable[[T], int | None],
    renumber: Callable[[T, int], T],
) -> tuple[T, ...]:
    """Give each device without a port the next one after the highest so far, as libvirt."""
    numbered: list[T] = []
    highest = max((p for p in map(port, devices) if p is not None), default=-1)
    for device in devices:
        if port(device) is None:
            highest += 1
            numbered.append(renumber(device, highest))
        else:
            numbered.append(device)
    return tuple(numbered)


def _input_defaults(device: Input, arch: Arch | None) -> Input:
    if device.bus is not None:
        return device
    if device.type is InputType.TABLET:
        return replace(device, bus=InputBus.USB)
    if arch is None:
        return device
    return replace(device, bus=InputBus.PS2 if arch in X86 else InputBus.USB)


def _video_defaults(videos: Sequence[Video], arch: Arch | None) -> tuple[Video, ...]:
    filled = [_video_model_defaults(video, arch) for video in videos]
    if not filled:
        return ()
    primary = filled.pop(next((i for i, video in enumerate(filled) if video.primary), 0))
    # The primary flag is an attribute of <model>: a card without a model cannot carry it.
    if primary.model is not None:
        primary = replace(primary, primary=True)
    return (primary, *filled)


def _video_model_defaults(video: Video, arch: Arch | None) -> Video:
    model = video.model
    if model is None and arch is not None:
        model = VideoModel.VGA if arch in X86 else VideoModel.VIRTIO
    if model is None:
        return video
    ram, vram, vgamem = VIDEO_MEMORY[model]
    return replace(
        video,
        model=model,
        ram=ram if video.ram is None else video.ram,
        vram=vram if video.vram is None else video.vram,
        vgamem=vgamem if video.vgamem is None else video.vgamem,
        heads=video.heads if model is VideoModel.NONE else _default(video.heads, 1),
    )
