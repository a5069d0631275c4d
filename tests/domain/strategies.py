"""Hypothesis strategies for valid domain definitions (records that the parser accepts)."""

from __future__ import annotations

import enum
import functools
import string

from hypothesis import strategies as st
from lxml import etree

from migrator.domain import (
    Address,
    Arch,
    BootDevice,
    CharSource,
    CharType,
    Clock,
    ClockOffset,
    Console,
    ConsoleTargetType,
    Controller,
    ControllerModel,
    ControllerType,
    Cpu,
    CpuCheck,
    CpuFallback,
    CpuFeature,
    CpuMatch,
    CpuMode,
    CpuTopology,
    Devices,
    Disk,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskFormat,
    DiskType,
    Domain,
    DomainType,
    DriveAddress,
    Feature,
    FeaturePolicy,
    Graphics,
    GraphicsType,
    Input,
    InputBus,
    InputType,
    Interface,
    InterfaceModel,
    InterfaceType,
    IsaAddress,
    LifecycleAction,
    Memballoon,
    MemballoonModel,
    Os,
    PciAddress,
    PciModelName,
    Rng,
    RngBackend,
    RngModel,
    Serial,
    SerialTargetModel,
    SerialTargetType,
    SourceMode,
    TcpProtocol,
    TickPolicy,
    Timer,
    TimerName,
    UsbAddress,
    VcpuPlacement,
    Video,
    VideoModel,
    VirtioSerialAddress,
)

# Printable text that XML carries unchanged (no carriage returns or other control
# characters), including characters that need escaping.
_TEXT_ALPHABET = string.ascii_letters + string.digits + " -_.,:;!?&<>'\"=/()[]éßλ中"
_LOWER = string.ascii_lowercase
_WORD = string.ascii_lowercase + string.digits + "_.-"


def _joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


def _word(alphabet: str = _WORD, *, min_size: int = 1, max_size: int = 8) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)


LINE = st.text(alphabet=_TEXT_ALPHABET, max_size=30)
MULTILINE = st.text(alphabet=_TEXT_ALPHABET + "\n\t", max_size=60)
NAME = _joined(
    st.sampled_from(string.ascii_letters + "é中&<"),
    st.text(alphabet=_TEXT_ALPHABET.replace("/", ""), max_size=15),
)
TOKEN = _joined(st.sampled_from(string.ascii_letters), _word(_WORD + "ABCXYZ", min_size=0))
PATH = st.lists(_word(_WORD + ","), min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
ALIAS = _joined(st.sampled_from(["", "ua-"]), _word(string.ascii_letters + string.digits + "_.-"))
IP = st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "192.0.2.10", "console.example.org"])


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


# Strategies built once: building them inside composite strategies on every draw is what
# makes generation slow.
@functools.cache
def each(kind: type[enum.Enum]) -> st.SearchStrategy:
    return st.sampled_from(kind)


@functools.cache
def maybe(kind: type[enum.Enum]) -> st.SearchStrategy:
    return optional(st.sampled_from(kind))


@functools.cache
def ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.cache
def maybe_ints(low: int, high: int) -> st.SearchStrategy[int | None]:
    return optional(st.integers(low, high))


BOOLEANS = st.booleans()
MAYBE_BOOLEANS = optional(st.booleans())
MAYBE_ALIAS = optional(ALIAS)
MAYBE_PATH = optional(PATH)
MAYBE_IP = optional(IP)
MAYBE_TOKEN = optional(TOKEN)
MAYBE_LINE = optional(LINE)
MAYBE_VENDOR = optional(st.sampled_from(["Intel", "AMD"]))
MAYBE_DISK_SERIAL = optional(_word(string.ascii_letters + string.digits + "_.+ -", min_size=0))
MAYBE_TAP = optional(st.sampled_from(["vnet0", "vnet12", "tap3", "tap-web"]))
MAYBE_PTY = optional(st.sampled_from(["/dev/pts/0", "/dev/pts/17"]))
MAYBE_KEYMAP = optional(st.sampled_from(["en-us", "de", "fr-ch"]))
MAYBE_RANDOM_DEVICE = optional(st.sampled_from(["/dev/urandom", "/dev/random"]))
_OCTETS = st.lists(st.integers(0, 255), min_size=5, max_size=5)
_UUIDS = st.uuids()
_MAYBE_MULTILINE = optional(MULTILINE)


