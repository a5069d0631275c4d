"""Parsing: the full fixture, units, refusals by name, malformed values, hostile XML."""

from __future__ import annotations

import uuid

import pytest

from migrator.domain import (
    Arch,
    BootDevice,
    CharType,
    ClockOffset,
    ControllerModel,
    ControllerType,
    CpuFallback,
    CpuMatch,
    CpuMode,
    CpuTopology,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskFormat,
    DiskType,
    DomainError,
    DomainType,
    DriveAddress,
    Feature,
    FeaturePolicy,
    GraphicsType,
    InputBus,
    InputType,
    InterfaceModel,
    InterfaceType,
    InvalidDomainXML,
    LifecycleAction,
    MemballoonModel,
    PciAddress,
    PciModelName,
    RngBackend,
    SerialTargetModel,
    SerialTargetType,
    TickPolicy,
    TimerName,
    UnsupportedAttribute,
    UnsupportedElement,
    UnsupportedValue,
    UsbAddress,
    VcpuPlacement,
    VideoModel,
    memory_kib,
    parse_cpu,
    parse_domain,
)
from migrator.errors import MigratorError
from tests.domain.documents import fixture, minimal


def test_full_running_domain_parses() -> None:
    domain = parse_domain(fixture("running.xml"))

    assert (domain.type, domain.id, domain.name) == (DomainType.KVM, 7, "web-01")
    assert domain.uuid == uuid.UUID("4dea22b3-1d52-d8f3-2516-782e98ab3fa0")
    assert domain.title == "Web server 1"
    assert domain.description == "Front-end web server\nmanaged by the operations team"
    assert domain.metadata is not None
    assert domain.metadata.startswith(
        '<metadata xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">'
    )
    assert '<nova:flavor name="m1.small">' in domain.metadata
    assert (domain.memory_kib, domain.current_memory_kib) == (2 * 1024 * 1024, 1536 * 1024)
    assert (domain.vcpus, domain.current_vcpus) == (4, 2)
    assert domain.vcpu_placement is VcpuPlacement.STATIC

    os = domain.os
    assert (os.arch, os.machine) == (Arch.X86_64, "pc-q35-7.2")
    assert os.kernel == "/var/lib/migrator/boot/vmlinuz"
    assert os.initrd == "/var/lib/migrator/boot/initrd.img"
    assert os.cmdline == "console=ttyS0 root=/dev/vda1 rw"
    assert os.boot == (BootDevice.HD,)
    assert domain.features == {Feature.ACPI, Feature.APIC}

    cpu = domain.cpu
    assert cpu is not None
    assert (cpu.mode, cpu.match, cpu.model, cpu.fallback, cpu.vendor) == (
        CpuMode.CUSTOM,
        CpuMatch.EXACT,
        "Skylake-Client-IBRS",
        CpuFallback.FORBID,
        "Intel",
    )
    assert cpu.topology == CpuTopology(sockets=1, dies=1, clusters=1, cores=2, threads=2)
    assert [(f.name, f.policy) for f in cpu.features] == [
        ("ss", FeaturePolicy.REQUIRE),
        ("hle", FeaturePolicy.DISABLE),
    ]
    assert domain.clock is not None
    assert domain.clock.offset is ClockOffset.UTC
    assert [(t.name, t.tickpolicy, t.present) for t in domain.clock.timers] == [
        (TimerName.RTC, TickPolicy.CATCHUP, None),
        (TimerName.PIT, TickPolicy.DELAY, None),
        (TimerName.HPET, None, False),
    ]
    assert (domain.on_poweroff, domain.on_reboot, domain.on_crash) == (
        LifecycleAction.DESTROY,
        LifecycleAction.RESTART,
        LifecycleAction.DESTROY,
    )


