"""Device addresses (``<address type='...'/>``): where a device sits on its bus.

Addresses are part of the guest ABI: the same device at another PCI slot is another guest.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Address",
    "AddressType",
    "DriveAddress",
    "IsaAddress",
    "PciAddress",
    "UsbAddress",
    "VirtioSerialAddress",
    "address_type",
    "describe_address",
]


class AddressType(enum.Enum):
    """The ``type`` attribute of ``<address>``."""

    PCI = "pci"
    DRIVE = "drive"
    VIRTIO_SERIAL = "virtio-serial"
    USB = "usb"
    ISA = "isa"


@dataclass(frozen=True, kw_only=True)
class PciAddress:
    """``<address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>``."""

    domain: int = 0
    bus: int = 0
    slot: int = 0
    function: int = 0
    multifunction: bool | None = None


@dataclass(frozen=True, kw_only=True)
class DriveAddress:
    """``<address type='drive' controller='0' bus='0' target='0' unit='0'/>``."""

    controller: int = 0
    bus: int = 0
    target: int = 0
    unit: int = 0


@dataclass(frozen=True, kw_only=True)
class VirtioSerialAddress:
    """``<address type='virtio-serial' controller='0' bus='0' port='1'/>``."""

    controller: int = 0
    bus: int = 0
    port: int = 0


@dataclass(frozen=True, kw_only=True)
class UsbAddress:
    """``<address type='usb' bus='0' port='1.2'/>``: ``port`` is a dotted hub path."""

    bus: int = 0
    port: str


@dataclass(frozen=True, kw_only=True)
class IsaAddress:
    """``<address type='isa' iobase='0x3f8' irq='4'/>``."""

    iobase: int | None = None
    irq: int | None = None


Address = PciAddress | DriveAddress | VirtioSerialAddress | UsbAddress | IsaAddress

_TYPES: dict[type[Address], AddressType] = {
    PciAddress: AddressType.PCI,
    DriveAddress: AddressType.DRIVE,
    VirtioSerialAddress: AddressType.VIRTIO_SERIAL,
    UsbAddress: AddressType.USB,
    IsaAddress: AddressType.ISA,
}


def address_type(address: Address) -> AddressType:
    """Return the ``type`` attribute that ``address`` is written with."""
    return _TYPES[type(address)]


def describe_address(address: Address) -> str:
    """Return ``address`` the way people write it: ``0000:00:02.0``, ``0:0:0:1``, ...."""
    match address:
        case PciAddress():
            text = f"{address.domain:04x}:{address.bus:02x}:{address.slot:02x}.{address.function:x}"
            return f"{text} (multifunction)" if address.multifunction else text
        case DriveAddress():
            return f"{address.controller}:{address.bus}:{address.target}:{address.unit}"
        case VirtioSerialAddress():
            return f"{address.controller}:{address.bus}:{address.port}"
        case UsbAddress():
            return f"{address.bus}:{address.port}"
        case IsaAddress():
            iobase = "-" if address.iobase is None else f"0x{address.iobase:x}"
            irq = "-" if address.irq is None else str(address.irq)
            return f"iobase={iobase} irq={irq}"
