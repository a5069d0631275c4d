"""Formatting: the fixture, metadata kept verbatim, and what each format flag does."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree

from migrator.domain import (
    CharType,
    Cpu,
    CpuCheck,
    CpuFallback,
    CpuFeature,
    CpuMatch,
    CpuMode,
    CpuTopology,
    Domain,
    DomainError,
    FeaturePolicy,
    FormatFlag,
    InvalidDomainXML,
    format_cpu,
    format_domain,
    parse_cpu,
    parse_domain,
    without_secrets,
)
from tests.domain.documents import fixture, minimal

RUNNING = parse_domain(fixture("running.xml"))

HOST_CPU = Cpu(
    model="Icelake-Server",
    vendor="Intel",
    features=(
        CpuFeature(name="ss", policy=FeaturePolicy.REQUIRE),
        CpuFeature(name="hle", policy=FeaturePolicy.DISABLE),
    ),
)


def _tree(domain: Domain, flags: FormatFlag) -> etree._Element:
    return etree.fromstring(format_domain(domain, flags=flags))


def test_libvirt_values_of_the_flags() -> None:
    assert [int(flag) for flag in FormatFlag] == [1, 2, 4, 8]
    assert [flag.name for flag in FormatFlag] == ["SECURE", "INACTIVE", "UPDATE_CPU", "MIGRATABLE"]


def test_full_domain_formats_and_parses_back() -> None:
    text = format_domain(RUNNING, flags=FormatFlag.SECURE)
    assert parse_domain(text) == RUNNING
    assert format_domain(parse_domain(text), flags=FormatFlag.SECURE) == text
    root = etree.fromstring(text)
    assert [child.tag for child in root][:8] == [
        "name",
        "uuid",
        "title",
        "description",
        "metadata",
        "memory",
        "currentMemory",
        "vcpu",
    ]
    assert root.findtext("memory") == "2097152"
    assert root.find("memory").get("unit") == "KiB"  # type: ignore[union-attr]


def test_metadata_is_written_back_verbatim() -> None:
    text = format_domain(RUNNING, flags=FormatFlag.SECURE)
    assert RUNNING.metadata is not None
    assert f"  {RUNNING.metadata}\n" in text
    assert '      <nova:flavor name="m1.small">\n        <nova:memory>2048</nova:memory>\n' in text


def test_without_secure_passwords_are_left_out_and_nothing_else() -> None:
    text = format_domain(RUNNING)
    assert "passwd" not in text
    assert "s3cret" not in text
    assert parse_domain(text) == without_secrets(RUNNING)


def test_secure_keeps_passwords() -> None:
    graphics = _tree(RUNNING, FormatFlag.SECURE).findall("devices/graphics")
    assert [g.get("passwd") for g in graphics] == ["vnc-s3cret", "spice-s3cret"]


def test_inactive_leaves_out_live_data() -> None:
    live = replace(
        RUNNING,
        devices=replace(
            RUNNING.devices,
            disks=(replace(RUNNING.devices.disks[0], alias="ua-root"), *RUNNING.devices.disks[1:]),
            interfaces=(
                RUNNING.devices.interfaces[0],
                replace(RUNNING.devices.interfaces[1], target_dev="tap-web"),
            ),
            graphics=(
                RUNNING.devices.graphics[0],
                replace(RUNNING.devices.graphics[1], autoport=False),
            ),
        ),
    )
    root = _tree(live, FormatFlag.INACTIVE | FormatFlag.SECURE)
    assert root.get("id") is None
    vnc, spice = root.findall("devices/graphics")
    assert (vnc.get("port"), vnc.get("autoport")) == ("-1", "yes")
    assert (spice.get("port"), spice.get("tlsPort"), spice.get("autoport")) == (
        "5901",
        "5902",
        "no",
    )
    assert root.find("devices/serial/source") is None
    assert root.find("devices/serial").get("tty") is None  # type: ignore[union-attr]
    assert [a.get("name") for a in root.iter("alias")] == ["ua-root"]
    assert [t.get("dev") for t in root.findall("devices/interface/target")] == ["tap-web"]
    # Everything else stays, including what is implied anyway.
    assert root.find("devices/controller[@model='pcie-root']") is not None
    assert len(root.findall("devices/input")) == 3
    assert root.find("devices/console") is not None

    parsed = parse_domain(etree.tostring(root))
    assert parsed.id is None
    assert parsed.memory_kib == live.memory_kib
    assert parsed.devices.serials[0].source.path is None


def test_live_format_keeps_live_data() -> None:
    root = _tree(RUNNING, FormatFlag.SECURE)
    assert root.get("id") == "7"
    assert root.find("devices/graphics").get("port") == "5900"  # type: ignore[union-attr]
    assert root.find("devices/serial/source").get("path") == "/dev/pts/3"  # type: ignore[union-attr]
    assert len(list(root.iter("alias"))) == fixture("running.xml").count("<alias ")


def test_migratable_leaves_out_what_is_generated_or_implied() -> None:
    root = _tree(RUNNING, FormatFlag.MIGRATABLE | FormatFlag.SECURE)
    assert root.get("id") is None
    assert list(root.iter("alias")) == []
    controllers = [(c.get("type"), c.get("index")) for c in root.findall("devices/controller")]
    assert ("pci", "0") not in controllers, "the PCI root is implied by the machine"
    assert ("sata", "0") not in controllers, "q35 has its SATA controller built in"
    assert ("usb", "0") in controllers, "a USB controller with a model is not a default"
    assert [(i.get("type"), i.get("bus")) for i in root.findall("devices/input")] == [
        ("tablet", "usb")
    ]
    assert root.find("devices/console") is None, "the console only named serial port 0"
    assert len(root.findall("devices/serial")) == 1
    assert root.find("devices/graphics").get("passwd") == "vnc-s3cret"  # type: ignore[union-attr]
    migratable = parse_domain(etree.tostring(root))
    assert migratable.cpu is not None
    assert [f.name for f in migratable.cpu.features] == ["hle", "ss"]


def test_migratable_drops_a_default_usb_controller_and_fills_defaults() -> None:
    document = minimal(
        top="<cpu mode='host-passthrough'/>",
        devices="<controller type='usb' index='0'/>"
        "<controller type='pci' index='0' model='pcie-root'/>"
        "<disk type='file'><source file='/d.img'/><target dev='vdb'/></disk>"
        "<interface type='user'/><graphics type='vnc'/><console type='pty'/>"
        "<input type='mouse'/>",
    )
    domain = parse_domain(document)
    root = _tree(domain, FormatFlag.MIGRATABLE)
    assert root.findall("devices/controller") == []
    assert root.findall("devices/input") == []
    assert root.find("devices/disk/target").get("bus") == "virtio"  # type: ignore[union-attr]
    assert root.find("devices/disk/driver").get("type") == "raw"  # type: ignore[union-attr]
    assert root.find("devices/interface/model").get("type") == "rtl8139"  # type: ignore[union-attr]
    assert root.find("devices/video/model").attrib == {  # type: ignore[union-attr]
        "type": "vga",
        "vram": "16384",
        "heads": "1",
        "primary": "yes",
    }
    assert root.find("devices/memballoon").get("model") == "virtio"  # type: ignore[union-attr]
    serial = root.find("devices/serial")
    assert serial is not None and serial.get("type") == "pty"
    assert serial.find("target").attrib == {"type": "isa-serial", "port": "0"}  # type: ignore[union-attr]
    assert root.find("cpu").get("migratable") == "on"  # type: ignore[union-attr]
    assert root.findtext("currentMemory") == root.findtext("memory")
    assert [root.findtext(tag) for tag in ("on_poweroff", "on_reboot", "on_crash")] == [
        "destroy",
        "restart",
        "destroy",
    ]
    assert root.find("os/boot").get("dev") == "hd"  # type: ignore[union-attr]


def test_update_cpu_expands_host_model_into_the_host_model() -> None:
    domain = parse_domain(
        minimal(
            top="<cpu mode='host-model' check='partial'>"
            "<topology sockets='1' cores='1' threads='1'/>"
            "<feature policy='disable' name='ss'/><feature policy='force' name='pcid'/></cpu>"
        )
    )
    text = format_domain(domain, flags=FormatFlag.UPDATE_CPU, host_cpu=HOST_CPU)
    cpu = parse_domain(text).cpu
    assert cpu == Cpu(
        mode=CpuMode.CUSTOM,
        match=CpuMatch.EXACT,
        check=CpuCheck.PARTIAL,
        model="Icelake-Server",
        fallback=CpuFallback.FORBID,
        vendor="Intel",
        topology=CpuTopology(sockets=1, cores=1, threads=1),
        features=(
            CpuFeature(name="ss", policy=FeaturePolicy.DISABLE),
            CpuFeature(name="hle", policy=FeaturePolicy.DISABLE),
            CpuFeature(name="pcid", policy=FeaturePolicy.FORCE),
        ),
    )
    assert "host-model" in format_domain(domain)


@pytest.mark.parametrize(
    "cpu",
    ["<cpu mode='host-passthrough'/>", "<cpu><model>qemu64</model></cpu>", ""],
)
def test_update_cpu_leaves_other_cpus_alone(cpu: str) -> None:
    domain = parse_domain(minimal(top=cpu))
    assert format_domain(domain, flags=FormatFlag.UPDATE_CPU) == format_domain(domain)


def test_update_cpu_needs_the_host_cpu_for_host_model() -> None:
    domain = parse_domain(minimal(top="<cpu mode='host-model'/>"))
    with pytest.raises(DomainError, match="unknown host CPU model") as caught:
        format_domain(domain, flags=FormatFlag.UPDATE_CPU)
    assert caught.value.code == "host-cpu-unknown"
    with pytest.raises(DomainError, match="unknown host CPU model"):
        format_domain(domain, flags=FormatFlag.UPDATE_CPU, host_cpu=Cpu(vendor=None))


def test_flags_combine() -> None:
    flags = FormatFlag.SECURE | FormatFlag.MIGRATABLE | FormatFlag.UPDATE_CPU
    assert RUNNING.cpu is not None
    domain = replace(RUNNING, cpu=replace(RUNNING.cpu, mode=CpuMode.HOST_MODEL, model=None))
    root = etree.fromstring(format_domain(domain, flags=flags, host_cpu=HOST_CPU))
    assert root.find("cpu").get("mode") == "custom"  # type: ignore[union-attr]
    assert root.findtext("cpu/model") == "Icelake-Server"
    assert root.get("id") is None
    assert list(root.iter("alias")) == []
    assert root.find("devices/graphics").get("passwd") == "vnc-s3cret"  # type: ignore[union-attr]


def test_text_that_xml_cannot_carry_is_refused() -> None:
    with pytest.raises(InvalidDomainXML, match="cannot write domain"):
        format_domain(replace(RUNNING, title="bell\x07"))


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [("<notes/>", "must be a <metadata> element"), ("<metadata>", "invalid metadata")],
)
def test_bad_metadata_is_refused(metadata: str, reason: str) -> None:
    with pytest.raises(InvalidDomainXML, match=reason):
        format_domain(replace(RUNNING, metadata=metadata))


def test_cpu_formats_and_parses_back() -> None:
    assert parse_cpu(format_cpu(HOST_CPU)) == HOST_CPU
    cpu = RUNNING.cpu
    assert cpu is not None
    assert parse_cpu(format_cpu(cpu)) == cpu


def test_pty_console_writes_its_tty() -> None:
    root = _tree(RUNNING, FormatFlag.SECURE)
    console = root.find("devices/console")
    assert console is not None
    assert (console.get("type"), console.get("tty")) == (CharType.PTY.value, "/dev/pts/3")