def test_full_running_domain_devices() -> None:
    devices = parse_domain(fixture("running.xml")).devices

    assert devices.emulator == "/usr/bin/qemu-system-x86_64"
    root_disk, cdrom = devices.disks
    assert (root_disk.type, root_disk.device, root_disk.format, root_disk.cache) == (
        DiskType.FILE,
        DiskDevice.DISK,
        DiskFormat.QCOW2,
        DiskCache.NONE,
    )
    assert root_disk.source_path == "/var/lib/migrator/images/web-01.qcow2"
    assert (root_disk.target_dev, root_disk.target_bus) == ("vda", DiskBus.VIRTIO)
    assert (root_disk.serial, root_disk.alias) == ("web01-root", "virtio-disk0")
    assert root_disk.address == PciAddress(bus=4)
    assert (cdrom.device, cdrom.source_path, cdrom.readonly) == (DiskDevice.CDROM, None, True)
    assert cdrom.address == DriveAddress()

    assert [(c.type, c.index, c.model) for c in devices.controllers] == [
        (ControllerType.PCI, 0, ControllerModel.PCIE_ROOT),
        (ControllerType.PCI, 1, ControllerModel.PCIE_ROOT_PORT),
        (ControllerType.PCI, 2, ControllerModel.PCIE_ROOT_PORT),
        (ControllerType.SATA, 0, None),
        (ControllerType.USB, 0, ControllerModel.QEMU_XHCI),
        (ControllerType.VIRTIO_SERIAL, 0, None),
    ]
    port = devices.controllers[1]
    assert (port.model_name, port.target_chassis, port.target_port) == (
        PciModelName.PCIE_ROOT_PORT,
        1,
        0x10,
    )
    assert port.address == PciAddress(slot=2, multifunction=True)

    network, user = devices.interfaces
    assert (network.type, network.mac, network.model) == (
        InterfaceType.NETWORK,
        "52:54:00:6b:3c:58",
        InterfaceModel.VIRTIO,
    )
    assert (network.source_network, network.target_dev) == ("default", "vnet3")
    assert (user.type, user.model, user.source_network) == (
        InterfaceType.USER,
        InterfaceModel.E1000E,
        None,
    )

    (serial,) = devices.serials
    assert (serial.type, serial.source.path) == (CharType.PTY, "/dev/pts/3")
    assert (serial.target_type, serial.target_port, serial.target_model) == (
        SerialTargetType.ISA_SERIAL,
        0,
        SerialTargetModel.ISA_SERIAL,
    )
    (console,) = devices.consoles
    assert (console.source.path, console.target_port) == ("/dev/pts/3", 0)

    assert [(i.type, i.bus) for i in devices.inputs] == [
        (InputType.TABLET, InputBus.USB),
        (InputType.MOUSE, InputBus.PS2),
        (InputType.KEYBOARD, InputBus.PS2),
    ]
    assert devices.inputs[0].address == UsbAddress(bus=0, port="1")

    vnc, spice = devices.graphics
    assert (vnc.type, vnc.port, vnc.autoport, vnc.listen, vnc.passwd, vnc.keymap) == (
        GraphicsType.VNC,
        5900,
        True,
        "127.0.0.1",
        "vnc-s3cret",
        "en-us",
    )
    assert (spice.type, spice.port, spice.tls_port, spice.passwd) == (
        GraphicsType.SPICE,
        5901,
        5902,
        "spice-s3cret",
    )
    (video,) = devices.videos
    assert (video.model, video.ram, video.vram, video.vgamem, video.heads, video.primary) == (
        VideoModel.QXL,
        65536,
        65536,
        16384,
        1,
        True,
    )
    assert devices.memballoon is not None
    assert (devices.memballoon.model, devices.memballoon.stats_period) == (
        MemballoonModel.VIRTIO,
        10,
    )
    (rng,) = devices.rngs
    assert (rng.backend, rng.backend_path, rng.rate_bytes, rng.rate_period) == (
        RngBackend.RANDOM,
        "/dev/urandom",
        1024,
        1000,
    )


