"""The qemu driver's command line, built from definitions without running QEMU."""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest

from migrator.domain import Domain, parse_domain
from migrator.drivers.base import StartMode
from migrator.drivers.qemu import Accel, LaunchSpec, UnsupportedConfig, build_launch_plan
from migrator.drivers.qemu.cmdline import escape, option_string

SPEC = LaunchSpec(
    binary="/usr/bin/qemu-system-x86_64",
    accel=Accel.KVM,
    kernel_firmware="/usr/share/qemu/qboot.rom",
    monitor_fd=7,
    pidfile="/run/migrator/web,01/qemu.pid",
    mode=StartMode.RUNNING,
)

RICH = """<domain type='kvm'>
  <name>web,01</name>
  <uuid>6b1c7a14-7f8a-4e7a-9a16-2b3c4d5e6f70</uuid>
  <memory unit='MiB'>1024</memory>
  <currentMemory unit='MiB'>512</currentMemory>
  <vcpu current='2'>4</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/boot/vmlinuz,x</kernel>
    <initrd>/boot/initrd.img</initrd>
    <cmdline>console=ttyS0,115200</cmdline>
  </os>
  <features><acpi/><apic/><vmcoreinfo/></features>
  <cpu mode='custom' match='exact' check='full'>
    <model fallback='forbid'>Nehalem</model>
    <topology sockets='2' dies='1' cores='2' threads='1'/>
    <feature policy='require' name='aes'/>
    <feature policy='disable' name='x2apic'/>
  </cpu>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' index='1' model='pcie-root-port'>
      <target chassis='1' port='0x10'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'
               multifunction='on'/>
    </controller>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <controller type='sata' index='0'/>
    <controller type='virtio-serial' index='0'/>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='/var/lib/images/web,01.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>disk-1</serial>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='writethrough'/>
      <source dev='/dev/vg/data'/>
      <target dev='sdb' bus='scsi'/>
      <readonly/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sdc' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:12:34:56'/>
      <model type='virtio'/>
    </interface>
    <serial type='unix'>
      <source mode='bind' path='/run/guest/web,01.serial'/>
      <target port='0'/>
    </serial>
    <serial type='pty'><target port='1'/></serial>
    <console type='unix'>
      <source mode='bind' path='/run/guest/web,01.serial'/>
      <target type='serial' port='0'/>
    </console>
    <console type='file'>
      <source path='/var/log/web.console'/>
      <target type='virtio' port='1'/>
    </console>
    <input type='tablet' bus='usb'/>
    <input type='keyboard' bus='virtio'/>
    <input type='mouse' bus='ps2'/>
    <graphics type='vnc' autoport='yes' listen='0.0.0.0' passwd='s3cret' keymap='de'/>
    <video><model type='qxl' ram='65536' vram='65536' vgamem='16384' heads='1'/></video>
    <memballoon model='virtio' autodeflate='on'><stats period='10'/></memballoon>
    <rng model='virtio'>
      <rate bytes='1024' period='2000'/>
      <backend model='random'>/dev/hwrng</backend>
    </rng>
  </devices>
</domain>"""


def minimal(devices: str = "", *, os: str = "", top: str = "", machine: str = "q35") -> Domain:
    return parse_domain(f"""<domain type='kvm'>
  <name>small</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='{machine}'>hvm</type>{os}</os>
  {top}
  <devices>{devices}</devices>
</domain>""")


def options(argv: tuple[str, ...], flag: str) -> list[str]:
    """The values of every ``flag`` in ``argv``, in order."""
    return [value for name, value in itertools.pairwise(argv) if name == flag]


def device(argv: tuple[str, ...], driver: str) -> str:
    (found,) = [value for value in options(argv, "-device") if value.split(",")[0] == driver]
    return found


@pytest.fixture(scope="module")
def rich() -> tuple[str, ...]:
    return build_launch_plan(parse_domain(RICH), SPEC).argv


def test_comma_escaping() -> None:
    assert escape("a,b,,c") == "a,,b,,,,c"
    assert option_string("file", [("path", "/x,y"), ("read-only", True), ("n", 3)]) == (
        "file,path=/x,,y,read-only=on,n=3"
    )
    assert option_string(None, [("wait", False)]) == "wait=off"


