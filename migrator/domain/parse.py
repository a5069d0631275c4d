"""Parsing libvirt domain XML into a :class:`~migrator.domain.model.Domain`.

The parser reads the document through :mod:`xmlsafe` (no DTD, no entities, bounded size and
depth) and refuses by name whatever migrator cannot run. Values are kept as written; what
libvirt would fill in for a value that is not written is the business of
:mod:`migrator.domain.defaults`. The only values the parser makes up are those libvirt makes
up at parse time: a UUID and MAC addresses that are not written, from ``entropy``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable

from lxml import etree

import xmlsafe
from migrator.domain.devices import Devices
from migrator.domain.errors import InvalidDomainXML, UnsupportedElement
from migrator.domain.model import (
    Arch,
    BootDevice,
    Clock,
    ClockOffset,
    Cpu,
    CpuCheck,
    CpuFallback,
    CpuFeature,
    CpuMatch,
    CpuMode,
    CpuTopology,
    Domain,
    DomainType,
    Feature,
    FeaturePolicy,
    LifecycleAction,
    Os,
    OsType,
    TickPolicy,
    Timer,
    TimerName,
    VcpuPlacement,
)
from migrator.domain.parse_devices import host_path, parse_devices
from migrator.domain.reading import ElementReader, qualified_name, reading
from migrator.domain.units import memory_kib

__all__ = ["MAX_DOMAIN_XML_BYTES", "parse_cpu", "parse_domain"]

#: Largest domain document accepted by default. A definition is a few KiB; metadata can add
#: some more.
MAX_DOMAIN_XML_BYTES = 1024 * 1024

#: The most vCPUs QEMU's x86 machines take.
MAX_VCPUS = 4096

_TOKEN = re.compile(r"[A-Za-z0-9_.+-]+", re.ASCII)
_VENDOR = re.compile(r"[A-Za-z0-9]+", re.ASCII)


def parse_domain(
    xml: str | bytes,
    *,
    max_bytes: int = MAX_DOMAIN_XML_BYTES,
    entropy: Callable[[int], bytes] = secrets.token_bytes,
) -> Domain:
    """Return the domain that ``xml`` defines.

    A ``<uuid>`` or interface ``<mac>`` that is not written is generated from ``entropy``
    (``entropy(n)`` returns ``n`` random bytes), as libvirt does.

    Raises:
        InvalidDomainXML: unsafe or malformed XML (a DOCTYPE, entities, more than
            ``max_bytes``, nesting too deep), or a missing or malformed value.
        UnsupportedElement: an element, attribute (:class:`UnsupportedAttribute`) or value
            (:class:`UnsupportedValue`) that would change the guest and that migrator
            cannot run, named in the message.
    """
    root = _parse_document(xml, max_bytes=max_bytes, tag="domain")
    with reading(root, "/domain") as domain:
        vcpus, current_vcpus, vcpu_placement = _vcpu(domain)
        parsed = Domain(
            type=domain.to_enum(domain.required("type"), DomainType, what="domain type"),
            id=domain.int_attribute("id"),
            name=_name(domain),
            uuid=_uuid(domain, entropy),
            title=_title(domain),
            description=domain.child_text("description"),
            metadata=_metadata(domain),
            memory_kib=_required_memory(domain),
            current_memory_kib=_memory(domain, "currentMemory"),
            vcpus=vcpus,
            current_vcpus=current_vcpus,
            vcpu_placement=vcpu_placement,
            os=_os(domain),
            features=_features(domain),
            cpu=_optional_cpu(domain),
            clock=_clock(domain),
            on_poweroff=_lifecycle(domain, "on_poweroff"),
            on_reboot=_lifecycle(domain, "on_reboot"),
            on_crash=_lifecycle(domain, "on_crash"),
            devices=_devices(domain, entropy),
        )
        _check_consistency(domain, parsed)
    return parsed


def parse_cpu(xml: str | bytes, *, max_bytes: int = MAX_DOMAIN_XML_BYTES) -> Cpu:
    """Return the ``<cpu>`` element ``xml`` describes: a guest CPU or a host CPU description.

    A host CPU description (for :func:`migrator.domain.update_cpu`) is written the way
    libvirt's domain capabilities write the host-model CPU: ``<cpu><model>...</model>
    <vendor>...</vendor><feature policy='require' name='...'/>...</cpu>``.

    Raises:
        InvalidDomainXML, UnsupportedElement: as :func:`parse_domain`.
    """
    root = _parse_document(xml, max_bytes=max_bytes, tag="cpu")
    with reading(root, "/cpu") as cpu:
        return _cpu(cpu)


def _parse_document(xml: str | bytes, *, max_bytes: int, tag: str) -> etree._Element:
    try:
        root = xmlsafe.parse_untrusted(xml, max_bytes=max_bytes)
    except xmlsafe.UnsafeXMLError as exc:
        raise InvalidDomainXML(f"invalid {tag} XML: {exc.reason}") from None
    if root.tag != tag:
        raise InvalidDomainXML(
            f"expected a <{tag}> document, not <{qualified_name(root)}>", path="/"
        )
    return root


# ----------------------------------------------------------------------------- identity


def _name(domain: ElementReader) -> str:
    with domain.read_child("name") as name:
        if name is None:
            raise domain.invalid("missing domain name")
        text = name.required_text()
    if "/" in text or "\n" in text:
        raise domain.invalid(f"domain name '{text}' cannot contain '/' or a newline")
    return text


def _uuid(domain: ElementReader, entropy: Callable[[int], bytes]) -> uuid.UUID:
    text = domain.child_text("uuid")
    if text is None:
        return uuid.UUID(bytes=entropy(16), version=4)
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise domain.invalid(f"invalid domain uuid '{text}'") from None


def _title(domain: ElementReader) -> str | None:
    title = domain.child_text("title")
    if title is not None and "\n" in title:
        raise domain.invalid("domain title cannot contain a newline")
    return title


def _metadata(domain: ElementReader) -> str | None:
    element = domain.child("metadata")
    if element is None:
        return None
    return etree.tostring(element, encoding="unicode", with_tail=False)


# ----------------------------------------------------------------------- memory, vcpus


def _memory(domain: ElementReader, tag: str) -> int | None:
    with domain.read_child(tag) as memory:
        if memory is None:
            return None
        try:
            return memory_kib(memory.required_text(), memory.attribute("unit"))
        except ValueError as exc:
            raise memory.invalid(f"{tag}: {exc}") from None


def _required_memory(domain: ElementReader) -> int:
    kib = _memory(domain, "memory")
    if kib is None:
        raise domain.invalid("missing memory size")
    if kib == 0:
        raise domain.invalid("memory size must be above zero")
    return kib


def _vcpu(domain: ElementReader) -> tuple[int, int | None, VcpuPlacement | None]:
    """Return the vCPU count, the current count and the placement (1 vCPU when not written)."""
    with domain.read_child("vcpu") as vcpu:
        if vcpu is None:
            return 1, None, None
        return (
            vcpu.to_int(vcpu.required_text(), what="vcpu count", minimum=1, maximum=MAX_VCPUS),
            vcpu.int_attribute("current", minimum=1, maximum=MAX_VCPUS),
            vcpu.enum_attribute("placement", VcpuPlacement, what="vcpu placement"),
        )


# ----------------------------------------------------------------------------------- os


def _os(domain: ElementReader) -> Os:
    with domain.read_child("os") as os_element:
        if os_element is None:
            raise domain.invalid("missing os element")
        with os_element.read_child("type") as type_element:
            if type_element is None:
                raise os_element.invalid("missing os type")
            os_type = type_element.to_enum(
                type_element.required_text().strip(), OsType, what="os type"
            )
            arch = type_element.enum_attribute("arch", Arch, what="architecture")
            machine = type_element.attribute("machine")
            if machine is not None and not _TOKEN.fullmatch(machine):
                raise type_element.invalid(f"invalid machine type '{machine}'")
        kernel = os_element.child_text("kernel")
        initrd = os_element.child_text("initrd")
        boot: list[BootDevice] = []
        for element in os_element.children("boot"):
            with reading(element, os_element.child_path(element)) as boot_element:
                device = boot_element.to_enum(
                    boot_element.required("dev"), BootDevice, what="boot device"
                )
            if device in boot:
                raise os_element.invalid(f"boot device '{device.value}' is listed twice")
            boot.append(device)
        return Os(
            type=os_type,
            arch=arch,
            machine=machine,
            kernel=None if kernel is None else host_path(os_element, kernel, what="kernel"),
            initrd=None if initrd is None else host_path(os_element, initrd, what="initrd"),
            cmdline=os_element.child_text("cmdline"),
            boot=tuple(boot),
        )


def _features(domain: ElementReader) -> frozenset[Feature]:
    with domain.read_child("features") as features:
        if features is None:
            return frozenset()
        found: set[Feature] = set()
        for element in features.element.iterchildren():
            name = qualified_name(element)
            path = features.child_path(element)
            try:
                feature = Feature(name)
            except ValueError:
                raise UnsupportedElement(name, path=path) from None
            features.child(element.tag)
            with reading(element, path):
                found.add(feature)
        return frozenset(found)


# ---------------------------------------------------------------------------------- cpu


def _optional_cpu(domain: ElementReader) -> Cpu | None:
    with domain.read_child("cpu") as cpu:
        return None if cpu is None else _cpu(cpu)


def _cpu(cpu: ElementReader) -> Cpu:
    mode = cpu.enum_attribute("mode", CpuMode, what="CPU mode") or CpuMode.CUSTOM
    migratable = cpu.on_off("migratable")
    if migratable is not None and mode is not CpuMode.HOST_PASSTHROUGH:
        raise cpu.invalid("attribute 'migratable' is only allowed for a host-passthrough CPU")
    model = fallback = None
    with cpu.read_child("model") as model_element:
        if model_element is not None:
            fallback = model_element.enum_attribute("fallback", CpuFallback, what="CPU fallback")
            model = model_element.text().strip() or None
            if model is None and mode is not CpuMode.HOST_MODEL:
                raise model_element.invalid("missing CPU model name")
            if model is not None and not _TOKEN.fullmatch(model):
                raise model_element.invalid(f"invalid CPU model '{model}'")
    vendor = cpu.child_text("vendor")
    if vendor is not None:
        vendor = vendor.strip()
        if not _VENDOR.fullmatch(vendor):
            raise cpu.invalid(f"invalid CPU vendor '{vendor}'")
        if model is None:
            raise cpu.invalid("CPU vendor specified without CPU model")
    return Cpu(
        mode=mode,
        match=cpu.enum_attribute("match", CpuMatch, what="CPU match"),
        check=cpu.enum_attribute("check", CpuCheck, what="CPU check"),
        migratable=migratable,
        model=model,
        fallback=fallback,
        vendor=vendor,
        topology=_topology(cpu),
        features=_cpu_features(cpu),
    )


def _topology(cpu: ElementReader) -> CpuTopology | None:
    with cpu.read_child("topology") as topology:
        if topology is None:
            return None
        counts = {
            name: topology.int_attribute(name, minimum=1, maximum=MAX_VCPUS)
            for name in ("sockets", "dies", "clusters", "cores", "threads")
        }
        for name in ("sockets", "cores", "threads"):
            if counts[name] is None:
                raise topology.invalid(f"missing attribute '{name}' of element topology")
        return CpuTopology(
            sockets=counts["sockets"] or 1,
            dies=counts["dies"] or 1,
            clusters=counts["clusters"] or 1,
            cores=counts["cores"] or 1,
            threads=counts["threads"] or 1,
        )


def _cpu_features(cpu: ElementReader) -> tuple[CpuFeature, ...]:
    features: list[CpuFeature] = []
    names: set[str] = set()
    for element in cpu.children("feature"):
        with reading(element, cpu.child_path(element)) as feature:
            name = feature.required("name")
            if not _TOKEN.fullmatch(name):
                raise feature.invalid(f"invalid CPU feature name '{name}'")
            if name in names:
                raise feature.invalid(f"CPU feature '{name}' is specified more than once")
            names.add(name)
            policy = feature.enum_attribute("policy", FeaturePolicy, what="CPU feature policy")
            features.append(CpuFeature(name=name, policy=policy or FeaturePolicy.REQUIRE))
    return tuple(features)


# ------------------------------------------------------------------- clock, lifecycle


def _clock(domain: ElementReader) -> Clock | None:
    with domain.read_child("clock") as clock:
        if clock is None:
            return None
        offset = clock.enum_attribute("offset", ClockOffset, what="clock offset")
        timers: list[Timer] = []
        for element in clock.children("timer"):
            with reading(element, clock.child_path(element)) as timer:
                name = timer.to_enum(timer.required("name"), TimerName, what="timer")
                if any(existing.name is name for existing in timers):
                    raise timer.invalid(f"timer '{name.value}' is listed twice")
                timers.append(
                    Timer(
                        name=name,
                        present=timer.yes_no("present"),
                        tickpolicy=timer.enum_attribute(
                            "tickpolicy", TickPolicy, what="timer tickpolicy"
                        ),
                    )
                )
        return Clock(offset=offset or ClockOffset.UTC, timers=tuple(timers))


def _lifecycle(domain: ElementReader, tag: str) -> LifecycleAction | None:
    with domain.read_child(tag) as action:
        if action is None:
            return None
        return action.to_enum(action.required_text().strip(), LifecycleAction, what=tag)


def _devices(domain: ElementReader, entropy: Callable[[int], bytes]) -> Devices:
    with domain.read_child("devices") as devices:
        return Devices() if devices is None else parse_devices(devices, entropy=entropy)


# ------------------------------------------------------------------------- consistency


def _check_consistency(domain: ElementReader, parsed: Domain) -> None:
    current_memory = parsed.current_memory_kib
    if current_memory is not None and current_memory > parsed.memory_kib:
        raise domain.invalid(
            f"current memory {current_memory} KiB is above memory {parsed.memory_kib} KiB"
        )
    if parsed.current_vcpus is not None and parsed.current_vcpus > parsed.vcpus:
        raise domain.invalid(
            f"current vcpu count {parsed.current_vcpus} is above the maximum {parsed.vcpus}"
        )
    topology = parsed.cpu.topology if parsed.cpu is not None else None
    if topology is not None and topology.vcpus != parsed.vcpus:
        raise domain.invalid(
            f"CPU topology holds {topology.vcpus} vCPUs, not the maximum vcpu count {parsed.vcpus}"
        )