# ---------------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("value", "unit", "kib"),
    [
        ("1024", None, 1024),
        ("1", "b", 1),
        ("1025", "bytes", 2),
        ("3", "byte", 1),
        ("7", "k", 7),
        ("7", "KiB", 7),
        ("2048", "KB", 2000),
        ("1", "M", 1024),
        ("1", "MiB", 1024),
        ("1", "MB", 977),
        ("2", "G", 2 * 1024**2),
        ("2", "gib", 2 * 1024**2),
        ("1", "GB", 976563),
        ("1", "T", 1024**3),
        ("1", "TiB", 1024**3),
        ("1", "TB", 976562500),
        ("1", "P", 1024**4),
        ("1", "PiB", 1024**4),
        ("1", "PB", 976562500000),
        ("1", "E", 1024**5),
        ("4", "EiB", 4 * 1024**5),
        ("1", "EB", 976562500000000),
    ],
)
def test_memory_accepts_every_libvirt_unit(value: str, unit: str | None, kib: int) -> None:
    assert memory_kib(value, unit) == kib
    unit_attribute = "" if unit is None else f" unit='{unit}'"
    document = minimal().replace(
        "<memory unit='MiB'>512</memory>", f"<memory{unit_attribute}>{value}</memory>"
    )
    assert parse_domain(document).memory_kib == kib


@pytest.mark.parametrize(
    ("value", "unit", "reason"),
    [
        ("12", "zb", "unknown memory unit 'zb'"),
        ("12", "KiBi", "unknown memory unit"),
        ("1.5", "GiB", "invalid memory size"),
        ("-1", "KiB", "invalid memory size"),
        ("8", "EiB", "too large"),
    ],
)
def test_memory_refuses_bad_sizes(value: str, unit: str, reason: str) -> None:
    document = minimal().replace(
        "<memory unit='MiB'>512</memory>", f"<memory unit='{unit}'>{value}</memory>"
    )
    with pytest.raises(InvalidDomainXML, match=reason):
        parse_domain(document)


# ------------------------------------------------------------------- generated identity


def test_missing_uuid_and_mac_are_generated_from_entropy() -> None:
    document = minimal(devices="<interface type='user'><model type='virtio'/></interface>")
    document = document.replace("<uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>", "")
    counter = iter(range(256))

    def entropy(size: int) -> bytes:
        return bytes(next(counter) for _ in range(size))

    domain = parse_domain(document, entropy=entropy)
    assert domain.uuid == uuid.UUID(bytes=bytes(range(16)), version=4)
    assert domain.uuid.version == 4
    assert domain.devices.interfaces[0].mac == "52:54:00:10:11:12"


# -------------------------------------------------------------- refusals, named by name

UNSUPPORTED_ELEMENTS = [
    pytest.param(
        minimal(devices="<hostdev mode='subsystem' type='pci'/>"), "hostdev", id="hostdev"
    ),
    pytest.param(minimal(devices="<channel type='unix'/>"), "channel", id="channel"),
    pytest.param(minimal(devices="<sound model='ich9'/>"), "sound", id="sound"),
    pytest.param(minimal(devices="<watchdog model='i6300esb'/>"), "watchdog", id="watchdog"),
    pytest.param(minimal(devices="<filesystem type='mount'/>"), "filesystem", id="filesystem"),
    pytest.param(
        minimal(devices="<redirdev bus='usb' type='spicevmc'/>"), "redirdev", id="redirdev"
    ),
    pytest.param(minimal(devices="<tpm model='tpm-crb'/>"), "tpm", id="tpm"),
    pytest.param(minimal(devices="<audio id='1' type='none'/>"), "audio", id="audio"),
    pytest.param(minimal(devices="<parallel type='pty'/>"), "parallel", id="parallel"),
    pytest.param(minimal(devices="<panic model='isa'/>"), "panic", id="panic"),
    pytest.param(
        minimal(top="<memoryBacking><hugepages/></memoryBacking>"),
        "memoryBacking",
        id="memoryBacking",
    ),
    pytest.param(
        minimal(top="<maxMemory slots='16' unit='GiB'>8</maxMemory>"), "maxMemory", id="maxMemory"
    ),
    pytest.param(minimal(top="<cputune><shares>1024</shares></cputune>"), "cputune", id="cputune"),
    pytest.param(
        minimal(top="<numatune><memory mode='strict' nodeset='0'/></numatune>"),
        "numatune",
        id="numatune",
    ),
    pytest.param(minimal(top="<iothreads>2</iothreads>"), "iothreads", id="iothreads"),
    pytest.param(
        minimal(top="<seclabel type='dynamic' model='selinux'/>"), "seclabel", id="seclabel"
    ),
    pytest.param(minimal(top="<sysinfo type='smbios'/>"), "sysinfo", id="sysinfo"),
    pytest.param(
        minimal(top="<resource><partition>/machine</partition></resource>"),
        "resource",
        id="resource",
    ),
    pytest.param(
        minimal(
            root=" xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'",
            top="<qemu:commandline><qemu:arg value='-s'/></qemu:commandline>",
        ),
        "qemu:commandline",
        id="qemu-commandline",
    ),
    pytest.param(
        minimal(os="<loader readonly='yes' type='pflash'>/usr/share/OVMF.fd</loader>"),
        "loader",
        id="loader",
    ),
    pytest.param(minimal(os="<nvram>/var/lib/nvram.fd</nvram>"), "nvram", id="nvram"),
    pytest.param(
        minimal(top="<features><hyperv mode='custom'/></features>"), "hyperv", id="hyperv"
    ),
    pytest.param(minimal(top="<features><smm state='on'/></features>"), "smm", id="smm"),
    pytest.param(
        minimal(top="<cpu><numa><cell id='0' cpus='0' memory='1'/></numa></cpu>"),
        "numa",
        id="cpu-numa",
    ),
    pytest.param(
        minimal(
            devices="<disk type='file'><source file='/d.img'/><target dev='vda'/>"
            "<iotune><total_bytes_sec>1</total_bytes_sec></iotune></disk>"
        ),
        "iotune",
        id="disk-iotune",
    ),
    pytest.param(
        minimal(
            devices="<disk type='file'><source file='/d.img'/><target dev='vda'/>"
            "<encryption format='luks'/></disk>"
        ),
        "encryption",
        id="disk-encryption",
    ),
    pytest.param(
        minimal(devices="<interface type='user'><bandwidth/></interface>"),
        "bandwidth",
        id="bandwidth",
    ),
    pytest.param(
        minimal(devices="<interface type='user'><link state='down'/></interface>"),
        "link",
        id="link",
    ),
    pytest.param(
        minimal(devices="<graphics type='spice'><channel name='main' mode='secure'/></graphics>"),
        "channel",
        id="spice-channel",
    ),
]


