"""What starting a guest takes: the host's side of the command line in, argv and QMP setup out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from migrator.drivers.base import StartMode
from migrator.drivers.qemu.options import Accel


@dataclass(frozen=True, kw_only=True)
class LaunchSpec:
    """The host's choices for one QEMU process.

    Attributes:
        binary: the QEMU executable.
        accel: the accelerator.
        kernel_firmware: the ``-bios`` for guests booted with ``-kernel`` (qboot), if any.
        monitor_fd: the listening QMP socket QEMU inherits.
        pidfile: where QEMU writes its process id.
        mode: how the guest starts.
        spice: the binary has SPICE support.
        graphics_listen: the listen address of displays whose definition names none.
        spice_port: the port picked for a SPICE display with ``autoport``.
    """

    binary: str
    accel: Accel
    kernel_firmware: str | None = None
    monitor_fd: int
    pidfile: str
    mode: StartMode
    spice: bool = False
    graphics_listen: str = "127.0.0.1"
    spice_port: int | None = None


@dataclass(frozen=True)
class SetupCommand:
    """A QMP command run once QEMU answers, before the driver hands out the instance.

    ``guest_state`` marks commands that change device state, which an incoming migration
    brings along: they are skipped for incoming guests. Arguments may hold secrets and are
    left out of the repr.
    """

    command: str
    arguments: Mapping[str, object] = field(repr=False)
    guest_state: bool = False


@dataclass(frozen=True)
class LaunchPlan:
    """Command-line arguments and the QMP commands that finish their setup: those of a whole
    QEMU process (``argv[0]`` is the binary), or of one part of it."""

    argv: tuple[str, ...]
    setup: tuple[SetupCommand, ...] = ()