def test_identity_machine_cpu_memory(rich: tuple[str, ...]) -> None:
    assert rich[0] == SPEC.binary
    assert options(rich, "-name") == ["guest=web,,01,debug-threads=on"]
    assert options(rich, "-uuid") == ["6b1c7a14-7f8a-4e7a-9a16-2b3c4d5e6f70"]
    assert options(rich, "-machine") == ["q35,acpi=on,hpet=off"]
    assert options(rich, "-accel") == ["kvm"]
    assert options(rich, "-cpu") == ["Nehalem,aes=on,x2apic=off,enforce=on"]
    assert options(rich, "-m") == ["size=1048576k"]
    assert options(rich, "-smp") == ["2,maxcpus=4,sockets=2,dies=1,cores=2,threads=1"]
    for flag in ("-nodefaults", "-no-user-config"):
        assert flag in rich
    assert options(rich, "-display") == ["none"]


def test_boot_clock_lifecycle(rich: tuple[str, ...]) -> None:
    # Verbatim arguments keep their commas; option strings double them.
    assert options(rich, "-kernel") == ["/boot/vmlinuz,x"]
    assert options(rich, "-initrd") == ["/boot/initrd.img"]
    assert options(rich, "-append") == ["console=ttyS0,115200"]
    assert options(rich, "-bios") == ["/usr/share/qemu/qboot.rom"]
    assert options(rich, "-rtc") == ["base=utc,driftfix=slew"]
    assert options(rich, "-global") == ["kvm-pit.lost_tick_policy=delay"]
    assert options(rich, "-action") == ["reboot=shutdown"]
    assert options(rich, "-pidfile") == ["/run/migrator/web,01/qemu.pid"]
    assert options(rich, "-chardev")[0] == "socket,id=monitor,fd=7,server=on,wait=off"
    assert options(rich, "-mon") == ["chardev=monitor,mode=control"]
    assert "-S" not in rich
    assert "-incoming" not in rich


def test_controllers(rich: tuple[str, ...]) -> None:
    assert device(rich, "pcie-root-port") == (
        "pcie-root-port,id=pci.1,chassis=1,port=16,bus=pcie.0,addr=0x2,multifunction=on"
    )
    assert device(rich, "virtio-scsi-pci") == "virtio-scsi-pci,id=scsi0"
    assert device(rich, "qemu-xhci") == "qemu-xhci,id=usb"
    assert device(rich, "virtio-serial-pci") == "virtio-serial-pci,id=virtio-serial0"
    assert "ahci" not in " ".join(rich)  # q35's SATA controller is built in


def test_disks(rich: tuple[str, ...]) -> None:
    assert options(rich, "-blockdev") == [
        "driver=file,filename=/var/lib/images/web,,01.qcow2,node-name=drive0-storage,"
        "cache.direct=on,cache.no-flush=off,read-only=off",
        "driver=qcow2,file=drive0-storage,node-name=drive0-format,"
        "cache.direct=on,cache.no-flush=off,read-only=off",
        "driver=host_device,filename=/dev/vg/data,node-name=drive1-storage,"
        "cache.direct=off,cache.no-flush=off,read-only=on",
        "driver=raw,file=drive1-storage,node-name=drive1-format,"
        "cache.direct=off,cache.no-flush=off,read-only=on",
    ]
    assert device(rich, "virtio-blk-pci") == (
        "virtio-blk-pci,drive=drive0-format,write-cache=on,bus=pci.1,addr=0x0,id=disk-vda,"
        "serial=disk-1"
    )
    assert device(rich, "scsi-hd") == (
        "scsi-hd,drive=drive1-format,write-cache=off,bus=scsi0.0,channel=0,scsi-id=0,lun=1,"
        "id=disk-sdb"
    )
    assert device(rich, "ide-cd") == "ide-cd,bus=ide.2,id=disk-sdc"


def test_network_serials_consoles(rich: tuple[str, ...]) -> None:
    assert options(rich, "-netdev") == ["user,id=hostnet0"]
    assert device(rich, "virtio-net-pci") == (
        "virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:12:34:56"
    )
    assert options(rich, "-chardev")[1:] == [
        "socket,id=charserial0,path=/run/guest/web,,01.serial,server=on,wait=off",
        "pty,id=charserial1",
        "file,id=charconsole1,path=/var/log/web.console",
    ]
    assert [value for value in options(rich, "-device") if "serial," in value] == [
        "isa-serial,chardev=charserial0,id=serial0,index=0",
        "isa-serial,chardev=charserial1,id=serial1,index=1",
    ]
    assert device(rich, "virtconsole") == (
        "virtconsole,chardev=charconsole1,id=console1,bus=virtio-serial0.0"
    )