@pytest.mark.parametrize(("document", "element"), UNSUPPORTED_ELEMENTS)
def test_unsupported_elements_are_refused_by_name(document: str, element: str) -> None:
    with pytest.raises(UnsupportedElement) as caught:
        parse_domain(document)
    assert caught.value.element == element
    assert str(caught.value) == f"unsupported element: {element}"
    assert type(caught.value) is UnsupportedElement


@pytest.mark.parametrize(
    ("document", "attribute"),
    [
        pytest.param(minimal().replace("<vcpu>", "<vcpu cpuset='0-1'>"), "cpuset", id="cpuset"),
        pytest.param(
            minimal().replace("<memory ", "<memory dumpCore='on' "), "dumpCore", id="dumpCore"
        ),
        pytest.param(minimal().replace("<os>", "<os firmware='efi'>"), "firmware", id="firmware"),
        pytest.param(
            minimal(
                devices="<disk type='file'><driver name='qemu' io='native'/>"
                "<source file='/d.img'/><target dev='vda'/></disk>"
            ),
            "io",
            id="disk-io",
        ),
        pytest.param(
            minimal(devices="<graphics type='vnc' passwdValidTo='2030-01-01T00:00:00'/>"),
            "passwdValidTo",
            id="passwdValidTo",
        ),
        pytest.param(
            minimal(
                devices="<disk type='file' device='cdrom'>"
                "<source file='/c.iso' startupPolicy='optional'/><target dev='sda'/></disk>"
            ),
            "startupPolicy",
            id="startupPolicy",
        ),
        pytest.param(
            minimal(
                devices="<interface type='network'>"
                "<source network='default' portgroup='x'/></interface>"
            ),
            "portgroup",
            id="portgroup",
        ),
        pytest.param(minimal(top="<features><apic eoi='on'/></features>"), "eoi", id="apic-eoi"),
    ],
)
def test_unsupported_attributes_are_refused_by_name(document: str, attribute: str) -> None:
    with pytest.raises(UnsupportedAttribute) as caught:
        parse_domain(document)
    assert caught.value.attribute == attribute
    assert f"unsupported attribute: {attribute} of " in str(caught.value)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(
            minimal(
                devices="<disk type='network'><source protocol='rbd'/><target dev='vda'/></disk>"
            ),
            "unsupported disk type 'network'",
            id="disk-network",
        ),
        pytest.param(
            minimal(devices="<disk type='file' device='lun'><target dev='sda'/></disk>"),
            "unsupported disk device 'lun'",
            id="disk-lun",
        ),
        pytest.param(
            minimal(
                devices="<disk type='file'><driver name='qemu' type='vmdk'/>"
                "<source file='/d.img'/><target dev='vda'/></disk>"
            ),
            "unsupported disk format 'vmdk'",
            id="disk-vmdk",
        ),
        pytest.param(
            minimal(
                devices="<disk type='file'><driver name='tap'/><source file='/d.img'/>"
                "<target dev='vda'/></disk>"
            ),
            "unsupported disk driver 'tap'",
            id="disk-driver",
        ),
        pytest.param(
            minimal().replace("type='kvm'", "type='xen'"), "unsupported domain type 'xen'", id="xen"
        ),
        pytest.param(
            minimal().replace(">hvm<", ">linux<"), "unsupported os type 'linux'", id="os-linux"
        ),
        pytest.param(
            minimal().replace("x86_64", "mips"), "unsupported architecture 'mips'", id="arch"
        ),
        pytest.param(
            minimal(top="<cpu mode='maximum'/>"), "unsupported CPU mode 'maximum'", id="cpu-maximum"
        ),
        pytest.param(
            minimal(devices="<interface type='vhostuser'/>"),
            "unsupported interface type 'vhostuser'",
            id="vhostuser",
        ),
        pytest.param(
            minimal(devices="<interface type='user'><model type='ne2k_pci'/></interface>"),
            "unsupported interface model 'ne2k_pci'",
            id="ne2k",
        ),
        pytest.param(
            minimal(devices="<graphics type='sdl'/>"), "unsupported graphics type 'sdl'", id="sdl"
        ),
        pytest.param(
            minimal(
                devices="<graphics type='vnc'><listen type='network' network='default'/></graphics>"
            ),
            "unsupported graphics listen type 'network'",
            id="listen-network",
        ),
        pytest.param(
            minimal(devices="<serial type='udp'/>"),
            "unsupported serial type 'udp'",
            id="serial-udp",
        ),
        pytest.param(
            minimal(devices="<video><model type='vmvga'/></video>"),
            "unsupported video model 'vmvga'",
            id="vmvga",
        ),
        pytest.param(
            minimal(devices="<controller type='usb' index='0' model='virtio-scsi'/>"),
            "unsupported usb controller model 'virtio-scsi'",
            id="usb-model",
        ),
        pytest.param(
            minimal(devices="<controller type='fdc' index='0'/>"),
            "unsupported controller type 'fdc'",
            id="fdc",
        ),
        pytest.param(
            minimal(devices="<rng model='virtio'><backend model='egd' type='tcp'/></rng>"),
            "unsupported rng backend 'egd'",
            id="rng-egd",
        ),
        pytest.param(
            minimal(
                devices="<memballoon model='virtio'><address type='ccw' cssid='0xfe'/></memballoon>"
            ),
            "unsupported address type 'ccw'",
            id="ccw",
        ),
        pytest.param(
            minimal(top="<on_crash>coredump-destroy</on_crash>"),
            "unsupported on_crash 'coredump-destroy'",
            id="coredump",
        ),
        pytest.param(
            minimal(top="<clock offset='variable' adjustment='10'/>"),
            "unsupported clock offset 'variable'",
            id="clock-variable",
        ),
    ],
)
def test_unsupported_values_are_refused_by_name(document: str, message: str) -> None:
    with pytest.raises(UnsupportedValue, match=f"^{message}$"):
        parse_domain(document)