# ------------------------------------------------------------------------------- parts

PCI_ADDRESSES = st.builds(
    PciAddress,
    domain=st.integers(0, 0xFFFF),
    bus=st.integers(0, 0xFF),
    slot=st.integers(0, 0x1F),
    function=st.integers(0, 7),
    multifunction=optional(st.booleans()),
)
ADDRESSES: st.SearchStrategy[Address] = st.one_of(
    PCI_ADDRESSES,
    st.builds(
        DriveAddress,
        controller=st.integers(0, 4),
        bus=st.integers(0, 4),
        target=st.integers(0, 4),
        unit=st.integers(0, 4),
    ),
    st.builds(
        VirtioSerialAddress,
        controller=st.integers(0, 4),
        bus=st.integers(0, 4),
        port=st.integers(0, 30),
    ),
    st.builds(
        UsbAddress,
        bus=st.integers(0, 4),
        port=st.lists(st.integers(1, 9), min_size=1, max_size=3).map(
            lambda hubs: ".".join(map(str, hubs))
        ),
    ),
    st.builds(
        IsaAddress, iobase=optional(st.integers(0, 0xFFFF)), irq=optional(st.integers(0, 15))
    ),
)


MAYBE_ADDRESS = optional(ADDRESSES)
MAYBE_PCI_ADDRESS = optional(PCI_ADDRESSES)


@st.composite
def macs(draw: st.DrawFn) -> str:
    first = draw(ints(0, 127)) * 2  # unicast
    rest = draw(_OCTETS)
    return ":".join(f"{octet:02x}" for octet in [first, *rest])


@st.composite
def metadata(draw: st.DrawFn) -> str:
    root = etree.Element("metadata")
    for index in range(draw(ints(1, 3))):
        item = etree.SubElement(
            root, f"{{urn:example:app{index}}}item", nsmap={"app": f"urn:example:app{index}"}
        )
        item.set("key", draw(LINE))
        item.text = draw(LINE) or None
    return etree.tostring(root, encoding="unicode")


_MAYBE_METADATA = optional(metadata())


# --------------------------------------------------------------------------------- cpu

FEATURES = st.lists(
    st.builds(CpuFeature, name=TOKEN, policy=st.sampled_from(FeaturePolicy)),
    max_size=4,
    unique_by=lambda feature: feature.name,
).map(tuple)
TOPOLOGIES = st.builds(
    CpuTopology,
    sockets=st.integers(1, 2),
    dies=st.integers(1, 2),
    clusters=st.integers(1, 2),
    cores=st.integers(1, 4),
    threads=st.integers(1, 2),
)


_MAYBE_TOPOLOGY = optional(TOPOLOGIES)


@functools.cache
@st.composite
def cpus(draw: st.DrawFn, *, topology: CpuTopology | None) -> Cpu:
    mode = draw(each(CpuMode))
    model = draw(MAYBE_TOKEN)
    if model is None and mode is not CpuMode.HOST_MODEL:
        fallback = None
    else:
        fallback = draw(maybe(CpuFallback))
    return Cpu(
        mode=mode,
        match=draw(maybe(CpuMatch)),
        check=draw(maybe(CpuCheck)),
        migratable=draw(MAYBE_BOOLEANS) if mode is CpuMode.HOST_PASSTHROUGH else None,
        model=model,
        fallback=fallback,
        vendor=None if model is None else draw(MAYBE_VENDOR),
        topology=topology,
        features=draw(FEATURES),
    )


