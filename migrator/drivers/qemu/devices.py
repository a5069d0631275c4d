"""Controllers, network cards, video, input, the memory balloon and RNGs on the command line."""

from __future__ import annotations

from collections.abc import Sequence

from migrator.domain import (
    Controller,
    ControllerModel,
    ControllerType,
    Domain,
    Input,
    InputBus,
    InputType,
    Interface,
    InterfaceModel,
    InterfaceType,
    MemballoonModel,
    PciModelName,
    Rng,
    RngBackend,
    RngModel,
    Video,
    VideoModel,
)
from migrator.domain.devices import ROOT_MODELS
from migrator.drivers.qemu.board import Board, usb_controller_id
from migrator.drivers.qemu.cmdline import Property, option_string
from migrator.drivers.qemu.plan import LaunchPlan, SetupCommand

#: The QEMU device behind each PCI controller model, unless ``<model name>`` says otherwise.
PCI_CONTROLLER_DEVICES: dict[ControllerModel, PciModelName] = {
    ControllerModel.PCI_BRIDGE: PciModelName.PCI_BRIDGE,
    ControllerModel.DMI_TO_PCI_BRIDGE: PciModelName.I82801B11_BRIDGE,
    ControllerModel.PCIE_ROOT_PORT: PciModelName.PCIE_ROOT_PORT,
    ControllerModel.PCIE_SWITCH_UPSTREAM_PORT: PciModelName.X3130_UPSTREAM,
    ControllerModel.PCIE_SWITCH_DOWNSTREAM_PORT: PciModelName.XIO3130_DOWNSTREAM,
    ControllerModel.PCIE_TO_PCI_BRIDGE: PciModelName.PCIE_PCI_BRIDGE,
}
#: PCI controller devices that take a chassis and a port number.
_PORTS = frozenset(
    {PciModelName.PCIE_ROOT_PORT, PciModelName.IOH3420, PciModelName.XIO3130_DOWNSTREAM}
)
USB_CONTROLLER_DEVICES: dict[ControllerModel, str] = {
    ControllerModel.PIIX3_UHCI: "piix3-usb-uhci",
    ControllerModel.PIIX4_UHCI: "piix4-usb-uhci",
    ControllerModel.EHCI: "usb-ehci",
    ControllerModel.ICH9_EHCI1: "ich9-usb-ehci1",
    ControllerModel.QEMU_XHCI: "qemu-xhci",
    ControllerModel.NEC_XHCI: "nec-usb-xhci",
}
SCSI_CONTROLLER_DEVICES: dict[ControllerModel, str] = {
    ControllerModel.LSILOGIC: "lsi",
    ControllerModel.VIRTIO_SCSI: "virtio-scsi-pci",
}
NIC_DEVICES: dict[InterfaceModel, str] = {
    InterfaceModel.VIRTIO: "virtio-net-pci",
    InterfaceModel.E1000: "e1000",
    InterfaceModel.E1000E: "e1000e",
    InterfaceModel.RTL8139: "rtl8139",
}
PRIMARY_VIDEO_DEVICES: dict[VideoModel, str] = {
    VideoModel.VGA: "VGA",
    VideoModel.CIRRUS: "cirrus-vga",
    VideoModel.QXL: "qxl-vga",
    VideoModel.VIRTIO: "virtio-vga",
    VideoModel.BOCHS: "bochs-display",
    VideoModel.RAMFB: "ramfb",
}
SECONDARY_VIDEO_DEVICES: dict[VideoModel, str] = {
    VideoModel.QXL: "qxl",
    VideoModel.VIRTIO: "virtio-gpu-pci",
}
INPUT_DEVICES: dict[tuple[InputBus, InputType], str] = {
    (InputBus.USB, InputType.MOUSE): "usb-mouse",
    (InputBus.USB, InputType.KEYBOARD): "usb-kbd",
    (InputBus.USB, InputType.TABLET): "usb-tablet",
    (InputBus.VIRTIO, InputType.MOUSE): "virtio-mouse-pci",
    (InputBus.VIRTIO, InputType.KEYBOARD): "virtio-keyboard-pci",
    (InputBus.VIRTIO, InputType.TABLET): "virtio-tablet-pci",
}
BALLOON_DEVICES: dict[MemballoonModel, str] = {
    MemballoonModel.VIRTIO: "virtio-balloon-pci",
    MemballoonModel.VIRTIO_TRANSITIONAL: "virtio-balloon-pci-transitional",
    MemballoonModel.VIRTIO_NON_TRANSITIONAL: "virtio-balloon-pci-non-transitional",
}
RNG_DEVICES: dict[RngModel, str] = {
    RngModel.VIRTIO: "virtio-rng-pci",
    RngModel.VIRTIO_TRANSITIONAL: "virtio-rng-pci-transitional",
    RngModel.VIRTIO_NON_TRANSITIONAL: "virtio-rng-pci-non-transitional",
}
#: The host end of a ``random`` RNG backend that names no device.
DEFAULT_RNG_SOURCE = "/dev/urandom"
#: The rate-limit period of an RNG whose definition gives bytes but no period, in ms.
DEFAULT_RNG_PERIOD_MS = 1000
BALLOON_ID = "balloon0"