# -------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        pytest.param(
            minimal().replace("<name>vm1</name>", ""), "missing domain name", id="no-name"
        ),
        pytest.param(minimal().replace("vm1", "a/b"), "cannot contain '/'", id="slash"),
        pytest.param(
            minimal(top="<title>a\nb</title>"), "title cannot contain a newline", id="title"
        ),
        pytest.param(minimal().replace("c7a5fdbd-edaf", "zz"), "invalid domain uuid", id="uuid"),
        pytest.param(
            minimal().replace("<memory unit='MiB'>512</memory>", ""),
            "missing memory",
            id="no-memory",
        ),
        pytest.param(
            minimal().replace("<vcpu>1</vcpu>", "<vcpu>0</vcpu>"), "vcpu count", id="vcpu0"
        ),
        pytest.param(
            minimal().replace("<vcpu>1</vcpu>", "<vcpu current='3'>2</vcpu>"),
            "current vcpu count 3 is above the maximum 2",
            id="current-vcpus",
        ),
        pytest.param(
            minimal(top="<currentMemory unit='GiB'>1</currentMemory>"),
            "current memory 1048576 KiB is above memory 524288 KiB",
            id="current-memory",
        ),
        pytest.param(
            minimal(top="<cpu><topology sockets='1' cores='2' threads='1'/></cpu>"),
            "CPU topology holds 2 vCPUs",
            id="topology",
        ),
        pytest.param(
            minimal(top="<cpu><vendor>Intel</vendor></cpu>"),
            "CPU vendor specified without CPU model",
            id="vendor",
        ),
        pytest.param(
            minimal(top="<cpu mode='custom' migratable='on'><model>qemu64</model></cpu>"),
            "only allowed for a host-passthrough",
            id="migratable",
        ),
        pytest.param(
            minimal(top="<cpu><model>x</model><feature name='a'/><feature name='a'/></cpu>"),
            "more than once",
            id="cpu-feature-twice",
        ),
        pytest.param(
            minimal(
                devices="<disk type='file'><source file='/a'/><target dev='vda'/></disk>"
                "<disk type='file'><source file='/b'/><target dev='vda'/></disk>"
            ),
            "disk target 'vda' is used more than once",
            id="disk-target-twice",
        ),
        pytest.param(
            minimal(devices="<disk type='file'><source file='a.img'/><target dev='vda'/></disk>"),
            "disk source must be an absolute path",
            id="relative-path",
        ),
        pytest.param(
            minimal(devices="<disk type='file'><target dev='vda'/></disk>"),
            "a disk device needs a source",
            id="disk-no-source",
        ),
        pytest.param(
            minimal(devices="<disk type='file'><source file='/a'/><target dev='xvda'/></disk>"),
            "unsupported disk target 'xvda'",
            id="xen-target",
        ),
        pytest.param(
            minimal(
                devices="<disk type='file'><source file='/a'/><target dev='vda'/>"
                "<readonly>yes</readonly></disk>"
            ),
            "unexpected text in element readonly",
            id="text",
        ),
        pytest.param(
            minimal(
                devices="<interface type='user'><mac address='52:54:00:zz:00:01'/></interface>"
            ),
            "invalid MAC address",
            id="mac",
        ),
        pytest.param(
            minimal(
                devices="<interface type='user'><mac address='01:00:5e:00:00:01'/></interface>"
            ),
            "expected a unicast MAC address",
            id="multicast-mac",
        ),
        pytest.param(
            minimal(devices="<interface type='bridge'/>"),
            "an interface of type bridge needs a source",
            id="bridge-source",
        ),
        pytest.param(
            minimal(devices="<graphics type='vnc' autoport='no'/>"),
            "need a port or autoport='yes'",
            id="vnc-no-port",
        ),
        pytest.param(
            minimal(
                devices="<console type='pty'/><console type='pty'><target type='serial'/></console>"
            ),
            "only the first console can be a serial port",
            id="second-serial-console",
        ),
        pytest.param(
            minimal(devices="<graphics type='vnc' port='5800'/>"),
            "must be 5900 to 65535",
            id="vnc-port",
        ),
        pytest.param(
            minimal(
                devices="<graphics type='vnc' listen='127.0.0.1'>"
                "<listen type='address' address='0.0.0.0'/></graphics>"
            ),
            "does not match listen address",
            id="listen-mismatch",
        ),
        pytest.param(
            minimal(devices="<graphics type='vnc' listen='1.2.3.4,to=99'/>"),
            "invalid listen address",
            id="listen-injection",
        ),
        pytest.param(
            minimal(devices="<controller type='pci' index='0' model='pcie-root-port'/>"),
            "index 0 cannot be model 'pcie-root-port'",
            id="pci-root",
        ),
        pytest.param(
            minimal(
                devices="<memballoon model='virtio'><address type='pci' slot='0x20'/></memballoon>"
            ),
            "is 32, above 31",
            id="pci-slot",
        ),
        pytest.param(minimal(devices="<serial type='file'/>"), "needs a source", id="serial-file"),
        pytest.param(
            minimal(
                devices="<serial type='pty' tty='/dev/pts/1'><source path='/dev/pts/2'/></serial>"
            ),
            "does not match tty",
            id="pty-tty",
        ),
    ],
)
def test_malformed_values_are_refused(document: str, reason: str) -> None:
    with pytest.raises(InvalidDomainXML, match=reason):
        parse_domain(document)