CLOCKS = st.builds(
    Clock,
    offset=st.sampled_from(ClockOffset),
    timers=st.lists(
        st.builds(
            Timer,
            name=st.sampled_from(TimerName),
            present=optional(st.booleans()),
            tickpolicy=optional(st.sampled_from(TickPolicy)),
        ),
        max_size=3,
        unique_by=lambda timer: timer.name,
    ).map(tuple),
)

_MAYBE_CLOCK = optional(CLOCKS)


# ----------------------------------------------------------------------------- devices


@functools.cache
@st.composite
def disks(draw: st.DrawFn, *, target_dev: str) -> Disk:
    device = draw(each(DiskDevice))
    source = draw(PATH) if device is DiskDevice.DISK else draw(MAYBE_PATH)
    return Disk(
        type=draw(each(DiskType)),
        device=device,
        format=draw(maybe(DiskFormat)),
        cache=draw(maybe(DiskCache)),
        source_path=source,
        target_dev=target_dev,
        target_bus=draw(maybe(DiskBus)),
        readonly=draw(BOOLEANS),
        shareable=draw(BOOLEANS),
        serial=draw(MAYBE_DISK_SERIAL),
        alias=draw(MAYBE_ALIAS),
        address=draw(MAYBE_ADDRESS),
    )


TARGET_DEVS = st.lists(
    _joined(st.sampled_from(["vd", "sd", "hd"]), _word(_LOWER, max_size=2)), max_size=3, unique=True
)

_MODELS_BY_TYPE = {
    kind: optional(st.sampled_from(models)) if models else st.none()
    for kind, models in {
        ControllerType.PCI: [],
        ControllerType.USB: [
            ControllerModel.PIIX3_UHCI,
            ControllerModel.QEMU_XHCI,
            ControllerModel.ICH9_EHCI1,
            ControllerModel.NONE,
        ],
        ControllerType.SCSI: [ControllerModel.VIRTIO_SCSI, ControllerModel.LSILOGIC],
        ControllerType.SATA: [],
        ControllerType.IDE: [],
        ControllerType.VIRTIO_SERIAL: [],
    }.items()
}
_ROOTS = st.sampled_from([ControllerModel.PCI_ROOT, ControllerModel.PCIE_ROOT])
_PCI_NON_ROOT = st.sampled_from(
    [
        ControllerModel.PCIE_ROOT_PORT,
        ControllerModel.PCI_BRIDGE,
        ControllerModel.PCIE_TO_PCI_BRIDGE,
        ControllerModel.DMI_TO_PCI_BRIDGE,
    ]
)


@functools.cache
@st.composite
def controllers(draw: st.DrawFn, *, kind: ControllerType, index: int) -> Controller:
    alias = draw(MAYBE_ALIAS)
    address = draw(MAYBE_PCI_ADDRESS)
    if kind is ControllerType.PCI:
        if index == 0:
            model = draw(_ROOTS)
            return Controller(type=kind, index=0, model=model, alias=alias)
        return Controller(
            type=kind,
            index=index,
            model=draw(_PCI_NON_ROOT),
            model_name=draw(maybe(PciModelName)),
            target_chassis_nr=draw(maybe_ints(1, 255)),
            target_chassis=draw(maybe_ints(0, 255)),
            target_port=draw(maybe_ints(0, 255)),
            alias=alias,
            address=address,
        )
    model = draw(_MODELS_BY_TYPE[kind])
    virtio_serial = kind is ControllerType.VIRTIO_SERIAL
    return Controller(
        type=kind,
        index=index,
        model=model,
        ports=draw(maybe_ints(1, 31)) if virtio_serial else None,
        vectors=draw(maybe_ints(1, 1024)) if virtio_serial else None,
        alias=alias,
        address=address,
    )


CONTROLLER_KEYS = st.lists(
    st.tuples(st.sampled_from(ControllerType), st.integers(0, 3)), max_size=4, unique=True
)