def controller_args(controllers: Sequence[Controller], board: Board) -> list[str]:
    """PCI controllers by index (a bridge before what plugs into it), then the others.

    Built-in controllers (the root bus, i440fx's IDE, q35's SATA 0) and USB ``none`` add
    nothing.

    Raises:
        UnsupportedConfig: an IDE controller the machine does not have, a non-root PCI
            controller without a model, or a misplaced one.
    """
    ordered = sorted(controllers, key=lambda c: (c.type is not ControllerType.PCI, c.index))
    argv: list[str] = []
    for controller in ordered:
        device = _controller(controller, board)
        if device is not None:
            argv += ["-device", device]
    return argv


def _controller(controller: Controller, board: Board) -> str | None:
    index, model = controller.index, controller.model
    item = f"controller '{controller.type.value}' {index}"
    placement = board.placement(controller.address, item=item)
    match controller.type:
        case ControllerType.PCI:
            if model in ROOT_MODELS:
                return None
            if model is None:
                raise board.refuse(item, "a PCI controller other than the root needs a model")
            name = controller.model_name or PCI_CONTROLLER_DEVICES[model]
            properties: list[Property] = [("id", f"pci.{index}")]
            if name is PciModelName.PCI_BRIDGE:
                properties.append(("chassis_nr", controller.target_chassis_nr or index))
            elif name in _PORTS:
                properties.append(("chassis", controller.target_chassis or index))
                if controller.target_port is not None:
                    properties.append(("port", controller.target_port))
            return option_string(name.value, [*properties, *placement])
        case ControllerType.USB:
            if model is ControllerModel.NONE:
                return None
            if model is None:
                device = "qemu-xhci" if board.q35 else "piix3-usb-uhci"
            else:
                device = USB_CONTROLLER_DEVICES[model]
            return option_string(device, [("id", usb_controller_id(index)), *placement])
        case ControllerType.SATA:
            if index == 0 and board.q35:
                return None
            return option_string("ahci", [("id", f"sata{index}"), *placement])
        case ControllerType.IDE:
            if index == 0 and not board.q35:
                return None
            raise board.refuse(item, "the machine has no such IDE controller")
        case ControllerType.SCSI:
            device = SCSI_CONTROLLER_DEVICES[model or ControllerModel.LSILOGIC]
            return option_string(device, [("id", f"scsi{index}"), *placement])
        case ControllerType.VIRTIO_SERIAL:
            properties = [("id", f"virtio-serial{index}")]
            if controller.ports is not None:
                properties.append(("max_ports", controller.ports))
            if controller.vectors is not None:
                properties.append(("vectors", controller.vectors))
            return option_string("virtio-serial-pci", [*properties, *placement])


def interface_args(interfaces: Sequence[Interface], board: Board) -> list[str]:
    """User-mode (slirp) network cards.

    Raises:
        UnsupportedConfig: an interface of type ``network`` or ``bridge``, which needs a tap
            device this driver does not set up.
    """
    argv: list[str] = []
    for position, interface in enumerate(interfaces):
        item = f"interface[{position}]"
        if interface.type is not InterfaceType.USER:
            raise board.refuse(
                item,
                f"type '{interface.type.value}' needs a tap device, which this driver does "
                "not set up; use type 'user'",
            )
        netdev = f"hostnet{position}"
        model = interface.model or InterfaceModel.VIRTIO
        device: list[Property] = [
            ("netdev", netdev),
            ("id", interface.alias or f"net{position}"),
            ("mac", interface.mac),
            *board.placement(interface.address, item=item),
        ]
        argv += [
            "-netdev",
            option_string("user", [("id", netdev)]),
            "-device",
            option_string(NIC_DEVICES[model], device),
        ]
    return argv


def video_args(videos: Sequence[Video], board: Board) -> list[str]:
    """Video cards, the primary (first) one first.

    Raises:
        UnsupportedConfig: a card without a model, or a secondary card that is not QXL or
            virtio.
    """
    argv: list[str] = []
    for position, video in enumerate(videos):
        item = f"video[{position}]"
        if video.model is VideoModel.NONE:
            continue
        if video.model is None:
            raise board.refuse(item, "no model")
        devices = PRIMARY_VIDEO_DEVICES if position == 0 else SECONDARY_VIDEO_DEVICES
        device = devices.get(video.model)
        if device is None:
            raise board.refuse(item, f"a '{video.model.value}' card can only be the primary one")
        properties: list[Property] = [("id", video.alias or f"video{position}")]
        properties += _video_memory(video)
        if video.model is not VideoModel.RAMFB:
            properties += board.placement(video.address, item=item)
        argv += ["-device", option_string(device, properties)]
    return argv


