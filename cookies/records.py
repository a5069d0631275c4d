"""The data each cookie feature carries, as frozen records.

Records check their own fields when built (see ``cookies.schema``) and raise
:class:`~cookies.errors.CookieError` naming the field at fault.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cookies.errors import CookieError
from cookies.schema import INT64_MAX, INT64_MIN, NONEMPTY, Record, bounds, is_xml_text

PORT = bounds(0, 65535)
INT32 = bounds(0, 2**31 - 1)


class GraphicsType(enum.Enum):
    """libvirt's graphics types (``virDomainGraphicsType``); seamless migration uses SPICE."""

    SDL = "sdl"
    VNC = "vnc"
    RDP = "rdp"
    DESKTOP = "desktop"
    SPICE = "spice"
    EGL_HEADLESS = "egl-headless"
    DBUS = "dbus"


@dataclass(frozen=True, kw_only=True)
class Graphics(Record):
    """Where the destination's graphics server listens, so clients can be moved to it.

    ``tls_port`` is ``None`` when the server has no TLS port; ``cert_subject`` is the subject
    of the destination's server certificate, when it uses TLS.
    """

    type: GraphicsType
    port: int = field(metadata=PORT)
    tls_port: int | None = field(default=None, metadata=PORT)
    listen: str
    cert_subject: str | None = None


@dataclass(frozen=True)
class LockState(Record):
    """The lock manager's lease state for the guest, opaque to everyone but that manager.

    ``driver`` is ``None`` when the source announced lock state but had none to send (as
    libvirt does with its no-op lock manager); ``leases`` is then empty. The leases are
    UTF-8 text (what lock managers produce), so that the XML form can carry them.

    Raises:
        CookieError: leases without a driver, or leases that are not XML-safe UTF-8 text.
    """

    driver: str | None = field(default=None, metadata=NONEMPTY)
    leases: bytes = b""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.driver is None and self.leases:
            raise CookieError("LockState.leases given without a lock driver", feature="lockstate")
        try:
            text = self.leases.decode("utf-8")
        except UnicodeDecodeError:
            raise CookieError("LockState.leases must be UTF-8 text", feature="lockstate") from None
        if not is_xml_text(text):
            raise CookieError(
                "LockState.leases holds characters that XML cannot carry", feature="lockstate"
            )


class VPortType(enum.Enum):
    """Virtual port profile types whose migration data libvirt transfers."""

    IEEE_802_1QBG = "802.1Qbg"
    IEEE_802_1QBH = "802.1Qbh"
    OPENVSWITCH = "openvswitch"
    MIDONET = "midonet"


@dataclass(frozen=True, kw_only=True)
class NetworkInterface(Record):
    """Port data of one guest NIC (``index`` into the domain's interfaces)."""

    index: int = field(metadata=INT32)
    vporttype: VPortType
    portdata: str | None = None


@dataclass(frozen=True)
class Network(Record):
    """Virtual port data of the guest's NICs, to set up on the destination."""

    interfaces: tuple[NetworkInterface, ...] = ()


@dataclass(frozen=True)
class NbdDisk(Record):
    """A disk to copy over NBD and its size in bytes, so the destination can pre-create it."""

    target: str = field(metadata=NONEMPTY)
    capacity: int


@dataclass(frozen=True)
class Nbd(Record):
    """The destination's NBD server port, and the disks the source will copy to it."""

    port: int | None = field(default=None, metadata=bounds(1, 65535))
    disks: tuple[NbdDisk, ...] = ()


class JobOperation(enum.IntEnum):
    """libvirt's ``VIR_DOMAIN_JOB_OPERATION_*``: what a job does."""

    UNKNOWN = 0
    START = 1
    SAVE = 2
    RESTORE = 3
    MIGRATION_IN = 4
    MIGRATION_OUT = 5
    SNAPSHOT = 6
    SNAPSHOT_REVERT = 7
    DUMP = 8
    BACKUP = 9
    SNAPSHOT_DELETE = 10


@dataclass(frozen=True, kw_only=True)
class JobStatistics(Record):
    """Job statistics, named after libvirt's typed parameters (``virDomainGetJobStats``).

    Every field is optional: ``None`` means "not reported". Times are in milliseconds, sizes
    in bytes, rates in bytes per second, except ``memory_dirty_rate`` (pages per second) and
    the page counters. ``started``, ``stopped`` and ``sent`` are wall-clock timestamps (ms
    since the epoch) from the host that ran the job; ``delta`` is the clock difference the
    destination measured (received minus sent), which turns ``time_elapsed`` and
    ``downtime`` into their ``_net`` forms.
    """

    started: int | None = None
    stopped: int | None = None
    sent: int | None = None
    delta: int | None = field(default=None, metadata=bounds(INT64_MIN, INT64_MAX))
    operation: JobOperation | None = None
    time_elapsed: int | None = None
    time_elapsed_net: int | None = None
    time_remaining: int | None = None
    downtime: int | None = None
    downtime_net: int | None = None
    setup_time: int | None = None
    data_total: int | None = None
    data_processed: int | None = None
    data_remaining: int | None = None
    memory_total: int | None = None
    memory_processed: int | None = None
    memory_remaining: int | None = None
    memory_constant: int | None = None
    memory_normal: int | None = None
    memory_normal_bytes: int | None = None
    memory_bps: int | None = None
    memory_dirty_rate: int | None = None
    memory_page_size: int | None = None
    memory_iteration: int | None = None
    memory_postcopy_requests: int | None = None
    disk_total: int | None = None
    disk_processed: int | None = None
    disk_remaining: int | None = None
    disk_bps: int | None = None
    compression_cache: int | None = None
    compression_bytes: int | None = None
    compression_pages: int | None = None
    compression_cache_misses: int | None = None
    compression_overflow: int | None = None
    auto_converge_throttle: int | None = field(default=None, metadata=bounds(0, 100))
    success: bool | None = None
    errmsg: str | None = None
    disk_temp_used: int | None = None
    disk_temp_total: int | None = None
    vfio_data_transferred: int | None = None


@dataclass(frozen=True)
class Capability(Record):
    """A migration capability the sender supports; ``auto`` when it is always on there."""

    name: str = field(metadata=NONEMPTY)
    auto: bool = False


@dataclass(frozen=True)
class DirtyBitmap(Record):
    """A block dirty bitmap and the alias it travels under in the migration stream."""

    name: str = field(metadata=NONEMPTY)
    alias: str = field(metadata=NONEMPTY)


@dataclass(frozen=True)
class DirtyBitmapDisk(Record):
    """The dirty bitmaps of one disk (by target name) offered or accepted for migration."""

    target: str = field(metadata=NONEMPTY)
    bitmaps: tuple[DirtyBitmap, ...] = ()


@dataclass(frozen=True)
class BlockDirtyBitmaps(Record):
    """Bitmaps the source offers (begin) or the destination accepts (prepare), per disk."""

    disks: tuple[DirtyBitmapDisk, ...] = ()