@st.composite
def interfaces(draw: st.DrawFn) -> Interface:
    kind = draw(each(InterfaceType))
    return Interface(
        type=kind,
        mac=draw(macs()),
        model=draw(maybe(InterfaceModel)),
        source_network=draw(TOKEN) if kind is InterfaceType.NETWORK else None,
        source_bridge=f"br{draw(ints(0, 999))}" if kind is InterfaceType.BRIDGE else None,
        target_dev=draw(MAYBE_TAP),
        alias=draw(MAYBE_ALIAS),
        address=draw(MAYBE_PCI_ADDRESS),
    )


@functools.cache
@st.composite
def char_sources(draw: st.DrawFn, kind: CharType) -> CharSource:
    match kind:
        case CharType.PTY:
            return CharSource(path=draw(MAYBE_PTY))
        case CharType.FILE:
            return CharSource(path=draw(PATH))
        case CharType.UNIX:
            return CharSource(path=draw(PATH), mode=draw(maybe(SourceMode)))
        case CharType.TCP:
            return CharSource(
                host=draw(MAYBE_IP),
                service=draw(ints(1, 65535)),
                mode=draw(maybe(SourceMode)),
                protocol=draw(maybe(TcpProtocol)),
            )


@functools.cache
@st.composite
def serials(draw: st.DrawFn, *, port: int | None) -> Serial:
    kind = draw(each(CharType))
    return Serial(
        type=kind,
        source=draw(char_sources(kind)),
        target_type=draw(maybe(SerialTargetType)),
        target_port=port,
        target_model=draw(maybe(SerialTargetModel)),
        alias=draw(MAYBE_ALIAS),
        address=draw(MAYBE_ADDRESS),
    )


_CONSOLE_TARGETS = {
    True: maybe(ConsoleTargetType),
    False: optional(st.just(ConsoleTargetType.VIRTIO)),
}


@functools.cache
@st.composite
def consoles(draw: st.DrawFn, *, port: int | None, first: bool) -> Console:
    kind = draw(each(CharType))
    return Console(
        type=kind,
        source=draw(char_sources(kind)),
        target_type=draw(_CONSOLE_TARGETS[first]),
        target_port=port,
        alias=draw(MAYBE_ALIAS),
    )


PORTS = st.lists(optional(st.integers(0, 8)), max_size=3).filter(
    lambda ports: (
        len([p for p in ports if p is not None]) == len({p for p in ports if p is not None})
    )
)


@st.composite
def graphics(draw: st.DrawFn) -> Graphics:
    kind = draw(each(GraphicsType))
    autoport = draw(BOOLEANS)
    lowest = 5900 if kind is GraphicsType.VNC else 1
    port = draw(maybe_ints(lowest, 65535))
    tls_port = draw(maybe_ints(1, 65535)) if kind is GraphicsType.SPICE else None
    if not autoport and port is None and tls_port is None:
        port = lowest
    return Graphics(
        type=kind,
        port=port,
        autoport=autoport,
        tls_port=tls_port,
        listen=draw(MAYBE_IP),
        passwd=draw(MAYBE_LINE),
        keymap=draw(MAYBE_KEYMAP),
    )


@st.composite
def videos(draw: st.DrawFn) -> Video:
    model = draw(maybe(VideoModel))
    alias, address = draw(MAYBE_ALIAS), draw(MAYBE_PCI_ADDRESS)
    if model is None:
        return Video(alias=alias, address=address)
    size = optional(st.integers(1, 262144))
    return Video(
        model=model,
        ram=draw(size),
        vram=draw(size),
        vgamem=draw(size),
        heads=draw(maybe_ints(1, 4)),
        primary=draw(MAYBE_BOOLEANS),
        alias=alias,
        address=address,
    )


