"""The ABI stability check: reflexive, names every ABI difference, ignores the rest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.domain import (
    AbiMismatch,
    Arch,
    CharType,
    ClockOffset,
    Console,
    ConsoleTargetType,
    Controller,
    ControllerModel,
    ControllerType,
    CpuFeature,
    CpuMode,
    Disk,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskType,
    Domain,
    DomainType,
    DriveAddress,
    Feature,
    FeaturePolicy,
    FormatFlag,
    Input,
    InputBus,
    InputType,
    Interface,
    InterfaceModel,
    InterfaceType,
    LifecycleAction,
    MemballoonModel,
    PciAddress,
    Rng,
    RngBackend,
    RngModel,
    Serial,
    SerialTargetModel,
    SerialTargetType,
    Timer,
    TimerName,
    Video,
    VideoModel,
    check_abi_stability,
    compare_abi,
    format_domain,
    migratable,
    parse_domain,
)
from tests.domain.documents import fixture
from tests.domain.strategies import abi_domains, domains

Mutation = Callable[[Domain], Domain]


def _devices(domain: Domain, **changes: Any) -> Domain:
    return replace(domain, devices=replace(domain.devices, **changes))


def _cpu(domain: Domain, **changes: Any) -> Domain:
    assert domain.cpu is not None
    return replace(domain, cpu=replace(domain.cpu, **changes))


def _topology(domain: Domain, part: str) -> Domain:
    assert domain.cpu is not None and domain.cpu.topology is not None
    topology = domain.cpu.topology
    return _cpu(domain, topology=replace(topology, **{part: getattr(topology, part) + 1}))


def _moved(address: object) -> PciAddress:
    assert isinstance(address, PciAddress)
    return replace(address, slot=(address.slot + 1) % 32)


def _disk(domain: Domain, **changes: Any) -> Domain:
    return _devices(domain, disks=(replace(domain.devices.disks[0], **changes),))


def _controller(domain: Domain, **changes: Any) -> Domain:
    return _devices(domain, controllers=(replace(domain.devices.controllers[0], **changes),))


def _interface(domain: Domain, **changes: Any) -> Domain:
    return _devices(domain, interfaces=(replace(domain.devices.interfaces[0], **changes),))


def _video(domain: Domain, **changes: Any) -> Domain:
    return _devices(domain, videos=(replace(domain.devices.videos[0], **changes),))


def _balloon(domain: Domain, **changes: Any) -> Domain:
    assert domain.devices.memballoon is not None
    return _devices(domain, memballoon=replace(domain.devices.memballoon, **changes))


def _first_feature(domain: Domain, **changes: Any) -> Domain:
    assert domain.cpu is not None
    first, *rest = sorted(domain.cpu.features, key=lambda feature: feature.name)
    return _cpu(domain, features=(replace(first, **changes), *rest))


def _other_policy(domain: Domain) -> FeaturePolicy:
    assert domain.cpu is not None
    first = min(domain.cpu.features, key=lambda feature: feature.name)
    return next(policy for policy in FeaturePolicy if policy is not first.policy)


def _clock(domain: Domain, **changes: Any) -> Domain:
    assert domain.clock is not None
    return replace(domain, clock=replace(domain.clock, **changes))


def _extra_cpu_feature(domain: Domain) -> Domain:
    assert domain.cpu is not None
    extra = CpuFeature(name="zz-extra", policy=FeaturePolicy.REQUIRE)
    return _cpu(domain, features=(*domain.cpu.features, extra))


def _toggled(features: frozenset[Feature], feature: Feature) -> frozenset[Feature]:
    return features ^ {feature}


def _other_mac(mac: str) -> str:
    return mac[:-2] + f"{int(mac[-2:], 16) ^ 1:02x}"


#: (field the check must name, words the message must contain, the change).
ABI_CHANGES: list[tuple[str, str, Mutation]] = [
    (
        "type",
        "virt type",
        lambda d: replace(d, type=DomainType.QEMU if d.type is DomainType.KVM else DomainType.KVM),
    ),
    ("uuid", "uuid", lambda d: replace(d, uuid=uuid.UUID(int=d.uuid.int ^ 1))),
    ("name", "name", lambda d: replace(d, name=d.name + "-copy")),
    ("memory", "max memory", lambda d: replace(d, memory_kib=d.memory_kib + 1024)),
    ("vcpus", "vCPU max", lambda d: replace(d, vcpus=d.vcpus + 1)),
    ("current_vcpus", "vCPU count", lambda d: replace(d, current_vcpus=d.vcpus + 1)),
    ("os.arch", "architecture", lambda d: replace(d, os=replace(d.os, arch=Arch.AARCH64))),
    ("os.machine", "machine type", lambda d: replace(d, os=replace(d.os, machine="pc-q35-8.1"))),
    (
        "features.acpi",
        "feature 'acpi'",
        lambda d: replace(d, features=_toggled(d.features, Feature.ACPI)),
    ),
    (
        "features.pae",
        "feature 'pae'",
        lambda d: replace(d, features=_toggled(d.features, Feature.PAE)),
    ),
    ("cpu.mode", "CPU mode", lambda d: _cpu(d, mode=CpuMode.HOST_MODEL)),
    ("cpu.model", "CPU model", lambda d: _cpu(d, model="Other-Model")),
    ("cpu.vendor", "CPU vendor", lambda d: _cpu(d, vendor="AMD")),
    ("cpu.sockets", "CPU sockets", lambda d: _topology(d, "sockets")),
    ("cpu.cores", "CPU cores", lambda d: _topology(d, "cores")),
    ("cpu.threads", "CPU threads", lambda d: _topology(d, "threads")),
    ("cpu.dies", "CPU dies", lambda d: _topology(d, "dies")),
    (
        "cpu.feature_count",
        "CPU feature count",
        _extra_cpu_feature,
    ),
    ("cpu.feature", "CPU feature", lambda d: _first_feature(d, name="zz-renamed")),
    ("cpu.feature_policy", "policy", lambda d: _first_feature(d, policy=_other_policy(d))),
    (
        "clock.offset",
        "clock offset",
        lambda d: _clock(d, offset=ClockOffset.LOCALTIME),
    ),
    (
        "clock.timer",
        "timer rtc",
        lambda d: _clock(d, timers=(Timer(name=TimerName.RTC),)),
    ),
    (
        "disk.count",
        "disk count 2 does not match source 1",
        lambda d: _devices(
            d,
            disks=(
                *d.devices.disks,
                Disk(type=DiskType.FILE, source_path="/b.img", target_dev="vdb"),
            ),
        ),
    ),
    ("disk.device", "disk device cdrom", lambda d: _disk(d, device=DiskDevice.CDROM)),
    ("disk.bus", "disk bus scsi", lambda d: _disk(d, target_bus=DiskBus.SCSI)),
    (
        "disk.target",
        "Target disk vdb does not match source vda",
        lambda d: _disk(d, target_dev="vdb"),
    ),
    ("disk.serial", "disk serial", lambda d: _disk(d, serial="other")),
    ("disk.readonly", "readonly yes", lambda d: _disk(d, readonly=True)),
    (
        "disk.address",
        "disk pci address",
        lambda d: _disk(d, address=_moved(d.devices.disks[0].address)),
    ),
    ("disk.address", "disk address type drive", lambda d: _disk(d, address=DriveAddress())),
    ("disk.address", "disk address type <null>", lambda d: _disk(d, address=None)),
    (
        "controller.count",
        "controller count",
        lambda d: _devices(
            d,
            controllers=(
                *d.devices.controllers,
                Controller(type=ControllerType.VIRTIO_SERIAL, index=0),
            ),
        ),
    ),
    (
        "controller.type",
        "controller type",
        lambda d: _controller(d, type=ControllerType.VIRTIO_SERIAL),
    ),
    ("controller.index", "controller index", lambda d: _controller(d, index=2)),
    ("controller.model", "model", lambda d: _controller(d, model=ControllerModel.PCI_BRIDGE)),
    ("controller.target_chassis", "chassis", lambda d: _controller(d, target_chassis=2)),
    ("controller.target_port", "port", lambda d: _controller(d, target_port=0x11)),
    (
        "controller.address",
        "controller pci address",
        lambda d: _controller(d, address=_moved(d.devices.controllers[0].address)),
    ),
    (
        "interface.count",
        "network interface count",
        lambda d: _devices(
            d,
            interfaces=(
                *d.devices.interfaces,
                Interface(type=InterfaceType.USER, mac="52:54:00:00:00:99"),
            ),
        ),
    ),
    (
        "interface.mac",
        "network card mac",
        lambda d: _interface(d, mac=_other_mac(d.devices.interfaces[0].mac)),
    ),
    (
        "interface.model",
        "network card model e1000",
        lambda d: _interface(d, model=InterfaceModel.E1000),
    ),
    (
        "interface.address",
        "interface pci address",
        lambda d: _interface(d, address=_moved(d.devices.interfaces[0].address)),
    ),
    (
        "input.count",
        "input device count",
        lambda d: _devices(
            d, inputs=(*d.devices.inputs, Input(type=InputType.KEYBOARD, bus=InputBus.VIRTIO))
        ),
    ),
    (
        "input.type",
        "input device type mouse",
        lambda d: _devices(d, inputs=(replace(d.devices.inputs[0], type=InputType.MOUSE),)),
    ),
    (
        "input.bus",
        "input device bus virtio",
        lambda d: _devices(d, inputs=(replace(d.devices.inputs[0], bus=InputBus.VIRTIO),)),
    ),
    (
        "serial.count",
        "serial port count",
        lambda d: _devices(
            d, serials=(*d.devices.serials, Serial(type=CharType.PTY, target_port=1))
        ),
    ),
    (
        "serial.target_port",
        "serial port 3",
        lambda d: _devices(d, serials=(replace(d.devices.serials[0], target_port=3),)),
    ),
    (
        "serial.target_type",
        "serial type pci-serial",
        lambda d: _devices(
            d, serials=(replace(d.devices.serials[0], target_type=SerialTargetType.PCI_SERIAL),)
        ),
    ),
    (
        "serial.target_model",
        "serial model pci-serial",
        lambda d: _devices(
            d, serials=(replace(d.devices.serials[0], target_model=SerialTargetModel.PCI_SERIAL),)
        ),
    ),
    (
        "console.count",
        "console count",
        lambda d: _devices(
            d,
            consoles=(
                *d.devices.consoles,
                Console(type=CharType.PTY, target_type=ConsoleTargetType.VIRTIO, target_port=2),
            ),
        ),
    ),
    (
        "console.target_port",
        "console port",
        lambda d: _devices(d, consoles=(replace(d.devices.consoles[0], target_port=2),)),
    ),
    (
        "video.count",
        "video card count",
        lambda d: _devices(d, videos=(*d.devices.videos, Video(model=VideoModel.VIRTIO))),
    ),
    ("video.model", "video card model vga", lambda d: _video(d, model=VideoModel.VGA)),
    ("video.vram", "video card vram", lambda d: _video(d, vram=32768)),
    ("video.heads", "video card heads", lambda d: _video(d, heads=2)),
    (
        "video.address",
        "video pci address",
        lambda d: _video(d, address=_moved(d.devices.videos[0].address)),
    ),
    (
        "memballoon.model",
        "balloon model",
        lambda d: _balloon(d, model=MemballoonModel.VIRTIO_TRANSITIONAL),
    ),
    ("memballoon.autodeflate", "balloon autodeflate", lambda d: _balloon(d, autodeflate=True)),
    (
        "memballoon.address",
        "memballoon pci address",
        lambda d: _balloon(
            d, address=_moved(d.devices.memballoon and d.devices.memballoon.address)
        ),
    ),
    (
        "rng.count",
        "RNG device count",
        lambda d: _devices(
            d, rngs=(*d.devices.rngs, Rng(model=RngModel.VIRTIO, backend=RngBackend.BUILTIN))
        ),
    ),
    (
        "rng.model",
        "RNG model",
        lambda d: _devices(
            d, rngs=(replace(d.devices.rngs[0], model=RngModel.VIRTIO_TRANSITIONAL),)
        ),
    ),
    (
        "rng.address",
        "rng pci address",
        lambda d: _devices(
            d, rngs=(replace(d.devices.rngs[0], address=_moved(d.devices.rngs[0].address)),)
        ),
    ),
]

#: Changes that do not change the guest.
NON_ABI_CHANGES: list[tuple[str, Mutation]] = [
    ("title", lambda d: replace(d, title=(d.title or "") + " (renamed)")),
    ("description", lambda d: replace(d, description="another description\nover two lines")),
    (
        "metadata",
        lambda d: replace(d, metadata='<metadata><x:y xmlns:x="urn:other">1</x:y></metadata>'),
    ),
    (
        "graphics password",
        lambda d: _devices(
            d, graphics=tuple(replace(g, passwd="n3w-pass") for g in d.devices.graphics)
        ),
    ),
    (
        "graphics listen address",
        lambda d: _devices(
            d, graphics=tuple(replace(g, listen="192.0.2.99") for g in d.devices.graphics)
        ),
    ),
    (
        "graphics port",
        lambda d: _devices(
            d, graphics=tuple(replace(g, autoport=False, port=5999) for g in d.devices.graphics)
        ),
    ),
    ("disk source path", lambda d: _disk(d, source_path="/srv/elsewhere/root.qcow2")),
    ("disk cache", lambda d: _disk(d, cache=DiskCache.UNSAFE)),
    (
        "interface source",
        lambda d: _interface(
            d, type=InterfaceType.BRIDGE, source_network=None, source_bridge="br7"
        ),
    ),
    ("lifecycle", lambda d: replace(d, on_crash=LifecycleAction.PRESERVE)),
    ("domain id", lambda d: replace(d, id=4242)),
    ("aliases", lambda d: _disk(d, alias="virtio-disk7")),
    ("emulator", lambda d: _devices(d, emulator="/opt/qemu/bin/qemu-system-x86_64")),
    ("current memory", lambda d: replace(d, current_memory_kib=1)),
]


@given(domains())
def test_check_is_reflexive(domain: Domain) -> None:
    check_abi_stability(domain, domain)
    compare_abi(migratable(domain), migratable(domain))


@given(
    domains(),
    st.sampled_from(
        [
            FormatFlag(0),
            FormatFlag.INACTIVE,
            FormatFlag.MIGRATABLE,
            FormatFlag.SECURE | FormatFlag.INACTIVE,
        ]
    ),
)
def test_every_form_of_a_domain_is_the_same_guest(domain: Domain, flags: FormatFlag) -> None:
    other_form = parse_domain(format_domain(domain, flags=flags))
    check_abi_stability(domain, other_form)
    check_abi_stability(other_form, domain)


@pytest.mark.parametrize(
    ("field", "words", "mutate"),
    ABI_CHANGES,
    ids=[f"{field}:{words}" for field, words, _ in ABI_CHANGES],
)
@settings(max_examples=15)
@given(domain=abi_domains())
def test_any_abi_change_fails_naming_its_field(
    domain: Domain, field: str, words: str, mutate: Mutation
) -> None:
    with pytest.raises(AbiMismatch) as caught:
        check_abi_stability(domain, mutate(domain))
    assert caught.value.field == field
    assert words in str(caught.value)
    assert caught.value.source != caught.value.target


@given(abi_domains(), st.sampled_from(NON_ABI_CHANGES))
def test_non_abi_changes_pass(domain: Domain, change: tuple[str, Mutation]) -> None:
    _, mutate = change
    check_abi_stability(domain, mutate(domain))
    check_abi_stability(mutate(domain), domain)


def test_messages_name_the_difference() -> None:
    running = parse_domain(fixture("running.xml"))
    extra_disk = Disk(type=DiskType.FILE, source_path="/b.img", target_dev="vdb")
    cases = [
        (
            replace(running, memory_kib=1024),
            "Target domain max memory 1024 does not match source 2097152",
        ),
        (
            replace(running, os=replace(running.os, machine="pc-q35-6.2")),
            "Target domain machine type pc-q35-6.2 does not match source pc-q35-7.2",
        ),
        (
            _cpu(running, model="Haswell"),
            "Target CPU model Haswell does not match source Skylake-Client-IBRS",
        ),
        (
            _devices(running, disks=(*running.devices.disks, extra_disk)),
            "Target domain disk count 3 does not match source 2",
        ),
    ]
    for target, message in cases:
        with pytest.raises(AbiMismatch, match=f"^{message}$"):
            check_abi_stability(running, target)


# -------------------------------------------------------- regression: host-passthrough

LIVE_PASSTHROUGH = """<domain type='kvm' id='3'>
  <name>db-01</name>
  <uuid>5b6f1c4e-33c2-4a5e-9c1e-0d8f7a2b9e10</uuid>
  <memory unit='KiB'>1048576</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='host-passthrough' check='none' match='minimum' migratable='on'>
    <model fallback='allow'>Skylake-Client-IBRS</model>
    <vendor>Intel</vendor>
    <feature policy='require' name='vmx'/>
    <feature policy='require' name='pdpe1gb'/>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/migrator/images/db-01.img'/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='pci' index='0' model='pci-root'>
      <alias name='pci.0'/>
    </controller>
    <controller type='ide' index='0'>
      <alias name='ide'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x1'/>
    </controller>
    <controller type='usb' index='0'>
      <alias name='usb'/>
    </controller>
    <interface type='bridge'>
      <mac address='52:54:00:AA:10:01'/>
      <source bridge='br0'/>
      <target dev='vnet0'/>
      <model type='rtl8139'/>
      <alias name='net0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <serial type='pty'>
      <source path='/dev/pts/4'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
      <alias name='serial0'/>
    </serial>
    <console type='pty' tty='/dev/pts/4'>
      <source path='/dev/pts/4'/>
      <target type='serial' port='0'/>
      <alias name='serial0'/>
    </console>
    <input type='mouse' bus='ps2'>
      <alias name='input0'/>
    </input>
    <input type='keyboard' bus='ps2'>
      <alias name='input1'/>
    </input>
    <graphics type='vnc' port='5900' autoport='yes' listen='127.0.0.1'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
    <video>
      <model type='cirrus' vram='16384' heads='1' primary='yes'/>
      <alias name='video0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </video>
    <memballoon model='virtio'>
      <alias name='balloon0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>
    </memballoon>
  </devices>
