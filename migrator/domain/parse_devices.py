"""Parsing ``<devices>``: one function per device kind, all refusing what they do not know.

A device kind without a parser here is refused by name (``unsupported element: hostdev``),
and so is any attribute or child element a kind's parser does not read.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable

from migrator.domain.addresses import (
    Address,
    AddressType,
    DriveAddress,
    IsaAddress,
    PciAddress,
    UsbAddress,
    VirtioSerialAddress,
)
from migrator.domain.devices import (
    CONTROLLER_MODELS,
    ROOT_MODELS,
    CharSource,
    CharType,
    Console,
    ConsoleTargetType,
    Controller,
    ControllerModel,
    ControllerType,
    Devices,
    Disk,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskFormat,
    DiskType,
    Graphics,
    GraphicsType,
    Input,
    InputBus,
    InputType,
    Interface,
    InterfaceModel,
    InterfaceType,
    Memballoon,
    MemballoonModel,
    PciModelName,
    Rng,
    RngBackend,
    RngModel,
    Serial,
    SerialTargetModel,
    SerialTargetType,
    SourceMode,
    TcpProtocol,
    Video,
    VideoModel,
)
from migrator.domain.errors import UnsupportedElement, UnsupportedValue
from migrator.domain.reading import ElementReader, qualified_name, reading

__all__ = [
    "host_path",
    "parse_devices",
    "random_mac",
]

_TARGET_DEV = re.compile(r"(hd|sd|vd)[a-z]+", re.ASCII)
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", re.ASCII)
_ALIAS = re.compile(r"[A-Za-z0-9_.-]+", re.ASCII)
_DISK_SERIAL = re.compile(r"[A-Za-z0-9_.+ -]*", re.ASCII)
_NETDEV = re.compile(r"[A-Za-z0-9_.-]{1,15}", re.ASCII)
_NETWORK = re.compile(r"[^/\n]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9.-]+", re.ASCII)
_KEYMAP = re.compile(r"[A-Za-z_-]+", re.ASCII)
_USB_PORT = re.compile(r"[0-9]+(\.[0-9]+){0,4}", re.ASCII)


class _ListenType(enum.Enum):
    """``<listen type='...'>`` of graphics: only a plain address is run."""

    ADDRESS = "address"


_MAX_PORT = 65535
_VNC_BASE_PORT = 5900
#: libvirt's legacy spelling of "no port chosen yet".
_NO_PORT = "-1"
#: The OUI QEMU and libvirt generate MAC addresses in.
_QEMU_OUI = "52:54:00"
#: The only disk driver: QEMU's own block layer.
_QEMU_DRIVER = "qemu"


def host_path(reader: ElementReader, value: str, *, what: str) -> str:
    """Return ``value`` if it is an absolute path on the host.

    Raises:
        InvalidDomainXML: it is not.
    """
    if not value.startswith("/") or "\n" in value or "\0" in value:
        raise reader.invalid(f"{what} must be an absolute path, not '{value}'")
    return value


def random_mac(entropy: Callable[[int], bytes]) -> str:
    """Return a unicast MAC address in QEMU's OUI from three bytes of ``entropy``."""
    return _QEMU_OUI + "".join(f":{byte:02x}" for byte in entropy(3))


def parse_devices(devices: ElementReader, *, entropy: Callable[[int], bytes]) -> Devices:
    """Return the devices in ``<devices>``.

    ``entropy`` gives the random bytes of MAC addresses that are not written, as libvirt
    generates them.

    Raises:
        UnsupportedElement: a device kind, or part of a device, that migrator cannot run.
        InvalidDomainXML: a malformed or missing value, or duplicate targets.
    """
    emulator = devices.child_text("emulator")
    disks: list[Disk] = []
    controllers: list[Controller] = []
    interfaces: list[Interface] = []
    serials: list[Serial] = []
    consoles: list[Console] = []
    inputs: list[Input] = []
    graphics: list[Graphics] = []
    videos: list[Video] = []
    balloons: list[Memballoon] = []
    rngs: list[Rng] = []
    for child in devices.element.iterchildren():
        tag = qualified_name(child)
        if tag == "emulator":
            continue
        path = devices.child_path(child)
        devices.take(child)
        with reading(child, path) as reader:
            match tag:
                case "disk":
                    disks.append(_disk(reader))
                case "controller":
                    controllers.append(_controller(reader))
                case "interface":
                    interfaces.append(_interface(reader, entropy))
                case "serial":
                    serials.append(_serial(reader))
                case "console":
                    consoles.append(_console(reader))
                case "input":
                    inputs.append(_input(reader))
                case "graphics":
                    graphics.append(_graphics(reader))
                case "video":
                    videos.append(_video(reader))
                case "memballoon":
                    balloons.append(_memballoon(reader))
                case "rng":
                    rngs.append(_rng(reader))
                case _:
                    raise UnsupportedElement(tag, path=path)
    if len(balloons) > 1:
        raise devices.invalid("only one memballoon device is supported")
    parsed = Devices(
        emulator=None if emulator is None else host_path(devices, emulator, what="emulator"),
        disks=tuple(disks),
        controllers=tuple(controllers),
        interfaces=tuple(interfaces),
        serials=tuple(serials),
        consoles=tuple(consoles),
        inputs=tuple(inputs),
        graphics=tuple(graphics),
        videos=tuple(videos),
        memballoon=balloons[0] if balloons else None,
        rngs=tuple(rngs),
    )
    _check_unique(devices, parsed)
    return parsed


