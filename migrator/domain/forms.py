"""The forms a definition is written in: inactive, migratable (canonical), without secrets.

Each is a pure function from a :class:`Domain` to a :class:`Domain`; formatting with
:class:`~migrator.domain.flags.FormatFlag` applies them, and the ABI check compares two
definitions only in the migratable form, so that two ways of writing one guest compare
equal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TypeVar

from migrator.domain.addresses import Address, PciAddress
from migrator.domain.defaults import disk_bus, serial_defaults, with_defaults
from migrator.domain.devices import (
    ROOT_MODELS,
    CharSource,
    CharType,
    Console,
    ConsoleTargetType,
    Controller,
    ControllerType,
    Devices,
    Disk,
    Graphics,
    Input,
    InputBus,
    InputType,
    Interface,
    Memballoon,
    Rng,
    Serial,
    Video,
)
from migrator.domain.model import Arch, Cpu, CpuMode, Domain

__all__ = [
    "AUTO_NETDEV_PREFIXES",
    "USER_ALIAS_PREFIX",
    "inactive",
    "migratable",
    "without_secrets",
]

#: Aliases starting with this are the user's own; libvirt keeps them in every form.
USER_ALIAS_PREFIX = "ua-"

#: Tap device names libvirt generates at start; they are live data.
AUTO_NETDEV_PREFIXES = ("vnet", "macvtap", "macvlan")

D = TypeVar("D", Disk, Controller, Interface, Serial, Console, Input, Video, Memballoon, Rng)

_Q35 = re.compile(r"q35|pc-q35-.*")
_I440FX = re.compile(r"pc|pc-i440fx-.*|pc-[0-9].*")

#: Controllers a machine has built in, at their fixed address: writing them or not is the
#: same guest.
_BUILTIN_CONTROLLERS: tuple[tuple[re.Pattern[str], ControllerType, PciAddress], ...] = (
    (_Q35, ControllerType.SATA, PciAddress(bus=0, slot=0x1F, function=2)),
    (_I440FX, ControllerType.IDE, PciAddress(bus=0, slot=1, function=1)),
)


def inactive(domain: Domain) -> Domain:
    """Return ``domain`` without the data that only a running domain has.

    Drops the domain id, the ports of autoport graphics, pty paths, aliases libvirt
    generated (``ua-`` aliases stay), generated tap device names, and the host details
    (model, vendor, match, fallback) that older libvirt wrote into a host-passthrough CPU.
    """
    devices = domain.devices
    return replace(
        domain,
        id=None,
        cpu=None if domain.cpu is None else _without_host_details(domain.cpu),
        devices=replace(
            devices,
            disks=tuple(_without_generated_alias(disk) for disk in devices.disks),
            controllers=tuple(_without_generated_alias(c) for c in devices.controllers),
            interfaces=tuple(
                _without_generated_alias(replace(i, target_dev=_user_netdev(i.target_dev)))
                for i in devices.interfaces
            ),
            serials=tuple(
                _without_generated_alias(replace(s, source=_without_pty(s.type, s.source)))
                for s in devices.serials
            ),
            consoles=tuple(
                _without_generated_alias(replace(c, source=_without_pty(c.type, c.source)))
                for c in devices.consoles
            ),
            inputs=tuple(_without_generated_alias(device) for device in devices.inputs),
            graphics=tuple(_without_chosen_ports(graphics) for graphics in devices.graphics),
            videos=tuple(_without_generated_alias(video) for video in devices.videos),
            memballoon=None
            if devices.memballoon is None
            else _without_generated_alias(devices.memballoon),
            rngs=tuple(_without_generated_alias(rng) for rng in devices.rngs),
        ),
    )


def migratable(domain: Domain) -> Domain:
    """Return the canonical form of ``domain``: the one both sides of an ABI check are in.

    It is the :func:`inactive` form with libvirt's defaults written out
    (:func:`~migrator.domain.defaults.with_defaults`), without the devices a machine has
    anyway (the PCI root, the default USB controller, the built-in SATA or IDE controller,
    PS/2 input), with consoles that only name a serial port folded into that port, and
    with everything whose order does not matter in one order. Two definitions of one guest
    have the same migratable form, and ``migratable(migratable(d)) == migratable(d)``.
    """
    canonical = with_defaults(inactive(domain))
    devices = _fold_serial_consoles(canonical.devices, canonical.os.arch)
    cpu = canonical.cpu
    clock = canonical.clock
    return replace(
        canonical,
        cpu=None
        if cpu is None
        else replace(cpu, features=tuple(sorted(cpu.features, key=lambda f: f.name))),
        clock=None
        if clock is None
        else replace(clock, timers=tuple(sorted(clock.timers, key=lambda t: t.name.value))),
        devices=_canonical_devices(devices, canonical.os.machine),
    )


def without_secrets(domain: Domain) -> Domain:
    """Return ``domain`` without passwords (the graphics ``passwd``)."""
    devices = domain.devices
    return replace(
        domain,
        devices=replace(devices, graphics=tuple(replace(g, passwd=None) for g in devices.graphics)),
    )


# ---------------------------------------------------------------------------- inactive


def _without_generated_alias(device: D) -> D:
    alias = device.alias
    if alias is None or alias.startswith(USER_ALIAS_PREFIX):
        return device
    return replace(device, alias=None)


def _user_netdev(name: str | None) -> str | None:
    if name is None or name.startswith(AUTO_NETDEV_PREFIXES):
        return None
    return name


def _without_pty(kind: CharType, source: CharSource) -> CharSource:
    return replace(source, path=None) if kind is CharType.PTY else source


def _without_chosen_ports(graphics: Graphics) -> Graphics:
    if not graphics.autoport:
        return graphics
    return replace(graphics, port=None, tls_port=None)


def _without_host_details(cpu: Cpu) -> Cpu:
    if cpu.mode is not CpuMode.HOST_PASSTHROUGH:
        return cpu
    return replace(cpu, model=None, vendor=None, match=None, fallback=None)


# ---------------------------------------------------------------------------- canonical


def _fold_serial_consoles(devices: Devices, arch: Arch | None) -> Devices:
    """Drop the first console when it is another name for the first serial port.

    libvirt writes the first serial port twice, as ``<serial>`` and as a ``<console>`` with
    target type ``serial``; a definition may also write only that console, which then is
    serial port 0.
    """
    if not devices.consoles or devices.consoles[0].target_type is not ConsoleTargetType.SERIAL:
        return devices
    first, *others = devices.consoles
    serials = devices.serials
    if not serials:
        serials = (
            serial_defaults(Serial(type=first.type, source=first.source, target_port=0), arch),
        )
    return replace(devices, serials=serials, consoles=tuple(others))


def _canonical_devices(devices: Devices, machine: str | None) -> Devices:
    controllers = [c for c in devices.controllers if not _is_implicit(c, devices, machine)]
    return replace(
        devices,
        disks=_sorted_disks(
            replace(d, address=_canonical_address(d.address)) for d in devices.disks
        ),
        controllers=tuple(
            sorted(
                (replace(c, address=_canonical_address(c.address)) for c in controllers),
                key=lambda controller: (controller.type.value, controller.index),
            )
        ),
        interfaces=tuple(
            replace(i, mac=i.mac.lower(), address=_canonical_address(i.address))
            for i in devices.interfaces
        ),
        serials=tuple(
            sorted(
                (replace(s, address=_canonical_address(s.address)) for s in devices.serials),
                key=lambda serial: -1 if serial.target_port is None else serial.target_port,
            )
        ),
        consoles=tuple(
            sorted(
                devices.consoles,
                key=lambda console: -1 if console.target_port is None else console.target_port,
            )
        ),
        inputs=tuple(
            replace(device, address=_canonical_address(device.address))
            for device in devices.inputs
            if not _is_builtin_input(device)
        ),
        videos=tuple(replace(v, address=_canonical_address(v.address)) for v in devices.videos),
        memballoon=None
        if devices.memballoon is None
        else replace(devices.memballoon, address=_canonical_address(devices.memballoon.address)),
        rngs=tuple(replace(r, address=_canonical_address(r.address)) for r in devices.rngs),
    )


def _sorted_disks(disks: Iterable[Disk]) -> tuple[Disk, ...]:
    """Order disks as libvirt does: buses in the order they first appear, names within a bus.

    Within a bus ``vdb`` comes before ``vdaa``, as the guest counts them.
    """
    listed = list(disks)
    buses = list(dict.fromkeys(disk_bus(disk) for disk in listed))
    return tuple(
        sorted(
            listed,
            key=lambda disk: (
                buses.index(disk_bus(disk)),
                len(disk.target_dev),
                disk.target_dev,
            ),
        )
    )


def _is_implicit(controller: Controller, devices: Devices, machine: str | None) -> bool:
    """Whether ``controller`` is one the machine has whether it is written or not."""
    if controller.alias is not None:
        return False
    if controller.type is ControllerType.PCI:
        return controller.index == 0 and controller.model in ROOT_MODELS
    if controller.type is ControllerType.USB:
        usb = [c for c in devices.controllers if c.type is ControllerType.USB]
        return usb == [controller] and controller.index == 0 and controller.model is None
    if machine is None or controller.index != 0:
        return False
    return any(
        pattern.fullmatch(machine) is not None
        and controller.type is kind
        and _canonical_address(controller.address) in (None, address)
        for pattern, kind, address in _BUILTIN_CONTROLLERS
    )


def _is_builtin_input(device: Input) -> bool:
    """PS/2 mouse and keyboard are part of the PC machine: writing them adds no device."""
    return device.bus is InputBus.PS2 and device.type in (InputType.MOUSE, InputType.KEYBOARD)


def _canonical_address(address: Address | None) -> Address | None:
    if isinstance(address, PciAddress) and not address.multifunction:
        return replace(address, multifunction=None)
    return address
