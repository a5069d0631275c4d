"""The ABI stability check: would a guest started from ``target`` be the guest ``source`` is?

Used wherever a running guest's memory meets another definition: migration with a
destination XML, save-image edits, restores and snapshot reverts. It compares only what the
guest can see, with libvirt's messages (``Target CPU model X does not match source Y``).
Titles, descriptions, metadata, passwords, listen addresses, ports, disk sources and the
host side of interfaces are not part of it.

Both definitions are compared in their migratable form (:func:`migratable`): two ways of
writing one guest, such as a live definition and the inactive one it was started from,
compare equal. :func:`compare_abi` compares definitions exactly as given.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TypeVar

from migrator.domain.addresses import Address, address_type, describe_address
from migrator.domain.devices import (
    Console,
    Controller,
    Devices,
    Disk,
    Input,
    Interface,
    Memballoon,
    Rng,
    Serial,
    Video,
)
from migrator.domain.errors import AbiMismatch
from migrator.domain.forms import migratable
from migrator.domain.model import (
    Clock,
    Cpu,
    CpuFeature,
    CpuMode,
    Domain,
    Feature,
    FeaturePolicy,
    Timer,
)

__all__ = ["check_abi_stability", "compare_abi"]

#: What libvirt prints for a value that is not set.
NULL = "<null>"

#: Feature policies that change what a host-passthrough guest sees; the others only check
#: the host.
_PASSTHROUGH_GUEST_POLICIES = frozenset({FeaturePolicy.FORCE, FeaturePolicy.DISABLE})

T = TypeVar("T")


def check_abi_stability(source: Domain, target: Domain) -> None:
    """Check that ``target`` describes the guest ``source`` describes.

    Both are put in the migratable form first (:func:`migratable`).

    Raises:
        AbiMismatch: the first difference, named in the message and in ``field``.
    """
    compare_abi(migratable(source), migratable(target))


def compare_abi(source: Domain, target: Domain) -> None:
    """Compare the guest-visible parts of two definitions exactly as they are written.

    Unlike :func:`check_abi_stability` this does not canonicalise: a definition in another
    form (live against inactive, defaults written out or not) can differ here although it
    describes the same guest.

    Raises:
        AbiMismatch: the first difference, named in the message and in ``field``.
    """
    _same("type", source.type, target.type, "Target domain virt type {t} does not match source {s}")
    _same("uuid", source.uuid, target.uuid, "Target domain uuid {t} does not match source {s}")
    _same("name", source.name, target.name, "Target domain name '{t}' does not match source '{s}'")
    _same(
        "memory",
        source.memory_kib,
        target.memory_kib,
        "Target domain max memory {t} does not match source {s}",
    )
    _same(
        "vcpus", source.vcpus, target.vcpus, "Target domain vCPU max {t} does not match source {s}"
    )
    _same(
        "current_vcpus",
        source.current_vcpus,
        target.current_vcpus,
        "Target domain vCPU count {t} does not match source {s}",
    )
    _same(
        "os.type",
        source.os.type,
        target.os.type,
        "Target domain OS type {t} does not match source {s}",
    )
    _same(
        "os.arch",
        source.os.arch,
        target.os.arch,
        "Target domain architecture {t} does not match source {s}",
    )
    _same(
        "os.machine",
        source.os.machine,
        target.os.machine,
        "Target domain machine type {t} does not match source {s}",
    )
    _compare_features(source.features, target.features)
    _compare_cpu(source.cpu, target.cpu)
    _compare_clock(source.clock, target.clock)
    _compare_devices(source.devices, target.devices)


# ------------------------------------------------------------------------------ helpers


def _show(value: object) -> str:
    if value is None:
        return NULL
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _same(field: str, source: object, target: object, message: str) -> None:
    if source != target:
        shown_source, shown_target = _show(source), _show(target)
        raise AbiMismatch(
            message.format(s=shown_source, t=shown_target),
            field=field,
            source=shown_source,
            target=shown_target,
        )


def _compare_features(source: frozenset[Feature], target: frozenset[Feature]) -> None:
    for feature in Feature:
        in_source, in_target = feature in source, feature in target
        if in_source != in_target:
            shown_source, shown_target = _on_off(in_source), _on_off(in_target)
            raise AbiMismatch(
                f"State of feature '{feature.value}' differs: source: '{shown_source}', "
                f"destination: '{shown_target}'",
                field=f"features.{feature.value}",
                source=shown_source,
                target=shown_target,
            )


def _on_off(value: bool) -> str:
    return "on" if value else "off"


# ---------------------------------------------------------------------------------- cpu


def _compare_cpu(source: Cpu | None, target: Cpu | None) -> None:
    if source is None or target is None:
        if source is not target:
            raise AbiMismatch(
                "Target CPU does not match source",
                field="cpu",
                source=NULL if source is None else source.mode.value,
                target=NULL if target is None else target.mode.value,
            )
        return
    _same("cpu.mode", source.mode, target.mode, "Target CPU mode {t} does not match source {s}")
    _same(
        "cpu.migratable",
        source.migratable,
        target.migratable,
        "Target CPU migratable {t} does not match source {s}",
    )
    _same("cpu.model", source.model, target.model, "Target CPU model {t} does not match source {s}")
    _same(
        "cpu.vendor",
        source.vendor,
        target.vendor,
        "Target CPU vendor {t} does not match source {s}",
    )
    for part in ("sockets", "dies", "clusters", "cores", "threads"):
        _same(
            f"cpu.{part}",
            None if source.topology is None else getattr(source.topology, part),
            None if target.topology is None else getattr(target.topology, part),
            f"Target CPU {part} {{t}} does not match source {{s}}",
        )
    source_features, target_features = _guest_features(source), _guest_features(target)
    _same(
        "cpu.feature_count",
        len(source_features),
        len(target_features),
        "Target CPU feature count {t} does not match source {s}",
    )
    for source_feature, target_feature in zip(source_features, target_features, strict=True):
        _same(
            "cpu.feature",
            source_feature.name,
            target_feature.name,
            "Target CPU feature {t} does not match source {s}",
        )
        _same(
            "cpu.feature_policy",
            source_feature.policy,
            target_feature.policy,
            f"Target CPU feature {source_feature.name} policy {{t}} does not match source {{s}}",
        )


def _guest_features(cpu: Cpu) -> list[CpuFeature]:
    """The features that shape the guest: for host-passthrough, only forced and disabled ones."""
    if cpu.mode is CpuMode.HOST_PASSTHROUGH:
        return [f for f in cpu.features if f.policy in _PASSTHROUGH_GUEST_POLICIES]
    return list(cpu.features)


def _compare_clock(source: Clock | None, target: Clock | None) -> None:
    _same(
        "clock.offset",
        None if source is None else source.offset,
        None if target is None else target.offset,
        "Target clock offset {t} does not match source {s}",
    )
    source_timers = {} if source is None else {t.name: t for t in source.timers}
    target_timers = {} if target is None else {t.name: t for t in target.timers}
    for name in sorted(source_timers.keys() | target_timers.keys(), key=lambda n: n.value):
        source_timer, target_timer = source_timers.get(name), target_timers.get(name)
        _same(
            "clock.timer",
            _timer_text(source_timer),
            _timer_text(target_timer),
            f"Target timer {name.value} {{t}} does not match source {{s}}",
        )


def _timer_text(timer: Timer | None) -> str | None:
    if timer is None:
        return None
    return f"present={_show(timer.present)} tickpolicy={_show(timer.tickpolicy)}"


# ------------------------------------------------------------------------------ devices


def _compare_devices(source: Devices, target: Devices) -> None:
    _compare_each("disk", "disk", source.disks, target.disks, _compare_disk)
    _compare_each(
        "controller", "controller", source.controllers, target.controllers, _compare_controller
    )
    _compare_each(
        "interface",
        "network interface",
        source.interfaces,
        target.interfaces,
        _compare_interface,
    )
    _compare_each("input", "input device", source.inputs, target.inputs, _compare_input)
    _compare_each("serial", "serial port", source.serials, target.serials, _compare_serial)
    _compare_each("console", "console", source.consoles, target.consoles, _compare_console)
    _compare_each("video", "video card", source.videos, target.videos, _compare_video)
    _compare_each(
        "memballoon",
        "memory balloon",
        _listed(source.memballoon),
        _listed(target.memballoon),
        _compare_memballoon,
    )
    _compare_each("rng", "RNG device", source.rngs, target.rngs, _compare_rng)


def _listed(item: T | None) -> tuple[T, ...]:
    return () if item is None else (item,)


def _compare_each(
    kind: str,
    words: str,
    source: Sequence[T],
    target: Sequence[T],
    compare: Callable[[T, T], None],
) -> None:
    _same(
        f"{kind}.count",
        len(source),
        len(target),
        f"Target domain {words} count {{t}} does not match source {{s}}",
    )
    for source_device, target_device in zip(source, target, strict=True):
        compare(source_device, target_device)


def _compare_address(kind: str, source: Address | None, target: Address | None) -> None:
    source_type = None if source is None else address_type(source)
    target_type = None if target is None else address_type(target)
    _same(
        f"{kind}.address",
        source_type,
        target_type,
        f"Target {kind} address type {{t}} does not match source {{s}}",
    )
    if source is not None and target is not None:
        _same(
            f"{kind}.address",
            describe_address(source),
            describe_address(target),
            f"Target {kind} {address_type(source).value} address {{t}} does not match source {{s}}",
        )


def _compare_disk(source: Disk, target: Disk) -> None:
    _same(
        "disk.device",
        source.device,
        target.device,
        "Target disk device {t} does not match source {s}",
    )
    _same(
        "disk.bus",
        source.target_bus,
        target.target_bus,
        "Target disk bus {t} does not match source {s}",
    )
    _same(
        "disk.target",
        source.target_dev,
        target.target_dev,
        "Target disk {t} does not match source {s}",
    )
    _same(
        "disk.serial",
        source.serial,
        target.serial,
        "Target disk serial {t} does not match source {s}",
    )
    _same(
        "disk.readonly",
        source.readonly,
        target.readonly,
        f"Target disk {source.target_dev} readonly {{t}} does not match source {{s}}",
    )
    _compare_address("disk", source.address, target.address)


def _compare_controller(source: Controller, target: Controller) -> None:
    _same(
        "controller.type",
        source.type,
        target.type,
        "Target controller type {t} does not match source {s}",
    )
    _same(
        "controller.index",
        source.index,
        target.index,
        "Target controller index {t} does not match source {s}",
    )
    described = f"Target {source.type.value} controller {source.index}"
    for field, source_value, target_value in (
        ("model", source.model, target.model),
        ("model_name", source.model_name, target.model_name),
        ("target_chassis_nr", source.target_chassis_nr, target.target_chassis_nr),
        ("target_chassis", source.target_chassis, target.target_chassis),
        ("target_port", source.target_port, target.target_port),
        ("ports", source.ports, target.ports),
        ("vectors", source.vectors, target.vectors),
    ):
        _same(
            f"controller.{field}",
            source_value,
            target_value,
            f"{described} {field.replace('_', ' ')} {{t}} does not match source {{s}}",
        )
    _compare_address("controller", source.address, target.address)


def _compare_interface(source: Interface, target: Interface) -> None:
    _same(
        "interface.mac",
        source.mac,
        target.mac,
        "Target network card mac {t} does not match source {s}",
    )
    _same(
        "interface.model",
        source.model,
        target.model,
        "Target network card model {t} does not match source {s}",
    )
    _compare_address("interface", source.address, target.address)


def _compare_input(source: Input, target: Input) -> None:
    _same(
        "input.type",
        source.type,
        target.type,
        "Target input device type {t} does not match source {s}",
    )
    _same(
        "input.bus", source.bus, target.bus, "Target input device bus {t} does not match source {s}"
    )
    _compare_address("input", source.address, target.address)


def _compare_serial(source: Serial, target: Serial) -> None:
    _same(
        "serial.target_type",
        source.target_type,
        target.target_type,
        "Target serial type {t} does not match source {s}",
    )
    _same(
        "serial.target_port",
        source.target_port,
        target.target_port,
        "Target serial port {t} does not match source {s}",
    )
    _same(
        "serial.target_model",
        source.target_model,
        target.target_model,
        "Target serial model {t} does not match source {s}",
    )
    _compare_address("serial", source.address, target.address)


def _compare_console(source: Console, target: Console) -> None:
    _same(
        "console.target_type",
        source.target_type,
        target.target_type,
        "Target console type {t} does not match source {s}",
    )
    _same(
        "console.target_port",
        source.target_port,
        target.target_port,
        "Target console port {t} does not match source {s}",
    )


def _compare_video(source: Video, target: Video) -> None:
    _same(
        "video.model",
        source.model,
        target.model,
        "Target video card model {t} does not match source {s}",
    )
    for field, source_value, target_value in (
        ("ram", source.ram, target.ram),
        ("vram", source.vram, target.vram),
        ("vgamem", source.vgamem, target.vgamem),
        ("heads", source.heads, target.heads),
        ("primary", source.primary, target.primary),
    ):
        _same(
            f"video.{field}",
            source_value,
            target_value,
            f"Target video card {field} {{t}} does not match source {{s}}",
        )
    _compare_address("video", source.address, target.address)


def _compare_memballoon(source: Memballoon, target: Memballoon) -> None:
    _same(
        "memballoon.model",
        source.model,
        target.model,
        "Target balloon model {t} does not match source {s}",
    )
    _same(
        "memballoon.autodeflate",
        source.autodeflate,
        target.autodeflate,
        "Target balloon autodeflate {t} does not match source {s}",
    )
    _compare_address("memballoon", source.address, target.address)


def _compare_rng(source: Rng, target: Rng) -> None:
    _same("rng.model", source.model, target.model, "Target RNG model {t} does not match source {s}")
    _compare_address("rng", source.address, target.address)