def _check_unique(devices: ElementReader, parsed: Devices) -> None:
    _refuse_duplicates(devices, [disk.target_dev for disk in parsed.disks], what="disk target")
    _refuse_duplicates(
        devices,
        [f"{c.type.value} index {c.index}" for c in parsed.controllers],
        what="controller",
    )
    _refuse_duplicates(
        devices,
        [str(s.target_port) for s in parsed.serials if s.target_port is not None],
        what="serial port",
    )
    _refuse_duplicates(
        devices,
        [str(c.target_port) for c in parsed.consoles if c.target_port is not None],
        what="console port",
    )
    if any(c.target_type is ConsoleTargetType.SERIAL for c in parsed.consoles[1:]):
        raise devices.invalid("only the first console can be a serial port")


def _refuse_duplicates(devices: ElementReader, values: list[str], *, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise devices.invalid(f"{what} '{value}' is used more than once")
        seen.add(value)


# ------------------------------------------------------------------------- common parts


def _alias(reader: ElementReader) -> str | None:
    with reader.read_child("alias") as alias:
        if alias is None:
            return None
        name = alias.required("name")
        if not _ALIAS.fullmatch(name):
            raise alias.invalid(f"invalid alias name '{name}'")
        return name


def _address(reader: ElementReader) -> Address | None:
    with reader.read_child("address") as address:
        if address is None:
            return None
        kind = address.to_enum(address.required("type"), AddressType, what="address type")
        match kind:
            case AddressType.PCI:
                return PciAddress(
                    domain=address.c_int_attribute("domain", maximum=0xFFFF) or 0,
                    bus=address.c_int_attribute("bus", maximum=0xFF) or 0,
                    slot=address.c_int_attribute("slot", maximum=0x1F) or 0,
                    function=address.c_int_attribute("function", maximum=0x7) or 0,
                    multifunction=address.on_off("multifunction"),
                )
            case AddressType.DRIVE:
                return DriveAddress(
                    controller=address.int_attribute("controller") or 0,
                    bus=address.int_attribute("bus") or 0,
                    target=address.int_attribute("target") or 0,
                    unit=address.int_attribute("unit") or 0,
                )
            case AddressType.VIRTIO_SERIAL:
                return VirtioSerialAddress(
                    controller=address.int_attribute("controller") or 0,
                    bus=address.int_attribute("bus") or 0,
                    port=address.int_attribute("port") or 0,
                )
            case AddressType.USB:
                port = address.required("port")
                if not _USB_PORT.fullmatch(port):
                    raise address.invalid(f"invalid USB port '{port}'")
                return UsbAddress(bus=address.int_attribute("bus") or 0, port=port)
            case AddressType.ISA:
                return IsaAddress(
                    iobase=address.c_int_attribute("iobase", maximum=0xFFFF),
                    irq=address.int_attribute("irq", maximum=255),
                )


# ------------------------------------------------------------------------------- disks


def _disk(reader: ElementReader) -> Disk:
    kind = reader.to_enum(reader.required("type"), DiskType, what="disk type")
    device = reader.enum_attribute("device", DiskDevice, what="disk device") or DiskDevice.DISK
    disk_format: DiskFormat | None = None
    cache: DiskCache | None = None
    with reader.read_child("driver") as driver:
        if driver is not None:
            name = driver.attribute("name")
            if name is not None and name != _QEMU_DRIVER:
                raise UnsupportedValue(
                    driver.name, what="disk driver", value=name, path=driver.path
                )
            disk_format = driver.enum_attribute("type", DiskFormat, what="disk format")
            cache = driver.enum_attribute("cache", DiskCache, what="disk cache mode")
    source_path = _disk_source(reader, kind)
    if source_path is None and device is DiskDevice.DISK:
        raise reader.invalid("a disk device needs a source")
    with reader.read_child("target") as target:
        if target is None:
            raise reader.invalid("missing target of disk")
        target_dev = target.required("dev")
        if not _TARGET_DEV.fullmatch(target_dev):
            raise target.invalid(f"unsupported disk target '{target_dev}'")
        target_bus = target.enum_attribute("bus", DiskBus, what="disk bus")
    serial = reader.child_text("serial")
    if serial is not None and not _DISK_SERIAL.fullmatch(serial):
        raise reader.invalid(f"disk serial '{serial}' contains invalid characters")
    return Disk(
        type=kind,
        device=device,
        format=disk_format,
        cache=cache,
        source_path=source_path,
        target_dev=target_dev,
        target_bus=target_bus,
        readonly=reader.flag("readonly"),
        shareable=reader.flag("shareable"),
        serial=serial,
        alias=_alias(reader),
        address=_address(reader),
    )


def _disk_source(reader: ElementReader, kind: DiskType) -> str | None:
    with reader.read_child("source") as source:
        if source is None:
            return None
        attribute = "file" if kind is DiskType.FILE else "dev"
        return host_path(source, source.required(attribute), what="disk source")


# ------------------------------------------------------------------------- controllers


def _controller(reader: ElementReader) -> Controller:
    kind = reader.to_enum(reader.required("type"), ControllerType, what="controller type")
    index = reader.int_attribute("index", maximum=255)
    if index is None:
        raise reader.invalid("missing attribute 'index' of element controller")
    model = reader.enum_attribute("model", ControllerModel, what=f"{kind.value} controller model")
    if model is not None and model not in CONTROLLER_MODELS[kind]:
        raise UnsupportedValue(
            reader.name, what=f"{kind.value} controller model", value=model.value, path=reader.path
        )
    if kind is ControllerType.PCI:
        return _pci_controller(reader, index=index, model=model)
    ports = vectors = None
    if kind is ControllerType.VIRTIO_SERIAL:
        ports = reader.int_attribute("ports", minimum=1, maximum=31)
        vectors = reader.int_attribute("vectors", minimum=1, maximum=1024)
    return Controller(
        type=kind,
        index=index,
        model=model,
        ports=ports,
        vectors=vectors,
        alias=_alias(reader),
        address=_address(reader),
    )


def _pci_controller(
    reader: ElementReader, *, index: int, model: ControllerModel | None
) -> Controller:
    if model is None:
        raise reader.invalid("a pci controller needs a model")
    if (index == 0) != (model in ROOT_MODELS):
        raise reader.invalid(f"pci controller index {index} cannot be model '{model.value}'")
    model_name = None
    with reader.read_child("model") as name:
        if name is not None:
            model_name = name.to_enum(name.required("name"), PciModelName, what="pci model name")
    chassis_nr = chassis = port = None
    with reader.read_child("target") as target:
        if target is not None:
            chassis_nr = target.int_attribute("chassisNr", minimum=1, maximum=255)
            chassis = target.int_attribute("chassis", maximum=255)
            port = target.c_int_attribute("port", maximum=255)
    return Controller(
        type=ControllerType.PCI,
        index=index,
        model=model,
        model_name=model_name,
        target_chassis_nr=chassis_nr,
        target_chassis=chassis,
        target_port=port,
        alias=_alias(reader),
        address=_address(reader),
    )


# -------------------------------------------------------------------------- interfaces


def _interface(reader: ElementReader, entropy: Callable[[int], bytes]) -> Interface:
    kind = reader.to_enum(reader.required("type"), InterfaceType, what="interface type")
    with reader.read_child("mac") as mac_element:
        mac = random_mac(entropy) if mac_element is None else _mac(mac_element)
    network = bridge = None
    with reader.read_child("source") as source:
        if kind is not InterfaceType.USER and source is None:
            raise reader.invalid(f"an interface of type {kind.value} needs a source")
        if source is not None:
            if kind is InterfaceType.NETWORK:
                network = _checked(source, source.required("network"), _NETWORK, what="network")
            elif kind is InterfaceType.BRIDGE:
                bridge = _checked(source, source.required("bridge"), _NETDEV, what="bridge")
    target_dev = None
    with reader.read_child("target") as target:
        if target is not None:
            target_dev = _checked(target, target.required("dev"), _NETDEV, what="target device")
    model = None
    with reader.read_child("model") as model_element:
        if model_element is not None:
            model = model_element.to_enum(
                model_element.required("type"), InterfaceModel, what="interface model"
            )
    return Interface(
        type=kind,
        mac=mac,
        model=model,
        source_network=network,
        source_bridge=bridge,
        target_dev=target_dev,
        alias=_alias(reader),
        address=_address(reader),
    )


def _mac(reader: ElementReader) -> str:
    mac = reader.required("address")
    if not _MAC.fullmatch(mac):
        raise reader.invalid(f"invalid MAC address '{mac}'")
    if int(mac[:2], 16) & 1:
        raise reader.invalid(f"expected a unicast MAC address, not '{mac}'")
    return mac


def _checked(reader: ElementReader, value: str, pattern: re.Pattern[str], *, what: str) -> str:
    if not pattern.fullmatch(value):
        raise reader.invalid(f"invalid {what} '{value}'")
    return value


# ---------------------------------------------------------------- character devices


def _char_source(reader: ElementReader, kind: CharType) -> CharSource:
    """Read the host end of a serial port or console: ``<source>``, ``<protocol>``, ``tty``."""
    tty = reader.attribute("tty") if kind is CharType.PTY else None
    protocol = None
    if kind is CharType.TCP:
        with reader.read_child("protocol") as protocol_element:
            if protocol_element is not None:
                protocol = protocol_element.to_enum(
                    protocol_element.required("type"), TcpProtocol, what="serial protocol"
                )
    with reader.read_child("source") as source:
        if source is None:
            if kind is not CharType.PTY:
                raise reader.invalid(f"a {kind.value} {reader.name} needs a source")
            return CharSource(path=None if tty is None else host_path(reader, tty, what="tty"))
        match kind:
            case CharType.PTY:
                path = source.attribute("path")
                if path is not None and tty is not None and path != tty:
                    raise source.invalid(f"pty path '{path}' does not match tty '{tty}'")
                path = path or tty
                return CharSource(
                    path=None if path is None else host_path(source, path, what="pty")
                )
            case CharType.FILE:
                return CharSource(path=host_path(source, source.required("path"), what="file"))
            case CharType.UNIX:
                return CharSource(
                    path=host_path(source, source.required("path"), what="socket"),
                    mode=source.enum_attribute("mode", SourceMode, what="socket mode"),
                )
            case CharType.TCP:
                host = source.attribute("host")
                if host is not None:
                    host = _listen_address(source, host)
                service = source.int_attribute("service", minimum=1, maximum=_MAX_PORT)
                if service is None:
                    raise source.invalid("missing attribute 'service' of a tcp source")
                return CharSource(
                    host=host,
                    service=service,
                    mode=source.enum_attribute("mode", SourceMode, what="socket mode"),
                    protocol=protocol,
                )


def _serial(reader: ElementReader) -> Serial:
    kind = reader.to_enum(reader.required("type"), CharType, what="serial type")
    source = _char_source(reader, kind)
    target_type = target_port = target_model = None
    with reader.read_child("target") as target:
        if target is not None:
            target_type = target.enum_attribute("type", SerialTargetType, what="serial target type")
            target_port = target.int_attribute("port", maximum=255)
            with target.read_child("model") as model:
                if model is not None:
                    target_model = model.to_enum(
                        model.required("name"), SerialTargetModel, what="serial target model"
                    )
    return Serial(
        type=kind,
        source=source,
        target_type=target_type,
        target_port=target_port,
        target_model=target_model,
        alias=_alias(reader),
        address=_address(reader),
    )


def _console(reader: ElementReader) -> Console:
    kind = reader.to_enum(reader.required("type"), CharType, what="console type")
    source = _char_source(reader, kind)
    target_type = target_port = None
    with reader.read_child("target") as target:
        if target is not None:
            target_type = target.enum_attribute(
                "type", ConsoleTargetType, what="console target type"
            )
            target_port = target.int_attribute("port", maximum=255)
    return Console(
        type=kind,
        source=source,
        target_type=target_type,
        target_port=target_port,
        alias=_alias(reader),
    )


# --------------------------------------------------------------------------- graphics


def _graphics(reader: ElementReader) -> Graphics:
    kind = reader.to_enum(reader.required("type"), GraphicsType, what="graphics type")
    lowest = _VNC_BASE_PORT if kind is GraphicsType.VNC else 1
    port = _graphics_port(reader, "port", minimum=lowest)
    tls_port = _graphics_port(reader, "tlsPort", minimum=1) if kind is GraphicsType.SPICE else None
    autoport = reader.yes_no("autoport")
    if autoport is None:
        autoport = port is None and tls_port is None
    if not autoport and port is None and tls_port is None:
        raise reader.invalid(f"{kind.value} graphics need a port or autoport='yes'")
    keymap = reader.attribute("keymap")
    if keymap is not None and not _KEYMAP.fullmatch(keymap):
        raise reader.invalid(f"invalid keymap '{keymap}'")
    return Graphics(
        type=kind,
        port=port,
        autoport=autoport,
        tls_port=tls_port,
        listen=_graphics_listen(reader),
        passwd=reader.attribute("passwd"),
        keymap=keymap,
    )


def _graphics_port(reader: ElementReader, name: str, *, minimum: int) -> int | None:
    if reader.element.get(name) == _NO_PORT:
        reader.attribute(name)
        return None
    return reader.int_attribute(name, minimum=minimum, maximum=_MAX_PORT)


def _graphics_listen(reader: ElementReader) -> str | None:
    """Read the listen address, written as an attribute, a ``<listen>`` element, or both."""
    attribute = reader.attribute("listen")
    with reader.read_child("listen") as listen:
        element = None
        if listen is not None:
            listen.to_enum(listen.required("type"), _ListenType, what="graphics listen type")
            element = listen.attribute("address")
    if attribute is not None and element is not None and attribute != element:
        raise reader.invalid(
            f"graphics listen attribute '{attribute}' does not match listen address '{element}'"
        )
    address = attribute if attribute is not None else element
    return None if address is None else _listen_address(reader, address)


def _listen_address(reader: ElementReader, address: str) -> str:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not _HOSTNAME.fullmatch(address):
            raise reader.invalid(f"invalid listen address '{address}'") from None
    return address


# ---------------------------------------------------------------------- other devices


def _video(reader: ElementReader) -> Video:
    with reader.read_child("model") as model:
        if model is None:
            return Video(alias=_alias(reader), address=_address(reader))
        heads = model.int_attribute("heads", minimum=1, maximum=16)
        return Video(
            model=model.to_enum(model.required("type"), VideoModel, what="video model"),
            ram=model.int_attribute("ram", minimum=1),
            vram=model.int_attribute("vram", minimum=1),
            vgamem=model.int_attribute("vgamem", minimum=1),
            heads=heads,
            primary=model.yes_no("primary"),
            alias=_alias(reader),
            address=_address(reader),
        )


def _input(reader: ElementReader) -> Input:
    return Input(
        type=reader.to_enum(reader.required("type"), InputType, what="input type"),
        bus=reader.enum_attribute("bus", InputBus, what="input bus"),
        alias=_alias(reader),
        address=_address(reader),
    )


def _memballoon(reader: ElementReader) -> Memballoon:
    model = reader.to_enum(reader.required("model"), MemballoonModel, what="memballoon model")
    stats_period = None
    with reader.read_child("stats") as stats:
        if stats is not None:
            stats_period = stats.int_attribute("period")
    balloon = Memballoon(
        model=model,
        autodeflate=reader.on_off("autodeflate"),
        stats_period=stats_period,
        alias=_alias(reader),
        address=_address(reader),
    )
    if model is MemballoonModel.NONE and balloon != Memballoon(model=model, alias=balloon.alias):
        raise reader.invalid("memballoon model 'none' takes no settings or address")
    return balloon


def _rng(reader: ElementReader) -> Rng:
    model = reader.to_enum(reader.required("model"), RngModel, what="rng model")
    rate_bytes = rate_period = None
    with reader.read_child("rate") as rate:
        if rate is not None:
            rate_bytes = rate.int_attribute("bytes", minimum=1)
            if rate_bytes is None:
                raise rate.invalid("missing attribute 'bytes' of element rate")
            rate_period = rate.int_attribute("period", minimum=1)
    with reader.read_child("backend") as backend:
        if backend is None:
            raise reader.invalid("missing backend of rng")
        kind = backend.to_enum(backend.required("model"), RngBackend, what="rng backend")
        path = None
        if kind is RngBackend.RANDOM:
            text = backend.text().strip()
            path = host_path(backend, text, what="rng source") if text else None
    return Rng(
        model=model,
        backend=kind,
        backend_path=path,
        rate_bytes=rate_bytes,
        rate_period=rate_period,
        alias=_alias(reader),
        address=_address(reader),
    )
