"""The devices of a domain (``<devices>``): one frozen record per kind.

``alias`` is the ``<alias name='...'/>`` of a running domain (names starting with ``ua-``
are the user's own and survive the inactive form); ``address`` is where the device sits on
its bus. Both are kept as written.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from migrator.domain.addresses import Address

__all__ = [
    "CONTROLLER_MODELS",
    "ROOT_MODELS",
    "CharSource",
    "CharType",
    "Console",
    "ConsoleTargetType",
    "Controller",
    "ControllerModel",
    "ControllerType",
    "Devices",
    "Disk",
    "DiskBus",
    "DiskCache",
    "DiskDevice",
    "DiskFormat",
    "DiskType",
    "Graphics",
    "GraphicsType",
    "Input",
    "InputBus",
    "InputType",
    "Interface",
    "InterfaceModel",
    "InterfaceType",
    "Memballoon",
    "MemballoonModel",
    "PciModelName",
    "Rng",
    "RngBackend",
    "RngModel",
    "Serial",
    "SerialTargetModel",
    "SerialTargetType",
    "SourceMode",
    "TcpProtocol",
    "Video",
    "VideoModel",
]


class DiskType(enum.Enum):
    """``<disk type='...'>``: where the data lives on the host."""

    FILE = "file"
    BLOCK = "block"


class DiskDevice(enum.Enum):
    """``<disk device='...'>``: what the guest sees."""

    DISK = "disk"
    CDROM = "cdrom"


class DiskFormat(enum.Enum):
    """``<driver type='...'>``: the image format."""

    RAW = "raw"
    QCOW2 = "qcow2"


class DiskCache(enum.Enum):
    """``<driver cache='...'>``."""

    DEFAULT = "default"
    NONE = "none"
    WRITETHROUGH = "writethrough"
    WRITEBACK = "writeback"
    DIRECTSYNC = "directsync"
    UNSAFE = "unsafe"


class DiskBus(enum.Enum):
    """``<target bus='...'>``."""

    VIRTIO = "virtio"
    SCSI = "scsi"
    SATA = "sata"
    IDE = "ide"
    USB = "usb"


@dataclass(frozen=True, kw_only=True)
class Disk:
    """``<disk>``: a file- or block-backed disk or CD-ROM.

    ``source_path`` is the file (``<source file>``) or block device (``<source dev>``);
    ``None`` only for an empty CD-ROM drive.
    """

    type: DiskType
    device: DiskDevice = DiskDevice.DISK
    format: DiskFormat | None = None
    cache: DiskCache | None = None
    source_path: str | None = None
    target_dev: str
    target_bus: DiskBus | None = None
    readonly: bool = False
    shareable: bool = False
    serial: str | None = None
    alias: str | None = None
    address: Address | None = None


class ControllerType(enum.Enum):
    """``<controller type='...'>``."""

    PCI = "pci"
    USB = "usb"
    SATA = "sata"
    IDE = "ide"
    SCSI = "scsi"
    VIRTIO_SERIAL = "virtio-serial"


class ControllerModel(enum.Enum):
    """``<controller model='...'>``; which models go with which type is in ``parse``."""

    PCI_ROOT = "pci-root"
    PCIE_ROOT = "pcie-root"
    PCI_BRIDGE = "pci-bridge"
    DMI_TO_PCI_BRIDGE = "dmi-to-pci-bridge"
    PCIE_ROOT_PORT = "pcie-root-port"
    PCIE_SWITCH_UPSTREAM_PORT = "pcie-switch-upstream-port"
    PCIE_SWITCH_DOWNSTREAM_PORT = "pcie-switch-downstream-port"
    PCIE_TO_PCI_BRIDGE = "pcie-to-pci-bridge"
    PIIX3_UHCI = "piix3-uhci"
    PIIX4_UHCI = "piix4-uhci"
    EHCI = "ehci"
    ICH9_EHCI1 = "ich9-ehci1"
    QEMU_XHCI = "qemu-xhci"
    NEC_XHCI = "nec-xhci"
    VIRTIO_SCSI = "virtio-scsi"
    LSILOGIC = "lsilogic"
    NONE = "none"


class PciModelName(enum.Enum):
    """``<controller><model name='...'/>``: the QEMU device behind a PCI controller."""

    PCI_BRIDGE = "pci-bridge"
    I82801B11_BRIDGE = "i82801b11-bridge"
    PCIE_ROOT_PORT = "pcie-root-port"
    IOH3420 = "ioh3420"
    X3130_UPSTREAM = "x3130-upstream"
    XIO3130_DOWNSTREAM = "xio3130-downstream"
    PCIE_PCI_BRIDGE = "pcie-pci-bridge"


#: Which controller models go with which controller type.
CONTROLLER_MODELS: dict[ControllerType, frozenset[ControllerModel]] = {
    ControllerType.PCI: frozenset(
        {
            ControllerModel.PCI_ROOT,
            ControllerModel.PCIE_ROOT,
            ControllerModel.PCI_BRIDGE,
            ControllerModel.DMI_TO_PCI_BRIDGE,
            ControllerModel.PCIE_ROOT_PORT,
            ControllerModel.PCIE_SWITCH_UPSTREAM_PORT,
            ControllerModel.PCIE_SWITCH_DOWNSTREAM_PORT,
            ControllerModel.PCIE_TO_PCI_BRIDGE,
        }
    ),
    ControllerType.USB: frozenset(
        {
            ControllerModel.PIIX3_UHCI,
            ControllerModel.PIIX4_UHCI,
            ControllerModel.EHCI,
            ControllerModel.ICH9_EHCI1,
            ControllerModel.QEMU_XHCI,
            ControllerModel.NEC_XHCI,
            ControllerModel.NONE,
        }
    ),
    ControllerType.SCSI: frozenset({ControllerModel.VIRTIO_SCSI, ControllerModel.LSILOGIC}),
    ControllerType.SATA: frozenset(),
    ControllerType.IDE: frozenset(),
    ControllerType.VIRTIO_SERIAL: frozenset(),
}

#: The PCI controller models that are a machine's root bus, always at index 0.
ROOT_MODELS = frozenset({ControllerModel.PCI_ROOT, ControllerModel.PCIE_ROOT})


@dataclass(frozen=True, kw_only=True)
class Controller:
    """``<controller>``: a bus the other devices plug into.

    ``model_name`` and the ``target_*`` fields are those of PCI controllers
    (``<model name/>``, ``<target chassisNr chassis port/>``); ``ports`` and ``vectors``
    those of ``virtio-serial``.
    """

    type: ControllerType
    index: int
    model: ControllerModel | None = None
    model_name: PciModelName | None = None
    target_chassis_nr: int | None = None
    target_chassis: int | None = None
    target_port: int | None = None
    ports: int | None = None
    vectors: int | None = None
    alias: str | None = None
    address: Address | None = None


class InterfaceType(enum.Enum):
    """``<interface type='...'>``: the host side of a network card."""

    USER = "user"
    NETWORK = "network"
    BRIDGE = "bridge"


class InterfaceModel(enum.Enum):
    """``<model type='...'/>`` of an interface: the card the guest sees."""

    VIRTIO = "virtio"
    E1000 = "e1000"
    E1000E = "e1000e"
    RTL8139 = "rtl8139"


@dataclass(frozen=True, kw_only=True)
class Interface:
    """``<interface>``.

    ``source_network`` is set for type ``network``, ``source_bridge`` for ``bridge``.
    ``target_dev`` is the host's tap device; names libvirt generates (``vnet0``) are live
    data.
    """

    type: InterfaceType
    mac: str
    model: InterfaceModel | None = None
    source_network: str | None = None
    source_bridge: str | None = None
    target_dev: str | None = None
    alias: str | None = None
    address: Address | None = None


class GraphicsType(enum.Enum):
    """``<graphics type='...'>``."""

    VNC = "vnc"
    SPICE = "spice"


@dataclass(frozen=True, kw_only=True)
class Graphics:
    """``<graphics>``: a remote display server.

    With ``autoport`` the ports are chosen at start (live data); ``None`` means not chosen.
    ``tls_port`` is SPICE only. ``listen`` is the listen address.
    """

    type: GraphicsType
    port: int | None = None
    autoport: bool = True
    tls_port: int | None = None
    listen: str | None = None
    passwd: str | None = None
    keymap: str | None = None


class CharType(enum.Enum):
    """``<serial type='...'>`` / ``<console type='...'>``: the host side."""

    PTY = "pty"
    FILE = "file"
    UNIX = "unix"
    TCP = "tcp"


class SourceMode(enum.Enum):
    """``<source mode='...'>`` of a socket: listen or connect."""

    BIND = "bind"
    CONNECT = "connect"


class TcpProtocol(enum.Enum):
    """``<protocol type='...'/>`` of a TCP character device."""

    RAW = "raw"
    TELNET = "telnet"


@dataclass(frozen=True, kw_only=True)
class CharSource:
    """The host end of a character device.

    ``path`` is the pty (live data), file or unix socket; ``mode`` applies to sockets;
    ``host``, ``service`` and ``protocol`` to TCP.
    """

    path: str | None = None
    mode: SourceMode | None = None
    host: str | None = None
    service: int | None = None
    protocol: TcpProtocol | None = None


class SerialTargetType(enum.Enum):
    """``<serial><target type='...'>``: the serial port the guest sees."""

    ISA_SERIAL = "isa-serial"
    USB_SERIAL = "usb-serial"
    PCI_SERIAL = "pci-serial"
    SYSTEM_SERIAL = "system-serial"


class SerialTargetModel(enum.Enum):
    """``<serial><target><model name='...'/>``: the QEMU device of the port."""

    ISA_SERIAL = "isa-serial"
    USB_SERIAL = "usb-serial"
    PCI_SERIAL = "pci-serial"
    PL011 = "pl011"
    UART_16550A = "16550a"


@dataclass(frozen=True, kw_only=True)
class Serial:
    """``<serial>``."""

    type: CharType
    source: CharSource = CharSource()
    target_type: SerialTargetType | None = None
    target_port: int | None = None
    target_model: SerialTargetModel | None = None
    alias: str | None = None
    address: Address | None = None


class ConsoleTargetType(enum.Enum):
    """``<console><target type='...'>``: ``serial`` names a serial port, ``virtio`` is its own."""

    SERIAL = "serial"
    VIRTIO = "virtio"


@dataclass(frozen=True, kw_only=True)
class Console:
    """``<console>``. A ``serial`` console is another name for the serial port of that port."""

    type: CharType
    source: CharSource = CharSource()
    target_type: ConsoleTargetType | None = None
    target_port: int | None = None
    alias: str | None = None


class VideoModel(enum.Enum):
    """``<video><model type='...'>``."""

    VGA = "vga"
    CIRRUS = "cirrus"
    QXL = "qxl"
    VIRTIO = "virtio"
    BOCHS = "bochs"
    RAMFB = "ramfb"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Video:
    """``<video>``; sizes in KiB. ``model`` is ``None`` when ``<model>`` is not written."""

    model: VideoModel | None = None
    ram: int | None = None
    vram: int | None = None
    vgamem: int | None = None
    heads: int | None = None
    primary: bool | None = None
    alias: str | None = None
    address: Address | None = None


class InputType(enum.Enum):
    """``<input type='...'>``."""

    MOUSE = "mouse"
    KEYBOARD = "keyboard"
    TABLET = "tablet"


class InputBus(enum.Enum):
    """``<input bus='...'>``."""

    PS2 = "ps2"
    USB = "usb"
    VIRTIO = "virtio"


@dataclass(frozen=True, kw_only=True)
class Input:
    """``<input>``."""

    type: InputType
    bus: InputBus | None = None
    alias: str | None = None
    address: Address | None = None


class MemballoonModel(enum.Enum):
    """``<memballoon model='...'>``; ``none`` means no balloon."""

    VIRTIO = "virtio"
    VIRTIO_TRANSITIONAL = "virtio-transitional"
    VIRTIO_NON_TRANSITIONAL = "virtio-non-transitional"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class Memballoon:
    """``<memballoon>``; ``stats_period`` is ``<stats period='...'/>`` in seconds."""

    model: MemballoonModel
    autodeflate: bool | None = None
    stats_period: int | None = None
    alias: str | None = None
    address: Address | None = None


class RngModel(enum.Enum):
    """``<rng model='...'>``."""

    VIRTIO = "virtio"
    VIRTIO_TRANSITIONAL = "virtio-transitional"
    VIRTIO_NON_TRANSITIONAL = "virtio-non-transitional"


class RngBackend(enum.Enum):
    """``<backend model='...'>`` of an RNG."""

    RANDOM = "random"
    BUILTIN = "builtin"


@dataclass(frozen=True, kw_only=True)
class Rng:
    """``<rng>``: ``backend_path`` is the host device of a ``random`` backend."""

    model: RngModel
    backend: RngBackend
    backend_path: str | None = None
    rate_bytes: int | None = None
    rate_period: int | None = None
    alias: str | None = None
    address: Address | None = None


@dataclass(frozen=True, kw_only=True)
class Devices:
    """``<devices>``. ``memballoon`` is ``None`` when not written (libvirt then adds virtio)."""

    emulator: str | None = None
    disks: tuple[Disk, ...] = ()
    controllers: tuple[Controller, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    serials: tuple[Serial, ...] = ()
    consoles: tuple[Console, ...] = ()
    inputs: tuple[Input, ...] = ()
    graphics: tuple[Graphics, ...] = ()
    videos: tuple[Video, ...] = ()
    memballoon: Memballoon | None = None
    rngs: tuple[Rng, ...] = ()
