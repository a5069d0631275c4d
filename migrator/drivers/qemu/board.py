"""The guest's buses: which controllers exist, what QEMU calls their buses, where devices sit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from migrator.domain import (
    Address,
    Controller,
    ControllerModel,
    ControllerType,
    Domain,
    DriveAddress,
    PciAddress,
    UsbAddress,
    describe_address,
)
from migrator.drivers.qemu.cmdline import Property
from migrator.drivers.qemu.errors import UnsupportedConfig


@dataclass(frozen=True)
class Board:
    """The machine's buses, as the device arguments need them.

    Attributes:
        q35: the machine is a q35 (PCI Express root, built-in SATA), not an i440fx ``pc``.
        controllers: the defined controllers by type and index.
        instance: the domain's name, for errors.
    """

    q35: bool
    controllers: Mapping[tuple[ControllerType, int], Controller]
    instance: str

    @classmethod
    def of(cls, domain: Domain) -> Board:
        machine = domain.os.machine or ""
        return cls(
            q35="q35" in machine,
            controllers={
                (controller.type, controller.index): controller
                for controller in domain.devices.controllers
            },
            instance=domain.name,
        )

    @property
    def root_bus(self) -> str:
        """QEMU's name of the root PCI bus."""
        return "pcie.0" if self.q35 else "pci.0"

    def refuse(self, item: str, message: str) -> UnsupportedConfig:
        return UnsupportedConfig(message, item=item, instance=self.instance)

    def controller(self, kind: ControllerType, index: int, *, needed_by: str) -> Controller:
        """The controller ``needed_by`` plugs into.

        Raises:
            UnsupportedConfig: the definition has no such controller.
        """
        found = self.controllers.get((kind, index))
        if found is None:
            raise self.refuse(
                needed_by, f"needs <controller type='{kind.value}' index='{index}'>, not defined"
            )
        return found

    def pci_bus(self, index: int) -> str:
        return self.root_bus if index == 0 else f"pci.{index}"

    def placement(self, address: Address | None, *, item: str) -> list[Property]:
        """``bus``/``addr`` of a PCI device at ``address`` (none: QEMU picks the slot).

        Raises:
            UnsupportedConfig: the address is not a PCI address in PCI domain 0.
        """
        if address is None:
            return []
        if not isinstance(address, PciAddress) or address.domain != 0:
            raise self.refuse(item, f"cannot place a PCI device at {describe_address(address)}")
        slot = f"0x{address.slot:x}" + (f".0x{address.function:x}" if address.function else "")
        placed: list[Property] = [("bus", self.pci_bus(address.bus)), ("addr", slot)]
        if address.multifunction:
            placed.append(("multifunction", True))
        return placed

    def usb_placement(self, address: Address | None, *, item: str) -> list[Property]:
        """``bus`` (and ``port``) of a USB device: on the controller its address names, else 0.

        Raises:
            UnsupportedConfig: no such USB controller, or it is ``none``, or the address is
                not a USB address.
        """
        if address is not None and not isinstance(address, UsbAddress):
            raise self.refuse(item, f"cannot place a USB device at {describe_address(address)}")
        index = 0 if address is None else address.bus
        controller = self.controller(ControllerType.USB, index, needed_by=item)
        if controller.model is ControllerModel.NONE:
            raise self.refuse(item, f"USB controller {index} is 'none'")
        placed: list[Property] = [("bus", f"{usb_controller_id(index)}.0")]
        if address is not None:
            placed.append(("port", address.port))
        return placed

    def drive_address(
        self, address: Address | None, *, item: str, default: DriveAddress
    ) -> DriveAddress:
        """A disk's drive address: the written one, else ``default``.

        Raises:
            UnsupportedConfig: the written address is not a drive address.
        """
        if address is None:
            return default
        if not isinstance(address, DriveAddress):
            raise self.refuse(item, f"cannot place a disk at {describe_address(address)}")
        return address


def usb_controller_id(index: int) -> str:
    """QEMU id of USB controller ``index`` (libvirt's names: ``usb``, ``usb1``, ...)."""
    return "usb" if index == 0 else f"usb{index}"
