"""What this host offers QEMU: the binary per architecture, KVM, SPICE, free ports."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
from pathlib import Path

from migrator.domain import Arch, Domain, DomainType
from migrator.drivers.qemu.argv import DEFAULT_ARCH
from migrator.drivers.qemu.options import Accel, QemuOptions

#: The system emulator of each guest architecture.
EMULATORS: dict[Arch, str] = {
    Arch.X86_64: "qemu-system-x86_64",
    Arch.I686: "qemu-system-i386",
    Arch.AARCH64: "qemu-system-aarch64",
    Arch.ARMV7L: "qemu-system-arm",
    Arch.PPC64: "qemu-system-ppc64",
    Arch.PPC64LE: "qemu-system-ppc64",
    Arch.S390X: "qemu-system-s390x",
    Arch.RISCV64: "qemu-system-riscv64",
}
#: The guest architectures KVM runs on each host architecture (``platform.machine()``).
KVM_ARCHES: dict[str, frozenset[Arch]] = {
    "x86_64": frozenset({Arch.X86_64, Arch.I686}),
    "aarch64": frozenset({Arch.AARCH64}),
    "ppc64le": frozenset({Arch.PPC64, Arch.PPC64LE}),
    "s390x": frozenset({Arch.S390X}),
    "riscv64": frozenset({Arch.RISCV64}),
}
#: What ``-spice help`` prints when the binary has SPICE.
_SPICE_HELP = b"spice options:"


def emulator(domain: Domain, options: QemuOptions) -> str:
    """The QEMU binary for ``domain``: its ``<emulator>``, else the one for its architecture."""
    if domain.devices.emulator is not None:
        return domain.devices.emulator
    return str(options.binary_dir / EMULATORS[domain.os.arch or DEFAULT_ARCH])


def kvm_usable(device: Path) -> bool:
    """Whether ``device`` opens for reading and writing."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def accel_for(domain: Domain, options: QemuOptions) -> Accel:
    """TCG for ``qemu`` domains; for ``kvm`` ones the configured accelerator, else KVM when
    this host runs the guest's architecture with KVM and the device is usable."""
    if domain.type is DomainType.QEMU:
        return Accel.TCG
    if options.accel is not None:
        return options.accel
    native = KVM_ARCHES.get(platform.machine(), frozenset())
    if (domain.os.arch or DEFAULT_ARCH) in native and kvm_usable(options.kvm_device):
        return Accel.KVM
    return Accel.TCG


async def has_spice(binary: str) -> bool:
    """Whether ``binary`` was built with SPICE (it lists SPICE's options)."""
    try:
        probe = await asyncio.create_subprocess_exec(
            binary,
            "-spice",
            "help",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError:
        return False
    output, _ = await probe.communicate()
    return _SPICE_HELP in output


def free_tcp_port(host: str) -> int:
    """A TCP port nobody listens on at ``host`` right now.

    Raises:
        OSError: ``host`` is not an address of this machine.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