def test_errors_sit_under_the_project_root() -> None:
    with pytest.raises(MigratorError) as caught:
        parse_domain(minimal(devices="<hostdev/>"))
    assert isinstance(caught.value, UnsupportedElement)
    assert isinstance(caught.value, DomainError)
    assert caught.value.code == "unsupported-element"
    assert caught.value.path == "/domain/devices/hostdev"


def test_not_a_domain_document() -> None:
    with pytest.raises(InvalidDomainXML, match="expected a <domain> document, not <network>"):
        parse_domain("<network><name>default</name></network>")


# ---------------------------------------------------------------------------- hostile XML


def test_external_entity_is_refused_without_reading_the_file() -> None:
    document = (
        '<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<domain type='kvm'><name>&x;</name></domain>"
    )
    with pytest.raises(InvalidDomainXML, match="DOCTYPE") as caught:
        parse_domain(document)
    assert "root:" not in str(caught.value)


def test_billion_laughs_is_refused() -> None:
    levels = ['<!ENTITY l0 "lol">']
    levels += [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]
    document = f"<!DOCTYPE domain [{''.join(levels)}]><domain type='kvm'><name>&l9;</name></domain>"
    with pytest.raises(InvalidDomainXML):
        parse_domain(document)


def test_oversize_document_is_refused_before_parsing() -> None:
    document = minimal(top=f"<description>{'x' * 5000}</description>")
    with pytest.raises(InvalidDomainXML, match="over the limit of 4096"):
        parse_domain(document, max_bytes=4096)
    assert parse_domain(document).description == "x" * 5000


