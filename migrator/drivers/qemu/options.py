"""How a :class:`~migrator.drivers.qemu.driver.QEMUDriver` runs QEMU on its host."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Accel", "QemuOptions"]


class Accel(enum.Enum):
    """QEMU accelerators, by their ``-accel`` name."""

    KVM = "kvm"
    TCG = "tcg"


@dataclass(frozen=True, kw_only=True)
class QemuOptions:
    """The host's QEMU setup.

    Attributes:
        binary_dir: where ``qemu-system-ARCH`` lives; a domain's ``<emulator>`` overrides it.
        accel: the accelerator for ``kvm`` domains; ``None`` detects it (KVM when
            ``kvm_device`` opens for reading and writing, TCG otherwise). ``qemu`` domains
            always get TCG.
        kvm_device: the KVM device that detection opens.
        qboot: boot guests that have a ``-kernel`` with ``qboot_rom`` (a minimal firmware that
            starts them much faster than SeaBIOS) when that file exists.
        qboot_rom: where qboot is installed.
        graphics_listen: the listen address of displays whose definition names none.
        start_timeout_s: how long QEMU may take to answer on QMP after it is started.
        exit_grace_s: how long QEMU may take to exit after its QMP connection broke before it
            is killed, and to close the connection after it exited.
        stderr_lines: how many of QEMU's last stderr lines are kept for error reports.
    """

    binary_dir: Path = Path("/usr/bin")
    accel: Accel | None = None
    kvm_device: Path = Path("/dev/kvm")
    qboot: bool = True
    qboot_rom: Path = Path("/usr/share/qemu/qboot.rom")
    graphics_listen: str = "127.0.0.1"
    start_timeout_s: float = 30.0
    exit_grace_s: float = 5.0
    stderr_lines: int = 50
