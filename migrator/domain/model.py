"""The domain definition: the subset of libvirt's domain XML that migrator runs.

Records are frozen and hold what the document says, no more: an attribute that was not
written is ``None`` here, and :func:`migrator.domain.defaults.with_defaults` fills in what
libvirt would. Enum values are the XML spellings.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

from migrator.domain.devices import Devices

__all__ = [
    "Arch",
    "BootDevice",
    "Clock",
    "ClockOffset",
    "Cpu",
    "CpuCheck",
    "CpuFallback",
    "CpuFeature",
    "CpuMatch",
    "CpuMode",
    "CpuTopology",
    "Domain",
    "DomainType",
    "Feature",
    "FeaturePolicy",
    "LifecycleAction",
    "Os",
    "OsType",
    "TickPolicy",
    "Timer",
    "TimerName",
    "VcpuPlacement",
]


class DomainType(enum.Enum):
    """``<domain type='...'>``: the accelerator."""

    KVM = "kvm"
    QEMU = "qemu"


class OsType(enum.Enum):
    """``<os><type>``: full virtualisation only."""

    HVM = "hvm"


class Arch(enum.Enum):
    """``<os><type arch='...'>``: guest architectures QEMU runs."""

    X86_64 = "x86_64"
    I686 = "i686"
    AARCH64 = "aarch64"
    ARMV7L = "armv7l"
    PPC64 = "ppc64"
    PPC64LE = "ppc64le"
    S390X = "s390x"
    RISCV64 = "riscv64"


class BootDevice(enum.Enum):
    """``<os><boot dev='...'/>``."""

    HD = "hd"
    CDROM = "cdrom"
    NETWORK = "network"
    FD = "fd"


class Feature(enum.Enum):
    """The on/off features of ``<features>`` that take no settings (``<acpi/>``)."""

    ACPI = "acpi"
    APIC = "apic"
    PAE = "pae"
    HAP = "hap"
    PRIVNET = "privnet"
    VMCOREINFO = "vmcoreinfo"
    PVSPINLOCK = "pvspinlock"


class CpuMode(enum.Enum):
    """``<cpu mode='...'>``."""

    CUSTOM = "custom"
    HOST_MODEL = "host-model"
    HOST_PASSTHROUGH = "host-passthrough"


class CpuMatch(enum.Enum):
    """``<cpu match='...'>``: how strictly a custom model must be honoured."""

    MINIMUM = "minimum"
    EXACT = "exact"
    STRICT = "strict"


class CpuCheck(enum.Enum):
    """``<cpu check='...'>``: how the started CPU is verified against the definition."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"


class CpuFallback(enum.Enum):
    """``<model fallback='...'>``: whether another model may stand in."""

    ALLOW = "allow"
    FORBID = "forbid"


class FeaturePolicy(enum.Enum):
    """``<feature policy='...'>`` of a CPU feature (``require`` when not written)."""

    FORCE = "force"
    REQUIRE = "require"
    OPTIONAL = "optional"
    DISABLE = "disable"
    FORBID = "forbid"


class VcpuPlacement(enum.Enum):
    """``<vcpu placement='...'>``."""

    STATIC = "static"
    AUTO = "auto"


class LifecycleAction(enum.Enum):
    """``<on_poweroff>``, ``<on_reboot>``, ``<on_crash>``."""

    DESTROY = "destroy"
    RESTART = "restart"
    PRESERVE = "preserve"


class ClockOffset(enum.Enum):
    """``<clock offset='...'>``: what the guest's RTC starts from."""

    UTC = "utc"
    LOCALTIME = "localtime"


class TimerName(enum.Enum):
    """``<timer name='...'>``."""

    RTC = "rtc"
    PIT = "pit"
    HPET = "hpet"
    KVMCLOCK = "kvmclock"
    HYPERVCLOCK = "hypervclock"
    TSC = "tsc"


class TickPolicy(enum.Enum):
    """``<timer tickpolicy='...'>``: what happens to ticks the guest missed."""

    DELAY = "delay"
    CATCHUP = "catchup"
    MERGE = "merge"
    DISCARD = "discard"


@dataclass(frozen=True, kw_only=True)
class Os:
    """``<os>``: how the guest boots."""

    type: OsType = OsType.HVM
    arch: Arch | None = None
    machine: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    boot: tuple[BootDevice, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CpuFeature:
    """``<feature policy='...' name='...'/>`` inside ``<cpu>``."""

    name: str
    policy: FeaturePolicy = FeaturePolicy.REQUIRE


@dataclass(frozen=True, kw_only=True)
class CpuTopology:
    """``<topology sockets dies clusters cores threads/>``: the product is the vCPU count."""

    sockets: int
    dies: int = 1
    clusters: int = 1
    cores: int
    threads: int

    @property
    def vcpus(self) -> int:
        """How many vCPUs this topology holds."""
        return self.sockets * self.dies * self.clusters * self.cores * self.threads


@dataclass(frozen=True, kw_only=True)
class Cpu:
    """``<cpu>``: the guest CPU, or a host CPU description for ``update_cpu``.

    A ``host-passthrough`` CPU may carry a model, vendor and features that older libvirt
    copied from the host: they describe the host, not the guest, and the inactive and
    migratable forms leave them out.
    """

    mode: CpuMode = CpuMode.CUSTOM
    match: CpuMatch | None = None
    check: CpuCheck | None = None
    migratable: bool | None = None
    model: str | None = None
    fallback: CpuFallback | None = None
    vendor: str | None = None
    topology: CpuTopology | None = None
    features: tuple[CpuFeature, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Timer:
    """``<timer name='...' tickpolicy='...' present='yes|no'/>``."""

    name: TimerName
    present: bool | None = None
    tickpolicy: TickPolicy | None = None


@dataclass(frozen=True, kw_only=True)
class Clock:
    """``<clock offset='...'>`` and its timers."""

    offset: ClockOffset = ClockOffset.UTC
    timers: tuple[Timer, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Domain:
    """A ``<domain>`` definition.

    ``id`` is set only for a running domain (live data). Memory sizes are in KiB.
    ``metadata`` is the serialized ``<metadata>`` element, kept verbatim.
    ``current_memory_kib``, ``current_vcpus`` and the lifecycle actions are ``None`` when
    not written; see :func:`migrator.domain.defaults.with_defaults` for what that means.
    """

    type: DomainType
    name: str
    uuid: uuid.UUID
    id: int | None = None
    title: str | None = None
    description: str | None = None
    metadata: str | None = None
    memory_kib: int
    current_memory_kib: int | None = None
    vcpus: int = 1
    current_vcpus: int | None = None
    vcpu_placement: VcpuPlacement | None = None
    os: Os = field(default_factory=Os)
    features: frozenset[Feature] = frozenset()
    cpu: Cpu | None = None
    clock: Clock | None = None
    on_poweroff: LifecycleAction | None = None
    on_reboot: LifecycleAction | None = None
    on_crash: LifecycleAction | None = None
    devices: Devices = field(default_factory=Devices)