INPUTS = st.builds(
    Input,
    type=st.sampled_from(InputType),
    bus=optional(st.sampled_from(InputBus)),
    alias=optional(ALIAS),
    address=optional(ADDRESSES),
)


@st.composite
def memballoons(draw: st.DrawFn) -> Memballoon:
    model = draw(each(MemballoonModel))
    if model is MemballoonModel.NONE:
        return Memballoon(model=model, alias=draw(MAYBE_ALIAS))
    return Memballoon(
        model=model,
        autodeflate=draw(MAYBE_BOOLEANS),
        stats_period=draw(maybe_ints(0, 60)),
        alias=draw(MAYBE_ALIAS),
        address=draw(MAYBE_PCI_ADDRESS),
    )


@st.composite
def rngs(draw: st.DrawFn) -> Rng:
    backend = draw(each(RngBackend))
    rate_bytes = draw(maybe_ints(1, 1 << 20))
    return Rng(
        model=draw(each(RngModel)),
        backend=backend,
        backend_path=draw(MAYBE_RANDOM_DEVICE) if backend is RngBackend.RANDOM else None,
        rate_bytes=rate_bytes,
        rate_period=None if rate_bytes is None else draw(maybe_ints(1, 10000)),
        alias=draw(MAYBE_ALIAS),
        address=draw(MAYBE_PCI_ADDRESS),
    )


_INTERFACE_LISTS = st.lists(interfaces(), max_size=2)
_INPUT_LISTS = st.lists(INPUTS, max_size=3)
_GRAPHICS_LISTS = st.lists(graphics(), max_size=2)
_VIDEO_LISTS = st.lists(videos(), max_size=2)
_MAYBE_BALLOON = optional(memballoons())
_RNG_LISTS = st.lists(rngs(), max_size=2)


@st.composite
def devices(draw: st.DrawFn) -> Devices:
    return Devices(
        emulator=draw(MAYBE_PATH),
        disks=tuple(draw(disks(target_dev=dev)) for dev in draw(TARGET_DEVS)),
        controllers=tuple(
            draw(controllers(kind=kind, index=index)) for kind, index in draw(CONTROLLER_KEYS)
        ),
        interfaces=tuple(draw(_INTERFACE_LISTS)),
        serials=tuple(draw(serials(port=port)) for port in draw(PORTS)),
        consoles=tuple(
            draw(consoles(port=port, first=index == 0)) for index, port in enumerate(draw(PORTS))
        ),
        inputs=tuple(draw(_INPUT_LISTS)),
        graphics=tuple(draw(_GRAPHICS_LISTS)),
        videos=tuple(draw(_VIDEO_LISTS)),
        memballoon=draw(_MAYBE_BALLOON),
        rngs=tuple(draw(_RNG_LISTS)),
    )


# ------------------------------------------------------------------------------ domain


_BOOT_LISTS = st.lists(st.sampled_from(BootDevice), max_size=3, unique=True)
_FEATURE_SETS = st.frozensets(st.sampled_from(Feature))


@st.composite
def domains(draw: st.DrawFn) -> Domain:
    topology = draw(_MAYBE_TOPOLOGY)
    vcpus = topology.vcpus if topology is not None else draw(ints(1, 64))
    memory = draw(ints(1, 1 << 40))
    kernel = draw(MAYBE_PATH)
    return Domain(
        type=draw(each(DomainType)),
        name=draw(NAME),
        uuid=draw(_UUIDS),
        id=draw(maybe_ints(1, 10000)),
        title=draw(MAYBE_LINE),
        description=draw(_MAYBE_MULTILINE),
        metadata=draw(_MAYBE_METADATA),
        memory_kib=memory,
        current_memory_kib=draw(maybe_ints(1, memory)),
        vcpus=vcpus,
        current_vcpus=draw(maybe_ints(1, vcpus)),
        vcpu_placement=draw(maybe(VcpuPlacement)),
        os=Os(
            arch=draw(maybe(Arch)),
            machine=draw(
                optional(st.sampled_from(["pc-q35-7.2", "q35", "pc", "pc-i440fx-7.2", "virt"]))
            ),
            kernel=kernel,
            initrd=None if kernel is None else draw(MAYBE_PATH),
            cmdline=None if kernel is None else draw(MAYBE_LINE),
            boot=tuple(draw(_BOOT_LISTS)),
        ),
        features=draw(_FEATURE_SETS),
        cpu=draw(optional(cpus(topology=topology))),
        clock=draw(_MAYBE_CLOCK),
        on_poweroff=draw(maybe(LifecycleAction)),
        on_reboot=draw(maybe(LifecycleAction)),
        on_crash=draw(maybe(LifecycleAction)),
        devices=draw(devices()),
    )