def test_display_input_balloon_rng(rich: tuple[str, ...]) -> None:
    assert options(rich, "-vnc") == ["0.0.0.0:0,to=99,password=on"]
    assert options(rich, "-k") == ["de"]
    assert "s3cret" not in " ".join(rich)
    assert device(rich, "qxl-vga") == (
        "qxl-vga,id=video0,ram_size=67108864,vram_size=67108864,vgamem_mb=16,max_outputs=1"
    )
    assert device(rich, "usb-tablet") == "usb-tablet,id=input0,bus=usb.0"
    assert device(rich, "virtio-keyboard-pci") == "virtio-keyboard-pci,id=input1"
    assert device(rich, "virtio-balloon-pci") == "virtio-balloon-pci,id=balloon0,deflate-on-oom=on"
    assert options(rich, "-object") == ["rng-random,id=objrng0,filename=/dev/hwrng"]
    assert device(rich, "virtio-rng-pci") == (
        "virtio-rng-pci,rng=objrng0,id=rng0,max-bytes=1024,period=2000"
    )
    assert device(rich, "vmcoreinfo") == "vmcoreinfo"


def test_setup_commands_carry_what_the_command_line_must_not() -> None:
    plan = build_launch_plan(parse_domain(RICH), SPEC)
    assert [(c.command, dict(c.arguments), c.guest_state) for c in plan.setup] == [
        ("change-vnc-password", {"password": "s3cret"}, False),
        (
            "qom-set",
            {
                "path": "/machine/peripheral/balloon0",
                "property": "guest-stats-polling-interval",
                "value": 10,
            },
            False,
        ),
        ("balloon", {"value": 512 * 1024 * 1024}, True),
    ]
    assert "s3cret" not in repr(plan)


@pytest.mark.parametrize(
    ("mode", "tail"),
    [
        (StartMode.RUNNING, []),
        (StartMode.PAUSED, ["-S"]),
        (StartMode.INCOMING, ["-S", "-incoming", "defer"]),
    ],
)
def test_start_modes(mode: StartMode, tail: list[str]) -> None:
    argv = build_launch_plan(minimal(), dataclasses.replace(SPEC, mode=mode)).argv
    assert [arg for arg in argv if arg in ("-S", "-incoming", "defer")] == tail


def test_defaults_follow_with_defaults() -> None:
    # No arch: x86_64; no <acpi/>: ACPI off; no topology: one core per socket; a default
    # balloon; a kernel-less guest boots from its disk; 'hda' is IDE on an i440fx machine.
    domain = parse_domain("""<domain type='qemu'>
  <name>plain</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <memory unit='MiB'>64</memory><vcpu>2</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <disk type='file'><source file='/img/plain.raw'/><target dev='hdb'/></disk>
  </devices>
</domain>""")
    argv = build_launch_plan(domain, dataclasses.replace(SPEC, accel=Accel.TCG)).argv
    assert options(argv, "-machine") == ["acpi=off"]
    assert options(argv, "-accel") == ["tcg"]
    assert options(argv, "-smp") == ["2,maxcpus=2,sockets=2,cores=1,threads=1"]
    assert options(argv, "-boot") == ["order=c"]
    assert "-bios" not in argv
    assert device(argv, "ide-hd") == "ide-hd,drive=drive0-format,bus=ide.0,unit=1,id=disk-hdb"
    assert device(argv, "virtio-balloon-pci") == "virtio-balloon-pci,id=balloon0"
    assert "-cpu" not in argv


def test_cpu_modes() -> None:
    passthrough = minimal(top="<cpu mode='host-passthrough' migratable='off'/>")
    argv = build_launch_plan(passthrough, SPEC).argv
    assert options(argv, "-cpu") == ["host,migratable=off"]
    host_model = minimal(top="<cpu mode='host-model'/>")
    assert options(build_launch_plan(host_model, SPEC).argv, "-cpu") == ["host"]
    tcg = dataclasses.replace(SPEC, accel=Accel.TCG)
    assert options(build_launch_plan(host_model, tcg).argv, "-cpu") == ["max"]
    with pytest.raises(UnsupportedConfig, match="cpu: host-passthrough needs KVM") as refused:
        build_launch_plan(passthrough, tcg)
    assert refused.value.item == "cpu"
    flags_only = minimal(top="<features><pvspinlock/></features>")
    assert options(build_launch_plan(flags_only, SPEC).argv, "-cpu") == ["qemu64,kvm-pv-unhalt=on"]


