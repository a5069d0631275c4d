"""Formatting a :class:`Domain` as libvirt domain XML.

:func:`format_domain` is a pipeline: the flags pick the form (update-cpu, migratable or
inactive, without secrets), each a pure ``Domain -> Domain`` function, and the result is
written element by element in libvirt's order. ``<metadata>`` is written back verbatim.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from lxml import etree

import xmlsafe
from migrator.domain.addresses import (
    Address,
    DriveAddress,
    IsaAddress,
    PciAddress,
    UsbAddress,
    VirtioSerialAddress,
    address_type,
)
from migrator.domain.cpu_update import update_cpu
from migrator.domain.devices import (
    CharSource,
    CharType,
    Console,
    Controller,
    Devices,
    Disk,
    DiskType,
    Graphics,
    GraphicsType,
    Input,
    Interface,
    Memballoon,
    Rng,
    Serial,
    Video,
)
from migrator.domain.errors import InvalidDomainXML
from migrator.domain.flags import FormatFlag
from migrator.domain.forms import inactive, migratable, without_secrets
from migrator.domain.model import Clock, Cpu, Domain, Feature, Os

__all__ = ["format_cpu", "format_domain"]

_Value = str | int | enum.Enum | None
_INDENT = "  "
_NO_FLAGS = FormatFlag(0)
#: libvirt's spelling of "no port chosen yet" for autoport graphics.
_NO_PORT = -1


def format_domain(
    domain: Domain, *, flags: FormatFlag = _NO_FLAGS, host_cpu: Cpu | None = None
) -> str:
    """Return ``domain`` as libvirt domain XML, in the form ``flags`` ask for.

    ``host_cpu`` is the host CPU description that ``UPDATE_CPU`` expands a host-model CPU
    into; it is not used without that flag. Without ``SECURE`` passwords are left out.

    Raises:
        DomainError: ``UPDATE_CPU`` for a host-model CPU without ``host_cpu``.
        InvalidDomainXML: a text the record holds cannot be written as XML (control
            characters), or ``metadata`` is not a ``<metadata>`` element.
    """
    if FormatFlag.UPDATE_CPU in flags:
        domain = update_cpu(domain, host_cpu)
    if FormatFlag.MIGRATABLE in flags:
        domain = migratable(domain)
    elif FormatFlag.INACTIVE in flags:
        domain = inactive(domain)
    if FormatFlag.SECURE not in flags:
        domain = without_secrets(domain)
    try:
        root = _domain_element(domain)
    except ValueError as exc:
        raise InvalidDomainXML(f"cannot write domain {domain.name!r}: {exc}") from None
    return etree.tostring(root, encoding="unicode")


def format_cpu(cpu: Cpu) -> str:
    """Return ``cpu`` as a ``<cpu>`` element, as :func:`~migrator.domain.parse_cpu` reads it.

    Raises:
        InvalidDomainXML: a name cannot be written as XML.
    """
    root = etree.Element("cpu")
    try:
        _cpu_content(root, cpu)
    except ValueError as exc:
        raise InvalidDomainXML(f"cannot write CPU: {exc}") from None
    etree.indent(root, space=_INDENT)
    return etree.tostring(root, encoding="unicode")


# ------------------------------------------------------------------------------ helpers


def _sub(
    parent: etree._Element,
    tag: str,
    attributes: Mapping[str, _Value] | None = None,
    *,
    text: str | None = None,
) -> etree._Element:
    """Add child ``tag`` with the attributes that are not ``None``, in the given order."""
    element = etree.SubElement(parent, tag)
    for name, value in (attributes or {}).items():
        if value is not None:
            element.set(name, _text(value))
    if text is not None:
        element.text = text
    return element


def _text(value: str | int | enum.Enum) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def _on_off(value: bool | None) -> str | None:
    return None if value is None else ("on" if value else "off")


def _flag(parent: etree._Element, tag: str, present: bool) -> None:
    if present:
        _sub(parent, tag)


def _alias_and_address(parent: etree._Element, alias: str | None, address: Address | None) -> None:
    if alias is not None:
        _sub(parent, "alias", {"name": alias})
    if address is not None:
        _address(parent, address)


def _address(parent: etree._Element, address: Address) -> None:
    kind = address_type(address)
    match address:
        case PciAddress():
            _sub(
                parent,
                "address",
                {
                    "type": kind,
                    "domain": f"0x{address.domain:04x}",
                    "bus": f"0x{address.bus:02x}",
                    "slot": f"0x{address.slot:02x}",
                    "function": f"0x{address.function:x}",
                    "multifunction": _on_off(address.multifunction),
                },
            )
        case DriveAddress():
            _sub(
                parent,
                "address",
                {
                    "type": kind,
                    "controller": address.controller,
                    "bus": address.bus,
                    "target": address.target,
                    "unit": address.unit,
                },
            )
        case VirtioSerialAddress():
            _sub(
                parent,
                "address",
                {
                    "type": kind,
                    "controller": address.controller,
                    "bus": address.bus,
                    "port": address.port,
                },
            )
        case UsbAddress():
            _sub(parent, "address", {"type": kind, "bus": address.bus, "port": address.port})
        case IsaAddress():
            iobase = None if address.iobase is None else f"0x{address.iobase:x}"
            _sub(parent, "address", {"type": kind, "iobase": iobase, "irq": address.irq})


# ------------------------------------------------------------------------------- domain


def _domain_element(domain: Domain) -> etree._Element:
    root = etree.Element("domain")
    root.set("type", domain.type.value)
    if domain.id is not None:
        root.set("id", str(domain.id))
    _sub(root, "name", text=domain.name)
    _sub(root, "uuid", text=str(domain.uuid))
    if domain.title is not None:
        _sub(root, "title", text=domain.title)
    if domain.description is not None:
        _sub(root, "description", text=domain.description)
    # The metadata is written verbatim: a placeholder holds its place while the rest is
    # indented, then the element parsed from the record replaces it.
    placeholder = None if domain.metadata is None else _sub(root, "metadata")
    _sub(root, "memory", {"unit": "KiB"}, text=str(domain.memory_kib))
    if domain.current_memory_kib is not None:
        _sub(root, "currentMemory", {"unit": "KiB"}, text=str(domain.current_memory_kib))
    _sub(
        root,
        "vcpu",
        {"placement": domain.vcpu_placement, "current": domain.current_vcpus},
        text=str(domain.vcpus),
    )
    _os(root, domain.os)
    _features(root, domain.features)
    if domain.cpu is not None:
        _cpu_content(_sub(root, "cpu"), domain.cpu)
    if domain.clock is not None:
        _clock(root, domain.clock)
    for tag, action in (
        ("on_poweroff", domain.on_poweroff),
        ("on_reboot", domain.on_reboot),
        ("on_crash", domain.on_crash),
    ):
        if action is not None:
            _sub(root, tag, text=action.value)
    _devices(root, domain.devices)
    etree.indent(root, space=_INDENT)
    if placeholder is not None and domain.metadata is not None:
        metadata = _metadata(domain.metadata)
        metadata.tail = placeholder.tail
        root.replace(placeholder, metadata)
    return root


def _metadata(text: str) -> etree._Element:
    try:
        element = xmlsafe.parse_untrusted(text)
    except xmlsafe.UnsafeXMLError as exc:
        raise InvalidDomainXML(f"invalid metadata: {exc.reason}") from None
    if element.tag != "metadata":
        raise InvalidDomainXML(f"metadata must be a <metadata> element, not <{element.tag}>")
    return element


def _os(root: etree._Element, os: Os) -> None:
    element = _sub(root, "os")
    _sub(element, "type", {"arch": os.arch, "machine": os.machine}, text=os.type.value)
    for tag, value in (("kernel", os.kernel), ("initrd", os.initrd), ("cmdline", os.cmdline)):
        if value is not None:
            _sub(element, tag, text=value)
    for device in os.boot:
        _sub(element, "boot", {"dev": device})


def _features(root: etree._Element, features: frozenset[Feature]) -> None:
    if not features:
        return
    element = _sub(root, "features")
    for feature in Feature:
        _flag(element, feature.value, feature in features)


def _cpu_content(element: etree._Element, cpu: Cpu) -> None:
    element.set("mode", cpu.mode.value)
    for name, value in (("match", cpu.match), ("check", cpu.check)):
        if value is not None:
            element.set(name, value.value)
    migratable_flag = _on_off(cpu.migratable)
    if migratable_flag is not None:
        element.set("migratable", migratable_flag)
    if cpu.model is not None or cpu.fallback is not None:
        _sub(element, "model", {"fallback": cpu.fallback}, text=cpu.model)
    if cpu.vendor is not None:
        _sub(element, "vendor", text=cpu.vendor)
    topology = cpu.topology
    if topology is not None:
        _sub(
            element,
            "topology",
            {
                "sockets": topology.sockets,
                "dies": topology.dies,
                "clusters": topology.clusters,
                "cores": topology.cores,
                "threads": topology.threads,
            },
        )
    for feature in cpu.features:
        _sub(element, "feature", {"policy": feature.policy, "name": feature.name})


def _clock(root: etree._Element, clock: Clock) -> None:
    element = _sub(root, "clock", {"offset": clock.offset})
    for timer in clock.timers:
        _sub(
            element,
            "timer",
            {"name": timer.name, "tickpolicy": timer.tickpolicy, "present": _yes_no(timer.present)},
        )


# ------------------------------------------------------------------------------ devices


def _devices(root: etree._Element, devices: Devices) -> None:
    element = _sub(root, "devices")
    if devices.emulator is not None:
        _sub(element, "emulator", text=devices.emulator)
    for disk in devices.disks:
        _disk(element, disk)
    for controller in devices.controllers:
        _controller(element, controller)
    for interface in devices.interfaces:
        _interface(element, interface)
    for serial in devices.serials:
        _serial(element, serial)
    for console in devices.consoles:
        _console(element, console)
    for device in devices.inputs:
        _input(element, device)
    for graphics in devices.graphics:
        _graphics(element, graphics)
    for video in devices.videos:
        _video(element, video)
    if devices.memballoon is not None:
        _memballoon(element, devices.memballoon)
    for rng in devices.rngs:
        _rng(element, rng)


def _disk(parent: etree._Element, disk: Disk) -> None:
    element = _sub(parent, "disk", {"type": disk.type, "device": disk.device})
    if disk.format is not None or disk.cache is not None:
        _sub(element, "driver", {"name": "qemu", "type": disk.format, "cache": disk.cache})
    if disk.source_path is not None:
        attribute = "file" if disk.type is DiskType.FILE else "dev"
        _sub(element, "source", {attribute: disk.source_path})
    _sub(element, "target", {"dev": disk.target_dev, "bus": disk.target_bus})
    _flag(element, "readonly", disk.readonly)
    _flag(element, "shareable", disk.shareable)
    if disk.serial is not None:
        _sub(element, "serial", text=disk.serial)
    _alias_and_address(element, disk.alias, disk.address)


def _controller(parent: etree._Element, controller: Controller) -> None:
    element = _sub(
        parent,
        "controller",
        {
            "type": controller.type,
            "index": controller.index,
            "model": controller.model,
            "ports": controller.ports,
            "vectors": controller.vectors,
        },
    )
    if controller.model_name is not None:
        _sub(element, "model", {"name": controller.model_name})
    target = {
        "chassisNr": controller.target_chassis_nr,
        "chassis": controller.target_chassis,
        "port": None if controller.target_port is None else f"0x{controller.target_port:x}",
    }
    if any(value is not None for value in target.values()):
        _sub(element, "target", target)
    _alias_and_address(element, controller.alias, controller.address)


def _interface(parent: etree._Element, interface: Interface) -> None:
    element = _sub(parent, "interface", {"type": interface.type})
    _sub(element, "mac", {"address": interface.mac})
    if interface.source_network is not None or interface.source_bridge is not None:
        _sub(
            element,
            "source",
            {"network": interface.source_network, "bridge": interface.source_bridge},
        )
    if interface.target_dev is not None:
        _sub(element, "target", {"dev": interface.target_dev})
    if interface.model is not None:
        _sub(element, "model", {"type": interface.model})
    _alias_and_address(element, interface.alias, interface.address)


def _char_device(
    parent: etree._Element, tag: str, kind: CharType, source: CharSource
) -> etree._Element:
    tty = source.path if kind is CharType.PTY else None
    element = _sub(parent, tag, {"type": kind, "tty": tty})
    if any(value is not None for value in (source.path, source.host, source.service)):
        _sub(
            element,
            "source",
            {
                "mode": source.mode,
                "host": source.host,
                "service": source.service,
                "path": source.path,
            },
        )
    if source.protocol is not None:
        _sub(element, "protocol", {"type": source.protocol})
    return element


def _serial(parent: etree._Element, serial: Serial) -> None:
    element = _char_device(parent, "serial", serial.type, serial.source)
    if (
        serial.target_type is not None
        or serial.target_port is not None
        or serial.target_model is not None
    ):
        target = _sub(element, "target", {"type": serial.target_type, "port": serial.target_port})
        if serial.target_model is not None:
            _sub(target, "model", {"name": serial.target_model})
    _alias_and_address(element, serial.alias, serial.address)


def _console(parent: etree._Element, console: Console) -> None:
    element = _char_device(parent, "console", console.type, console.source)
    if console.target_type is not None or console.target_port is not None:
        _sub(element, "target", {"type": console.target_type, "port": console.target_port})
    _alias_and_address(element, console.alias, None)


def _input(parent: etree._Element, device: Input) -> None:
    element = _sub(parent, "input", {"type": device.type, "bus": device.bus})
    _alias_and_address(element, device.alias, device.address)


def _graphics(parent: etree._Element, graphics: Graphics) -> None:
    unchosen = _NO_PORT if graphics.autoport else None
    port = unchosen if graphics.port is None else graphics.port
    tls_port = None
    if graphics.type is GraphicsType.SPICE:
        tls_port = unchosen if graphics.tls_port is None else graphics.tls_port
    element = _sub(
        parent,
        "graphics",
        {
            "type": graphics.type,
            "port": port,
            "tlsPort": tls_port,
            "autoport": _yes_no(graphics.autoport),
            "listen": graphics.listen,
            "passwd": graphics.passwd,
            "keymap": graphics.keymap,
        },
    )
    if graphics.listen is not None:
        _sub(element, "listen", {"type": "address", "address": graphics.listen})


def _video(parent: etree._Element, video: Video) -> None:
    element = _sub(parent, "video")
    if video.model is not None:
        _sub(
            element,
            "model",
            {
                "type": video.model,
                "ram": video.ram,
                "vram": video.vram,
                "vgamem": video.vgamem,
                "heads": video.heads,
                "primary": _yes_no(video.primary),
            },
        )
    _alias_and_address(element, video.alias, video.address)


def _memballoon(parent: etree._Element, balloon: Memballoon) -> None:
    element = _sub(
        parent,
        "memballoon",
        {"model": balloon.model, "autodeflate": _on_off(balloon.autodeflate)},
    )
    if balloon.stats_period is not None:
        _sub(element, "stats", {"period": balloon.stats_period})
    _alias_and_address(element, balloon.alias, balloon.address)


def _rng(parent: etree._Element, rng: Rng) -> None:
    element = _sub(parent, "rng", {"model": rng.model})
    if rng.rate_bytes is not None:
        _sub(element, "rate", {"bytes": rng.rate_bytes, "period": rng.rate_period})
    _sub(element, "backend", {"model": rng.backend}, text=rng.backend_path)
    _alias_and_address(element, rng.alias, rng.address)