# -------------------------------------------------------------------- ABI-rich domains


@st.composite
def abi_domains(draw: st.DrawFn) -> Domain:
    """Domains with one device of each kind, every one with its ABI fields set.

    With one device per kind, a change to one field shows up at that field and nowhere
    else, which is what the ABI mutation properties check.
    """
    topology = draw(TOPOLOGIES)
    features = draw(FEATURES.filter(lambda found: len(found) >= 1))
    devices = Devices(
        disks=(
            Disk(
                type=DiskType.FILE,
                source_path=draw(PATH),
                target_dev="vda",
                target_bus=DiskBus.VIRTIO,
                serial="root-disk",
                alias=draw(MAYBE_ALIAS),
                address=draw(PCI_ADDRESSES),
            ),
        ),
        controllers=(
            Controller(
                type=ControllerType.PCI,
                index=1,
                model=ControllerModel.PCIE_ROOT_PORT,
                model_name=PciModelName.PCIE_ROOT_PORT,
                target_chassis=1,
                target_port=0x10,
                address=draw(PCI_ADDRESSES),
            ),
        ),
        interfaces=(
            Interface(
                type=InterfaceType.NETWORK,
                mac=draw(macs()),
                model=InterfaceModel.VIRTIO,
                source_network="default",
                address=draw(PCI_ADDRESSES),
            ),
        ),
        serials=(
            Serial(
                type=CharType.PTY,
                target_type=SerialTargetType.ISA_SERIAL,
                target_port=0,
                target_model=SerialTargetModel.ISA_SERIAL,
            ),
        ),
        consoles=(Console(type=CharType.PTY, target_type=ConsoleTargetType.VIRTIO, target_port=1),),
        inputs=(Input(type=InputType.TABLET, bus=InputBus.USB, address=UsbAddress(port="1")),),
        graphics=(draw(graphics()),),
        videos=(
            Video(
                model=VideoModel.QXL,
                ram=65536,
                vram=65536,
                vgamem=16384,
                heads=1,
                primary=True,
                address=draw(PCI_ADDRESSES),
            ),
        ),
        memballoon=Memballoon(
            model=MemballoonModel.VIRTIO, autodeflate=False, address=draw(PCI_ADDRESSES)
        ),
        rngs=(
            Rng(
                model=RngModel.VIRTIO,
                backend=RngBackend.RANDOM,
                backend_path="/dev/urandom",
                address=draw(PCI_ADDRESSES),
            ),
        ),
    )
    memory = draw(ints(1, 1 << 40))
    return Domain(
        type=draw(each(DomainType)),
        name=draw(NAME),
        uuid=draw(_UUIDS),
        title=draw(MAYBE_LINE),
        memory_kib=memory,
        vcpus=topology.vcpus,
        os=Os(arch=Arch.X86_64, machine="pc-q35-7.2", boot=(BootDevice.HD,)),
        features=draw(_FEATURE_SETS),
        cpu=Cpu(model=draw(TOKEN), vendor="Intel", topology=topology, features=features),
        clock=Clock(timers=(Timer(name=TimerName.RTC, tickpolicy=TickPolicy.CATCHUP),)),
        devices=devices,
    )
