"""The QEMU command line of a domain: a pure function from the definition to argv.

:func:`build_launch_plan` takes the definition as :func:`migrator.domain.with_defaults`
fills it in (so that QEMU runs exactly what the ABI check compares) and refuses by name what
it cannot run here, with :class:`~migrator.drivers.qemu.errors.UnsupportedConfig`.
"""

from __future__ import annotations

from dataclasses import replace

from migrator.domain import (
    Arch,
    BootDevice,
    ClockOffset,
    CpuCheck,
    CpuMode,
    Domain,
    Feature,
    FeaturePolicy,
    LifecycleAction,
    TickPolicy,
    TimerName,
    with_defaults,
)
from migrator.domain.defaults import X86
from migrator.drivers.base import StartMode
from migrator.drivers.qemu.board import Board
from migrator.drivers.qemu.chardevs import serial_args
from migrator.drivers.qemu.cmdline import Property, option_string
from migrator.drivers.qemu.devices import (
    balloon_args,
    controller_args,
    input_args,
    interface_args,
    rng_args,
    video_args,
)
from migrator.drivers.qemu.disks import disk_args
from migrator.drivers.qemu.graphics import graphics_args
from migrator.drivers.qemu.options import Accel
from migrator.drivers.qemu.plan import LaunchPlan, LaunchSpec

__all__ = ["DEFAULT_ARCH", "MONITOR_ID", "build_launch_plan", "effective_domain"]

#: The architecture of a definition that names none: the host's.
DEFAULT_ARCH = Arch.X86_64
#: The chardev of the QMP monitor.
MONITOR_ID = "monitor"

#: QEMU's own CPU model of each architecture, the base of CPU flags when the definition
#: names no model.
DEFAULT_CPU_MODELS: dict[Arch, str] = {Arch.X86_64: "qemu64", Arch.I686: "qemu32"}
_BOOT_ORDER: dict[BootDevice, str] = {
    BootDevice.FD: "a",
    BootDevice.HD: "c",
    BootDevice.CDROM: "d",
    BootDevice.NETWORK: "n",
}
_ENABLED_POLICIES = frozenset({FeaturePolicy.FORCE, FeaturePolicy.REQUIRE, FeaturePolicy.OPTIONAL})
#: Timers every PC has.
_FIXED_TIMERS = frozenset({TimerName.RTC, TimerName.PIT})
_PIT_POLICIES: dict[TickPolicy, str] = {
    TickPolicy.DELAY: "delay",
    TickPolicy.DISCARD: "discard",
}


def effective_domain(domain: Domain) -> Domain:
    """``domain`` with the host's architecture if it names none, and libvirt's defaults."""
    if domain.os.arch is None:
        domain = replace(domain, os=replace(domain.os, arch=DEFAULT_ARCH))
    return with_defaults(domain)


def build_launch_plan(domain: Domain, spec: LaunchSpec) -> LaunchPlan:
    """The argv that starts ``domain`` under ``spec``, and the QMP commands that finish it.

    Raises:
        UnsupportedConfig: a part of the definition this driver cannot run, named.
    """
    domain = effective_domain(domain)
    board = Board.of(domain)
    arch = domain.os.arch or DEFAULT_ARCH
    devices = domain.devices
    displays = graphics_args(devices.graphics, board, spec)
    balloon = balloon_args(domain, board)
    argv = [
        spec.binary,
        "-name",
        option_string(None, [("guest", domain.name), ("debug-threads", True)]),
        "-uuid",
        str(domain.uuid),
        *_machine(domain, arch),
        "-accel",
        spec.accel.value,
        *_cpu(domain, board, spec.accel, arch),
        "-m",
        f"size={domain.memory_kib}k",
        *_smp(domain),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-msg",
        "timestamp=on",
        *_boot(domain, spec),
        *_clock(domain, board, spec.accel),
        *_lifecycle(domain, board),
        "-chardev",
        option_string(
            "socket",
            [("id", MONITOR_ID), ("fd", spec.monitor_fd), ("server", True), ("wait", False)],
        ),
        "-mon",
        option_string(None, [("chardev", MONITOR_ID), ("mode", "control")]),
        "-pidfile",
        spec.pidfile,
        *controller_args(devices.controllers, board),
        *disk_args(devices.disks, board),
        *interface_args(devices.interfaces, board),
        *serial_args(devices.serials, devices.consoles, board, arch=arch),
        *displays.argv,
        *video_args(devices.videos, board),
        *input_args(devices.inputs, board),
        *balloon.argv,
        *rng_args(devices.rngs, board),
    ]
    if Feature.VMCOREINFO in domain.features:
        argv += ["-device", "vmcoreinfo"]
    if spec.mode is not StartMode.RUNNING:
        argv.append("-S")
    if spec.mode is StartMode.INCOMING:
        argv += ["-incoming", "defer"]
    return LaunchPlan(tuple(argv), displays.setup + balloon.setup)


def _machine(domain: Domain, arch: Arch) -> list[str]:
    properties: list[Property] = []
    if arch in X86:
        properties.append(("acpi", Feature.ACPI in domain.features))
    for timer in domain.clock.timers if domain.clock else ():
        if timer.name is TimerName.HPET and timer.present is not None:
            properties.append(("hpet", timer.present))
    if domain.os.machine is None and not properties:
        return []
    return ["-machine", option_string(domain.os.machine, properties)]