</domain>"""

#: The same guest as people write it: host-passthrough and nothing implied written out.
USER_PASSTHROUGH = """<domain type='kvm'>
  <name>db-01</name>
  <uuid>5b6f1c4e-33c2-4a5e-9c1e-0d8f7a2b9e10</uuid>
  <memory unit='GiB'>1</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
  </os>
  <features>
    <apic/>
    <acpi/>
  </features>
  <cpu mode='host-passthrough'/>
  <devices>
    <disk type='file'>
      <source file='/var/lib/migrator/images/db-01.img'/>
      <target dev='vda'/>
      <address type='pci' domain='0' bus='0' slot='4' function='0'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:aa:10:01'/>
      <source bridge='br0'/>
      <address type='pci' slot='0x03'/>
    </interface>
    <console type='pty'/>
    <graphics type='vnc' listen='0.0.0.0'/>
    <video>
      <model type='cirrus'/>
      <address type='pci' slot='0x02'/>
    </video>
    <memballoon model='virtio'>
      <address type='pci' slot='0x05'/>
    </memballoon>
  </devices>
</domain>"""


def test_host_passthrough_forms_compare_equal_only_when_canonical() -> None:
    """libvirt's false "Target CPU model <null> does not match source ..." is avoided.

    A running host-passthrough guest recorded by older libvirt carries the host's model,
    vendor and features in its live definition; its inactive form does not. Compared as
    written, the two differ exactly where libvirt reported the false error; compared in
    the canonical form they are one guest, as is the definition people write.
    """
    live = parse_domain(LIVE_PASSTHROUGH)
    inactive_form = parse_domain(format_domain(live, flags=FormatFlag.INACTIVE))
    assert inactive_form.cpu is not None and inactive_form.cpu.model is None

    with pytest.raises(AbiMismatch) as naive:
        compare_abi(live, inactive_form)
    assert str(naive.value) == ("Target CPU model <null> does not match source Skylake-Client-IBRS")
    assert naive.value.field == "cpu.model"

    check_abi_stability(live, inactive_form)
    check_abi_stability(inactive_form, live)
    check_abi_stability(live, parse_domain(USER_PASSTHROUGH))
    assert migratable(live) == migratable(inactive_form)


def test_host_passthrough_features_that_change_the_guest_still_count() -> None:
    live = parse_domain(LIVE_PASSTHROUGH)
    assert live.cpu is not None
    disabled = _cpu(
        live,
        features=(
            *live.cpu.features,
            replace(live.cpu.features[0], name="avx512f", policy=FeaturePolicy.DISABLE),
        ),
    )
    with pytest.raises(AbiMismatch, match="Target CPU feature count 1 does not match source 0"):
        check_abi_stability(live, disabled)
