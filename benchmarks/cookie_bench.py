"""Cookie codec speed: encode+sign and verify+decode of a perform-phase cookie.

The cookie carries a realistic libvirt domain definition of about 4 KiB, SPICE graphics,
migration capabilities and full job statistics. Prints the median time of each operation in
microseconds against its target.

Run: ``.venv/bin/python -m benchmarks.cookie_bench``
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from cookies import (
    Capability,
    Cookie,
    Graphics,
    GraphicsType,
    JobOperation,
    JobStatistics,
    decode,
    encode,
    from_xml,
    generate_signing_key,
    to_xml,
)

ROUNDS = 15
CALLS_PER_ROUND = 200
TARGET_US = 200.0

SOURCE_HOST = "1f3c9a7e-2b5d-4c8f-9e01-a2b3c4d5e6f7"

DOMAIN_XML = """<domain type="kvm">
  <name>web-frontend-01</name>
  <uuid>5b8e3f2a-9c41-4d7e-8a0b-6f1e2d3c4b5a</uuid>
  <title>Web front end</title>
  <description>nginx front end, production pool A</description>
  <metadata>
    <app:owner xmlns:app="http://example.com/app/1.0">team-web</app:owner>
  </metadata>
  <memory unit="KiB">8388608</memory>
  <currentMemory unit="KiB">8388608</currentMemory>
  <vcpu placement="static">4</vcpu>
  <os>
    <type arch="x86_64" machine="pc-q35-7.2">hvm</type>
    <boot dev="hd"/>
  </os>
  <features>
    <acpi/>
    <apic/>
    <vmport state="off"/>
  </features>
  <cpu mode="host-model" check="partial"/>
  <clock offset="utc">
    <timer name="rtc" tickpolicy="catchup"/>
    <timer name="pit" tickpolicy="delay"/>
    <timer name="hpet" present="no"/>
  </clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" cache="none" discard="unmap"/>
      <source file="/var/lib/libvirt/images/web-frontend-01-root.qcow2"/>
      <target dev="vda" bus="virtio"/>
      <address type="pci" domain="0x0000" bus="0x04" slot="0x00" function="0x0"/>
    </disk>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2" cache="none" discard="unmap"/>
      <source file="/var/lib/libvirt/images/web-frontend-01-data.qcow2"/>
      <target dev="vdb" bus="virtio"/>
      <address type="pci" domain="0x0000" bus="0x05" slot="0x00" function="0x0"/>
    </disk>
    <disk type="file" device="cdrom">
      <driver name="qemu" type="raw"/>
      <target dev="sda" bus="sata"/>
      <readonly/>
      <address type="drive" controller="0" bus="0" target="0" unit="0"/>
    </disk>
    <controller type="usb" index="0" model="qemu-xhci" ports="15">
      <address type="pci" domain="0x0000" bus="0x02" slot="0x00" function="0x0"/>
    </controller>
    <controller type="sata" index="0">
      <address type="pci" domain="0x0000" bus="0x00" slot="0x1f" function="0x2"/>
    </controller>
    <controller type="pci" index="0" model="pcie-root"/>
    <controller type="pci" index="1" model="pcie-root-port">
      <model name="pcie-root-port"/>
      <target chassis="1" port="0x10"/>
      <address type="pci" domain="0x0000" bus="0x00" slot="0x02" function="0x0"/>
    </controller>
    <controller type="virtio-serial" index="0">
      <address type="pci" domain="0x0000" bus="0x03" slot="0x00" function="0x0"/>
    </controller>
    <interface type="bridge">
      <mac address="52:54:00:6b:3c:58"/>
      <source bridge="br0"/>
      <model type="virtio"/>
      <address type="pci" domain="0x0000" bus="0x01" slot="0x00" function="0x0"/>
    </interface>
    <interface type="network">
      <mac address="52:54:00:1a:9f:02"/>
      <source network="backend"/>
      <model type="virtio"/>
      <address type="pci" domain="0x0000" bus="0x06" slot="0x00" function="0x0"/>
    </interface>
    <serial type="pty">
      <target type="isa-serial" port="0">
        <model name="isa-serial"/>
      </target>
    </serial>
    <console type="pty">
      <target type="serial" port="0"/>
    </console>
    <channel type="unix">
      <target type="virtio" name="org.qemu.guest_agent.0"/>
      <address type="virtio-serial" controller="0" bus="0" port="1"/>
    </channel>
    <input type="tablet" bus="usb">
      <address type="usb" bus="0" port="1"/>
    </input>
    <input type="mouse" bus="ps2"/>
    <input type="keyboard" bus="ps2"/>
    <graphics type="spice" autoport="yes" listen="0.0.0.0">
      <listen type="address" address="0.0.0.0"/>
      <image compression="off"/>
    </graphics>
    <video>
      <model type="qxl" ram="65536" vram="65536" vgamem="16384" heads="1" primary="yes"/>
      <address type="pci" domain="0x0000" bus="0x00" slot="0x01" function="0x0"/>
    </video>
    <memballoon model="virtio">
      <address type="pci" domain="0x0000" bus="0x07" slot="0x00" function="0x0"/>
    </memballoon>
    <rng model="virtio">
      <backend model="random">/dev/urandom</backend>
      <address type="pci" domain="0x0000" bus="0x08" slot="0x00" function="0x0"/>
    </rng>
  </devices>