@pytest.mark.parametrize(("levels", "reason"), [(100, "nests deeper"), (300, "Excessive depth")])
def test_deep_nesting_is_refused(levels: int, reason: str) -> None:
    deep = "<a>" * levels + "</a>" * levels
    with pytest.raises(InvalidDomainXML, match=reason):
        parse_domain(minimal(top=f"<metadata><app:x xmlns:app='urn:a'>{deep}</app:x></metadata>"))


@pytest.mark.parametrize(
    "document", ["", "<domain", "<domain type='kvm'><name>x</nam></domain>", b"\xff\xfe"]
)
def test_malformed_xml_is_refused(document: str | bytes) -> None:
    with pytest.raises(InvalidDomainXML, match="invalid domain XML"):
        parse_domain(document)


# ---------------------------------------------------------------------------------- cpu


def test_host_cpu_description_parses() -> None:
    host = parse_cpu(
        "<cpu><model>Icelake-Server</model><vendor>Intel</vendor>"
        "<feature name='ss'/><feature policy='disable' name='hle'/></cpu>"
    )
    assert (host.mode, host.model, host.vendor) == (CpuMode.CUSTOM, "Icelake-Server", "Intel")
    assert [(f.name, f.policy) for f in host.features] == [
        ("ss", FeaturePolicy.REQUIRE),
        ("hle", FeaturePolicy.DISABLE),
    ]


def test_host_model_cpu_may_name_only_a_fallback() -> None:
    cpu = parse_domain(minimal(top="<cpu mode='host-model'><model fallback='allow'/></cpu>")).cpu
    assert cpu is not None
    assert (cpu.mode, cpu.model, cpu.fallback) == (CpuMode.HOST_MODEL, None, CpuFallback.ALLOW)