def _video_memory(video: Video) -> list[Property]:
    """Memory sizes (KiB in the definition) and heads, in each device's own properties."""
    match video.model:
        case VideoModel.VGA | VideoModel.CIRRUS:
            return [] if video.vram is None else [("vgamem_mb", video.vram // 1024)]
        case VideoModel.BOCHS:
            return [] if video.vram is None else [("vgamem", video.vram * 1024)]
        case VideoModel.QXL:
            sizes: list[Property] = []
            if video.ram is not None:
                sizes.append(("ram_size", video.ram * 1024))
            if video.vram is not None:
                sizes.append(("vram_size", video.vram * 1024))
            if video.vgamem is not None:
                sizes.append(("vgamem_mb", video.vgamem // 1024))
            return sizes + _heads(video)
        case VideoModel.VIRTIO:
            return _heads(video)
        case _:
            return []


def _heads(video: Video) -> list[Property]:
    return [] if video.heads is None else [("max_outputs", video.heads)]


def input_args(inputs: Sequence[Input], board: Board) -> list[str]:
    """USB and virtio input devices; the PS/2 mouse and keyboard are built into the machine.

    Raises:
        UnsupportedConfig: a PS/2 tablet, an input without a bus, or a USB one without a
            USB controller.
    """
    argv: list[str] = []
    for position, device in enumerate(inputs):
        item = f"input[{position}]"
        match device.bus:
            case InputBus.PS2:
                if device.type is InputType.TABLET:
                    raise board.refuse(item, "a tablet cannot be on PS/2")
                continue
            case InputBus.USB:
                placement = board.usb_placement(device.address, item=item)
            case InputBus.VIRTIO:
                placement = board.placement(device.address, item=item)
            case None:
                raise board.refuse(item, "no bus")
        name = INPUT_DEVICES[(device.bus, device.type)]
        properties: list[Property] = [("id", device.alias or f"input{position}"), *placement]
        argv += ["-device", option_string(name, properties)]
    return argv


def balloon_args(domain: Domain, board: Board) -> LaunchPlan:
    """The memory balloon, its statistics period and its target (current memory).

    Raises:
        UnsupportedConfig: current memory below memory without a balloon to hold it there.
    """
    balloon = domain.devices.memballoon
    current_kib = domain.current_memory_kib or domain.memory_kib
    below = current_kib < domain.memory_kib
    if balloon is None or balloon.model is MemballoonModel.NONE:
        if below:
            raise board.refuse("currentMemory", "below memory needs a memory balloon")
        return LaunchPlan(())
    device_id = balloon.alias or BALLOON_ID
    properties: list[Property] = [("id", device_id)]
    if balloon.autodeflate is not None:
        properties.append(("deflate-on-oom", balloon.autodeflate))
    properties += board.placement(balloon.address, item="memballoon")
    setup: list[SetupCommand] = []
    if balloon.stats_period is not None:
        setup.append(
            SetupCommand(
                "qom-set",
                {
                    "path": f"/machine/peripheral/{device_id}",
                    "property": "guest-stats-polling-interval",
                    "value": balloon.stats_period,
                },
            )
        )
    if below:
        setup.append(SetupCommand("balloon", {"value": current_kib * 1024}, guest_state=True))
    argv = ("-device", option_string(BALLOON_DEVICES[balloon.model], properties))
    return LaunchPlan(argv, tuple(setup))


def rng_args(rngs: Sequence[Rng], board: Board) -> list[str]:
    """Virtio RNGs, each with its ``rng-random`` or ``rng-builtin`` backend object."""
    argv: list[str] = []
    for position, rng in enumerate(rngs):
        device_id = rng.alias or f"rng{position}"
        backend_id = f"obj{device_id}"
        if rng.backend is RngBackend.RANDOM:
            backend = option_string(
                "rng-random",
                [("id", backend_id), ("filename", rng.backend_path or DEFAULT_RNG_SOURCE)],
            )
        else:
            backend = option_string("rng-builtin", [("id", backend_id)])
        properties: list[Property] = [("rng", backend_id), ("id", device_id)]
        if rng.rate_bytes is not None:
            properties += [
                ("max-bytes", rng.rate_bytes),
                ("period", rng.rate_period or DEFAULT_RNG_PERIOD_MS),
            ]
        properties += board.placement(rng.address, item=f"rng[{position}]")
        argv += ["-object", backend, "-device", option_string(RNG_DEVICES[rng.model], properties)]
    return argv