@pytest.mark.parametrize(
    ("devices", "machine", "refused"),
    [
        (
            "<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:00:00:01'/>"
            "</interface>",
            "q35",
            "interface[0]: type 'bridge' needs a tap device",
        ),
        (
            "<interface type='network'><source network='default'/>"
            "<mac address='52:54:00:00:00:01'/></interface>",
            "q35",
            "interface[0]: type 'network' needs a tap device",
        ),
        (
            "<graphics type='spice' autoport='yes'/>",
            "q35",
            "graphics 'spice': /usr/bin/qemu-system-x86_64 has no SPICE support",
        ),
        (
            "<disk type='file'><source file='/a.raw'/><target dev='hda' bus='ide'/></disk>",
            "q35",
            "disk 'hda': q35 machines have no IDE bus",
        ),
        (
            "<disk type='file'><source file='/a.raw'/><target dev='sda' bus='sata'/><readonly/>"
            "</disk>",
            "q35",
            "disk 'sda': IDE and SATA hard disks cannot be read-only",
        ),
        (
            "<disk type='file' device='cdrom'><target dev='vdb' bus='virtio'/></disk>",
            "q35",
            "disk 'vdb': a CD-ROM cannot be on the virtio bus",
        ),
        (
            "<disk type='file'><source file='/a.raw'/><target dev='sda' bus='scsi'/></disk>",
            "q35",
            "disk 'sda': needs <controller type='scsi' index='0'>",
        ),
        (
            "<input type='tablet' bus='usb'/>",
            "q35",
            "input[0]: needs <controller type='usb' index='0'>",
        ),
        (
            "<controller type='usb' index='0' model='none'/><input type='tablet' bus='usb'/>",
            "pc",
            "input[0]: USB controller 0 is 'none'",
        ),
        (
            "<console type='pty'><target type='virtio'/></console>",
            "q35",
            "needs <controller type='virtio-serial' index='0'>",
        ),
        (
            "<graphics type='vnc'/><graphics type='vnc'/>",
            "q35",
            "graphics 'vnc': only one display of a type",
        ),
        (
            "<video><model type='vga'/></video><video><model type='cirrus'/></video>",
            "q35",
            "video[1]: a 'cirrus' card can only be the primary one",
        ),
        ("<memballoon model='none'/>", "q35", None),
    ],
)
def test_refusals_name_what_is_wrong(devices: str, machine: str, refused: str | None) -> None:
    domain = minimal(devices, machine=machine)
    if refused is None:
        assert "virtio-balloon-pci" not in " ".join(build_launch_plan(domain, SPEC).argv)
        return
    with pytest.raises(UnsupportedConfig, match=re.escape(refused)) as caught:
        build_launch_plan(domain, SPEC)
    assert caught.value.instance == "small"


@pytest.mark.parametrize(
    ("top", "refused"),
    [
        ("<clock><timer name='tsc'/></clock>", "timer 'tsc': not supported"),
        ("<clock><timer name='pit' present='no'/></clock>", "timer 'pit': cannot be removed"),
        (
            "<clock><timer name='rtc' tickpolicy='merge'/></clock>",
            "timer 'rtc': tick policy 'merge'",
        ),
        ("<on_poweroff>restart</on_poweroff>", "on_poweroff: 'restart' is not supported"),
        ("<on_reboot>preserve</on_reboot>", "on_reboot: 'preserve' is not supported"),
        (
            "<currentMemory unit='MiB'>32</currentMemory>",
            "currentMemory: below memory needs a memory balloon",
        ),
    ],
)
def test_refusals_outside_devices(top: str, refused: str) -> None:
    devices = "<memballoon model='none'/>" if "currentMemory" in top else ""
    with pytest.raises(UnsupportedConfig, match=re.escape(refused)):
        build_launch_plan(minimal(devices, top=top), SPEC)


def test_vnc_fixed_port_and_ipv6() -> None:
    domain = minimal("<graphics type='vnc' port='5905' autoport='no' listen='::1'/>")
    assert options(build_launch_plan(domain, SPEC).argv, "-vnc") == ["[::1]:5"]


def test_spice_when_supported() -> None:
    domain = minimal("<graphics type='spice' autoport='yes' passwd='pw'/>")
    spec = dataclasses.replace(SPEC, spice=True, spice_port=5931)
    plan = build_launch_plan(domain, spec)
    assert options(plan.argv, "-spice") == ["port=5931,addr=127.0.0.1,disable-ticketing=off"]
    assert [(c.command, dict(c.arguments)) for c in plan.setup] == [
        ("set_password", {"protocol": "spice", "password": "pw"})
    ]