</domain>"""


def perform_cookie() -> Cookie:
    """A perform-phase cookie: persistent definition, graphics, capabilities, statistics."""
    return Cookie(
        name="web-frontend-01",
        uuid="5b8e3f2a-9c41-4d7e-8a0b-6f1e2d3c4b5a",
        hostname="compute-17.example.net",
        hostuuid=SOURCE_HOST,
        graphics=Graphics(
            type=GraphicsType.SPICE,
            port=5901,
            tls_port=5902,
            listen="192.0.2.17",
            cert_subject="C=US,O=Example,CN=compute-18.example.net",
        ),
        persistent=DOMAIN_XML,
        capabilities=tuple(
            Capability(name, auto=name == "pause-before-switchover")
            for name in (
                "xbzrle",
                "auto-converge",
                "rdma-pin-all",
                "postcopy-ram",
                "compress",
                "pause-before-switchover",
                "late-block-activate",
                "multifd",
                "dirty-bitmaps",
                "return-path",
                "zero-copy-send",
            )
        ),
        statistics=JobStatistics(
            started=1_717_000_000_000,
            stopped=1_717_000_012_345,
            sent=1_717_000_012_400,
            operation=JobOperation.MIGRATION_OUT,
            time_elapsed=12_400,
            downtime=55,
            setup_time=12,
            data_total=8_640_000_000,
            data_processed=8_702_113_792,
            data_remaining=0,
            memory_total=8_640_000_000,
            memory_processed=8_702_113_792,
            memory_remaining=0,
            memory_constant=1_200_000,
            memory_normal=2_100_000,
            memory_normal_bytes=8_601_600_000,
            memory_bps=1_073_741_824,
            memory_dirty_rate=4_096,
            memory_page_size=4_096,
            memory_iteration=4,
            memory_postcopy_requests=0,
            disk_total=0,
            disk_processed=0,
            disk_remaining=0,
            disk_bps=0,
            auto_converge_throttle=0,
            success=True,
        ),
    )


def median_us(operation: Callable[[], object]) -> float:
    """Median over ROUNDS of the mean time of one call, in microseconds."""
    per_call = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS_PER_ROUND):
            operation()
        per_call.append((time.perf_counter() - start) / CALLS_PER_ROUND * 1e6)
    return statistics.median(per_call)


def main() -> None:
    cookie = perform_cookie()
    signing_key = generate_signing_key()
    trusted = {SOURCE_HOST: signing_key.public_key()}
    wire = encode(cookie, signing_key=signing_key)
    xml = to_xml(cookie)
    if decode(wire, trusted_keys=trusted) != cookie:
        raise SystemExit("decode(encode(cookie)) changed the cookie")

    public_key = signing_key.public_key()
    signature = signing_key.sign(wire)
    rows = [
        ("encode + sign (msgpack)", median_us(lambda: encode(cookie, signing_key=signing_key))),
        ("verify + decode (msgpack)", median_us(lambda: decode(wire, trusted_keys=trusted))),
        ("Ed25519 sign alone, same size", median_us(lambda: signing_key.sign(wire))),
        ("Ed25519 verify alone, same size", median_us(lambda: public_key.verify(signature, wire))),
        ("to_xml", median_us(lambda: to_xml(cookie))),
        ("from_xml", median_us(lambda: from_xml(xml))),
    ]
    table = Table(
        title=(
            f"cookie codec: domain XML {len(DOMAIN_XML)} B, wire {len(wire)} B, "
            f"XML form {len(xml)} B; median of {ROUNDS} rounds x {CALLS_PER_ROUND} calls"
        )
    )
    table.add_column("operation")
    table.add_column("median (us)", justify="right")
    table.add_column("target (us)", justify="right")
    table.add_column("ok", justify="center")
    for index, (name, micros) in enumerate(rows):
        targeted = index < 2
        table.add_row(
            name,
            f"{micros:.1f}",
            f"{TARGET_US:.0f}" if targeted else "-",
            ("yes" if micros <= TARGET_US else "NO") if targeted else "-",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