def _cpu(domain: Domain, board: Board, accel: Accel, arch: Arch) -> list[str]:
    """``-cpu``: the model, then its flags; with flags but no model, QEMU's default model.

    Raises:
        UnsupportedConfig: a host-passthrough CPU without KVM, or CPU flags on an
            architecture without a default model.
    """
    cpu = domain.cpu
    model: str | None = None
    flags: list[Property] = []
    if cpu is not None:
        match cpu.mode:
            case CpuMode.HOST_PASSTHROUGH:
                if accel is not Accel.KVM:
                    raise board.refuse("cpu", "host-passthrough needs KVM")
                model = "host"
                if cpu.migratable is not None:
                    flags.append(("migratable", cpu.migratable))
            case CpuMode.HOST_MODEL:
                # Unexpanded host-model: the host's migratable CPU, the closest QEMU has.
                model = "host" if accel is Accel.KVM else "max"
            case CpuMode.CUSTOM:
                model = cpu.model
                if cpu.vendor is not None:
                    flags.append(("vendor", cpu.vendor))
        flags += [(feature.name, feature.policy in _ENABLED_POLICIES) for feature in cpu.features]
        if cpu.check is CpuCheck.FULL:
            flags.append(("enforce", True))
    if Feature.PVSPINLOCK in domain.features:
        flags.append(("kvm-pv-unhalt", True))
    for timer in domain.clock.timers if domain.clock else ():
        if timer.name is TimerName.KVMCLOCK and timer.present is False:
            flags.append(("kvmclock", False))
        elif timer.name is TimerName.HYPERVCLOCK and timer.present:
            flags.append(("hv-time", True))
    if not flags and model is None:
        return []
    if model is None:
        model = DEFAULT_CPU_MODELS.get(arch)
        if model is None:
            raise board.refuse("cpu", f"CPU flags need a CPU model on {arch.value}")
    return ["-cpu", option_string(model, flags)]


def _smp(domain: Domain) -> list[str]:
    current = domain.current_vcpus or domain.vcpus
    topology = domain.cpu.topology if domain.cpu else None
    properties: list[Property] = [("maxcpus", domain.vcpus)]
    if topology is None:
        properties += [("sockets", domain.vcpus), ("cores", 1), ("threads", 1)]
    else:
        properties += [("sockets", topology.sockets), ("dies", topology.dies)]
        if topology.clusters != 1:
            properties.append(("clusters", topology.clusters))
        properties += [("cores", topology.cores), ("threads", topology.threads)]
    return ["-smp", option_string(str(current), properties)]


def _boot(domain: Domain, spec: LaunchSpec) -> list[str]:
    os = domain.os
    if os.kernel is None:
        if not os.boot:
            return []
        order = "".join(_BOOT_ORDER[device] for device in os.boot)
        return ["-boot", option_string(None, [("order", order)])]
    argv = ["-kernel", os.kernel]
    if os.initrd is not None:
        argv += ["-initrd", os.initrd]
    if os.cmdline is not None:
        argv += ["-append", os.cmdline]
    if spec.kernel_firmware is not None:
        argv += ["-bios", spec.kernel_firmware]
    return argv


def _clock(domain: Domain, board: Board, accel: Accel) -> list[str]:
    """``-rtc`` and the PIT's lost-tick policy (timers for the machine and CPU are elsewhere).

    Raises:
        UnsupportedConfig: a timer or tick policy QEMU cannot provide.
    """
    clock = domain.clock
    if clock is None:
        return []
    base = "localtime" if clock.offset is ClockOffset.LOCALTIME else "utc"
    rtc: list[Property] = [("base", base)]
    argv: list[str] = []
    for timer in clock.timers:
        item = f"timer '{timer.name.value}'"
        if timer.name is TimerName.TSC:
            raise board.refuse(item, "not supported")
        if timer.name in _FIXED_TIMERS and timer.present is False:
            raise board.refuse(item, "cannot be removed")
        if timer.tickpolicy is None:
            continue
        match timer.name:
            case TimerName.RTC:
                if timer.tickpolicy is TickPolicy.CATCHUP:
                    rtc.append(("driftfix", "slew"))
                elif timer.tickpolicy is not TickPolicy.DELAY:
                    raise board.refuse(item, f"tick policy '{timer.tickpolicy.value}'")
            case TimerName.PIT:
                policy = _PIT_POLICIES.get(timer.tickpolicy)
                if policy is None:
                    raise board.refuse(item, f"tick policy '{timer.tickpolicy.value}'")
                if accel is Accel.KVM:
                    argv += ["-global", f"kvm-pit.lost_tick_policy={policy}"]
            case _:
                raise board.refuse(item, "takes no tick policy")
    return ["-rtc", option_string(None, rtc), *argv]


def _lifecycle(domain: Domain, board: Board) -> list[str]:
    """``-action`` for what the guest's power-off and reboot do (crashes need a panic device,
    which the definition cannot have).

    Raises:
        UnsupportedConfig: an action QEMU cannot take by itself.
    """
    actions: list[Property] = []
    match domain.on_poweroff:
        case LifecycleAction.PRESERVE:
            actions.append(("shutdown", "pause"))
        case LifecycleAction.RESTART:
            raise board.refuse("on_poweroff", "'restart' is not supported")
    match domain.on_reboot:
        case LifecycleAction.DESTROY:
            if domain.on_poweroff is LifecycleAction.PRESERVE:
                raise board.refuse("on_reboot", "'destroy' with on_poweroff 'preserve'")
            actions.append(("reboot", "shutdown"))
        case LifecycleAction.PRESERVE:
            raise board.refuse("on_reboot", "'preserve' is not supported")
    argv: list[str] = []
    for action in actions:
        argv += ["-action", option_string(None, [action])]
    return argv
