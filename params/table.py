"""The parameter table: one :class:`Param` member and one :class:`Row` per migration parameter.

Rows cover every parameter and capability that libvirt's QEMU driver manages
(``src/qemu/qemu_migration_params.c``), every name QEMU 7.2 reports from
``query-migrate-parameters`` and ``query-migrate-capabilities``, and libvirt's typed
parameters that the engine consumes itself (``migrate_uri``, ``listen_address``, ...).
Each member's value is its row's :attr:`Row.key`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from params.flags import MigrationFlag, Side
from params.row import CompressionMethod, FlagMatch, FlagRule, Kind, Row, Unit, ValueType


class Param(enum.Enum):
    """One migration parameter or capability."""

    COMPRESS_LEVEL = "compress-level"
    COMPRESS_THREADS = "compress-threads"
    COMPRESS_WAIT_THREAD = "compress-wait-thread"
    DECOMPRESS_THREADS = "decompress-threads"
    THROTTLE_TRIGGER_THRESHOLD = "throttle-trigger-threshold"
    CPU_THROTTLE_INITIAL = "cpu-throttle-initial"
    CPU_THROTTLE_INCREMENT = "cpu-throttle-increment"
    CPU_THROTTLE_TAILSLOW = "cpu-throttle-tailslow"
    MAX_CPU_THROTTLE = "max-cpu-throttle"
    TLS_CREDS = "tls-creds"
    TLS_HOSTNAME = "tls-hostname"
    TLS_AUTHZ = "tls-authz"
    MAX_BANDWIDTH = "max-bandwidth"
    AVAIL_SWITCHOVER_BANDWIDTH = "avail-switchover-bandwidth"
    DOWNTIME_LIMIT = "downtime-limit"
    X_CHECKPOINT_DELAY = "x-checkpoint-delay"
    BLOCK_INCREMENTAL = "block-incremental"
    MULTIFD_CHANNELS = "multifd-channels"
    MULTIFD_COMPRESSION = "multifd-compression"
    MULTIFD_ZLIB_LEVEL = "multifd-zlib-level"
    MULTIFD_ZSTD_LEVEL = "multifd-zstd-level"
    XBZRLE_CACHE_SIZE = "xbzrle-cache-size"
    MAX_POSTCOPY_BANDWIDTH = "max-postcopy-bandwidth"
    ANNOUNCE_INITIAL = "announce-initial"
    ANNOUNCE_MAX = "announce-max"
    ANNOUNCE_ROUNDS = "announce-rounds"
    ANNOUNCE_STEP = "announce-step"

    XBZRLE = "xbzrle"
    RDMA_PIN_ALL = "rdma-pin-all"
    AUTO_CONVERGE = "auto-converge"
    ZERO_BLOCKS = "zero-blocks"
    COMPRESS = "compress"
    EVENTS = "events"
    POSTCOPY_RAM = "postcopy-ram"
    X_COLO = "x-colo"
    RELEASE_RAM = "release-ram"
    BLOCK = "block"
    RETURN_PATH = "return-path"
    PAUSE_BEFORE_SWITCHOVER = "pause-before-switchover"
    MULTIFD = "multifd"
    DIRTY_BITMAPS = "dirty-bitmaps"
    POSTCOPY_BLOCKTIME = "postcopy-blocktime"
    LATE_BLOCK_ACTIVATE = "late-block-activate"
    X_IGNORE_SHARED = "x-ignore-shared"
    VALIDATE_UUID = "validate-uuid"
    BACKGROUND_SNAPSHOT = "background-snapshot"
    ZERO_COPY_SEND = "zero-copy-send"
    POSTCOPY_PREEMPT = "postcopy-preempt"

    MIGRATE_URI = "migrate_uri"
    DESTINATION_NAME = "destination_name"
    DESTINATION_XML = "destination_xml"
    PERSISTENT_XML = "persistent_xml"
    GRAPHICS_URI = "graphics_uri"
    LISTEN_ADDRESS = "listen_address"
    MIGRATE_DISKS = "migrate_disks"
    MIGRATE_DISKS_DETECT_ZEROES = "migrate_disks_detect_zeroes"
    DISKS_PORT = "disks_port"
    DISKS_URI = "disks_uri"
    COMPRESSION = "compression"


_P = Kind.PARAMETER
_C = Kind.CAPABILITY
_E = Kind.ENGINE
_INT = ValueType.INT
_ULL = ValueType.ULL
_BOOL = ValueType.BOOL
_STR = ValueType.STRING
_SRC = Side.SOURCE
_DST = Side.DESTINATION
_BOTH = Side.BOTH
_PERCENT_1_99 = (1, 99)
_THREADS = (1, 255)


def _required(flag: MigrationFlag) -> FlagRule:
    return FlagRule(flag, FlagMatch.REQUIRED)


#: The table. Iteration order is the order of every generated form.
TABLE: Mapping[Param, Row] = MappingProxyType(
    {
        # migrate-set-parameters
        Param.COMPRESS_LEVEL: Row(
            _P,
            _INT,
            _BOTH,
            "zlib level of multithread compression",
            qmp_name="compress-level",
            typed_name="compression.mt.level",
            value_range=(0, 9),
            requires=CompressionMethod.MT,
        ),
        Param.COMPRESS_THREADS: Row(
            _P,
            _INT,
            _BOTH,
            "compression threads of multithread compression",
            qmp_name="compress-threads",
            typed_name="compression.mt.threads",
            value_range=_THREADS,
            requires=CompressionMethod.MT,
        ),
        Param.COMPRESS_WAIT_THREAD: Row(
            _P,
            _BOOL,
            _SRC,
            "wait for a free compression thread instead of sending raw",
            qmp_name="compress-wait-thread",
        ),
        Param.DECOMPRESS_THREADS: Row(
            _P,
            _INT,
            _BOTH,
            "decompression threads of multithread compression",
            qmp_name="decompress-threads",
            typed_name="compression.mt.dthreads",
            value_range=_THREADS,
            requires=CompressionMethod.MT,
        ),
        Param.THROTTLE_TRIGGER_THRESHOLD: Row(
            _P,
            _INT,
            _SRC,
            "dirty/sent ratio that triggers auto-converge throttling",
            qmp_name="throttle-trigger-threshold",
            unit=Unit.PERCENT,
            value_range=(1, 100),
        ),
        Param.CPU_THROTTLE_INITIAL: Row(
            _P,
            _INT,
            _SRC,
            "first auto-converge CPU throttle",
            qmp_name="cpu-throttle-initial",
            typed_name="auto_converge.initial",
            unit=Unit.PERCENT,
            value_range=_PERCENT_1_99,
            requires=MigrationFlag.AUTO_CONVERGE,
        ),
        Param.CPU_THROTTLE_INCREMENT: Row(
            _P,
            _INT,
            _SRC,
            "auto-converge CPU throttle step",
            qmp_name="cpu-throttle-increment",
            typed_name="auto_converge.increment",
            unit=Unit.PERCENT,
            value_range=_PERCENT_1_99,
            requires=MigrationFlag.AUTO_CONVERGE,
        ),
        Param.CPU_THROTTLE_TAILSLOW: Row(
            _P,
            _BOOL,
            _SRC,
            "throttle in proportion to the dirty rate at the tail",
            qmp_name="cpu-throttle-tailslow",
        ),
        Param.MAX_CPU_THROTTLE: Row(
            _P,
            _INT,
            _SRC,
            "highest auto-converge CPU throttle",
            qmp_name="max-cpu-throttle",
            unit=Unit.PERCENT,
            value_range=_PERCENT_1_99,
        ),
        Param.TLS_CREDS: Row(
            _P,
            _STR,
            _BOTH,
            "id of the tls-creds object; empty turns TLS off",
            qmp_name="tls-creds",
        ),
        Param.TLS_HOSTNAME: Row(
            _P,
            _STR,
            _SRC,
            "host name the destination's certificate is checked against",
            qmp_name="tls-hostname",
            typed_name="tls.destination",
        ),
        Param.TLS_AUTHZ: Row(
            _P,
            _STR,
            _DST,
            "id of the authz object that checks the client certificate",
            qmp_name="tls-authz",
        ),
        Param.MAX_BANDWIDTH: Row(
            _P,
            _ULL,
            _SRC,
            "pre-copy bandwidth limit",
            qmp_name="max-bandwidth",
            typed_name="bandwidth",
            unit=Unit.BYTES_PER_SECOND,
            typed_unit=Unit.MIB_PER_SECOND,
        ),
        Param.AVAIL_SWITCHOVER_BANDWIDTH: Row(
            _P,
            _ULL,
            _SRC,
            "bandwidth assumed for the switchover decision (QEMU 8.2+)",
            qmp_name="avail-switchover-bandwidth",
            typed_name="bandwidth.avail.switchover",
            unit=Unit.BYTES_PER_SECOND,
            typed_unit=Unit.MIB_PER_SECOND,
        ),
        Param.DOWNTIME_LIMIT: Row(
            _P,
            _ULL,
            _SRC,
            "longest acceptable pause at switchover",
            qmp_name="downtime-limit",
            unit=Unit.MILLISECONDS,
            value_range=(0, 2_000_000),
        ),
        Param.X_CHECKPOINT_DELAY: Row(
            _P,
            _ULL,
            _SRC,
            "COLO checkpoint interval",
            qmp_name="x-checkpoint-delay",
            unit=Unit.MILLISECONDS,
            value_range=(0, (1 << 32) - 1),
        ),
        Param.BLOCK_INCREMENTAL: Row(
            _P,
            _BOOL,
            _SRC,
            "legacy block migration copies only the top image",
            qmp_name="block-incremental",
        ),
        Param.MULTIFD_CHANNELS: Row(
            _P,
            _INT,
            _BOTH,
            "parallel migration connections",
            qmp_name="multifd-channels",
            typed_name="parallel.connections",
            value_range=_THREADS,
            requires=MigrationFlag.PARALLEL,
        ),
        Param.MULTIFD_COMPRESSION: Row(
            _P,
            _STR,
            _BOTH,
            "compression method of parallel migration",
            qmp_name="multifd-compression",
            choices=("none", "zlib", "zstd"),
            carries=frozenset({CompressionMethod.ZLIB, CompressionMethod.ZSTD}),
        ),
        Param.MULTIFD_ZLIB_LEVEL: Row(
            _P,
            _INT,
            _BOTH,
            "zlib level of parallel migration",
            qmp_name="multifd-zlib-level",
            typed_name="compression.zlib.level",
            value_range=(0, 9),
            requires=CompressionMethod.ZLIB,
        ),
        Param.MULTIFD_ZSTD_LEVEL: Row(
            _P,
            _INT,
            _BOTH,
            "zstd level of parallel migration",
            qmp_name="multifd-zstd-level",
            typed_name="compression.zstd.level",
            value_range=(0, 20),
            requires=CompressionMethod.ZSTD,
        ),
        Param.XBZRLE_CACHE_SIZE: Row(
            _P,
            _ULL,
            _BOTH,
            "xbzrle page cache size",
            qmp_name="xbzrle-cache-size",
            typed_name="compression.xbzrle.cache",
            unit=Unit.BYTES,
            requires=CompressionMethod.XBZRLE,
        ),
        Param.MAX_POSTCOPY_BANDWIDTH: Row(
            _P,
            _ULL,
            _BOTH,
            "post-copy bandwidth limit",
            qmp_name="max-postcopy-bandwidth",
            typed_name="bandwidth.postcopy",
            unit=Unit.BYTES_PER_SECOND,
            typed_unit=Unit.MIB_PER_SECOND,
            on_postcopy_resume=True,
        ),
        Param.ANNOUNCE_INITIAL: Row(
            _P,
            _ULL,
            _DST,
            "delay before the first self-announcement",
            qmp_name="announce-initial",
            unit=Unit.MILLISECONDS,
            value_range=(0, 100_000),
        ),
        Param.ANNOUNCE_MAX: Row(
            _P,
            _ULL,
            _DST,
            "longest delay between self-announcements",
            qmp_name="announce-max",
            unit=Unit.MILLISECONDS,
            value_range=(0, 100_000),
        ),
        Param.ANNOUNCE_ROUNDS: Row(
            _P,
            _ULL,
            _DST,
            "number of self-announcements",
            qmp_name="announce-rounds",
            value_range=(0, 1000),
        ),
        Param.ANNOUNCE_STEP: Row(
            _P,
            _ULL,
            _DST,
            "increase of the delay between self-announcements",
            qmp_name="announce-step",
            unit=Unit.MILLISECONDS,
            value_range=(1, 10_000),
        ),
        # migrate-set-capabilities
        Param.XBZRLE: Row(
            _C,
            _BOOL,
            _BOTH,
            "xbzrle delta compression",
            qmp_name="xbzrle",
            carries=frozenset({CompressionMethod.XBZRLE}),
        ),
        Param.RDMA_PIN_ALL: Row(
            _C,
            _BOOL,
            _BOTH,
            "pin all guest memory for RDMA",
            qmp_name="rdma-pin-all",
            flag_rule=_required(MigrationFlag.RDMA_PIN_ALL),
        ),
        Param.AUTO_CONVERGE: Row(
            _C,
            _BOOL,
            _SRC,
            "throttle the guest's CPUs until migration converges",
            qmp_name="auto-converge",
            flag_rule=_required(MigrationFlag.AUTO_CONVERGE),
        ),
        Param.ZERO_BLOCKS: Row(
            _C,
            _BOOL,
            _SRC,
            "legacy block migration skips zero blocks",
            qmp_name="zero-blocks",
        ),
        Param.COMPRESS: Row(
            _C,
            _BOOL,
            _BOTH,
            "multithread compression",
            qmp_name="compress",
            carries=frozenset({CompressionMethod.MT}),
        ),
        Param.EVENTS: Row(
            _C,
            _BOOL,
            _BOTH,
            "MIGRATION events; turned on when QEMU starts, never touched after",
            qmp_name="events",
            per_migration=False,
        ),
        Param.POSTCOPY_RAM: Row(
            _C,
            _BOOL,
            _BOTH,
            "allow switching to post-copy",
            qmp_name="postcopy-ram",
            flag_rule=_required(MigrationFlag.POSTCOPY),
        ),
        Param.X_COLO: Row(
            _C,
            _BOOL,
            _BOTH,
            "COLO fault tolerance",
            qmp_name="x-colo",
        ),
        Param.RELEASE_RAM: Row(
            _C,
            _BOOL,
            _SRC,
            "free source memory during post-copy",
            qmp_name="release-ram",
        ),
        Param.BLOCK: Row(
            _C,
            _BOOL,
            _SRC,
            "legacy block migration inside the migration stream",
            qmp_name="block",
        ),
        Param.RETURN_PATH: Row(
            _C,
            _BOOL,
            _BOTH,
            "destination-to-source channel",
            qmp_name="return-path",
            flag_rule=FlagRule(MigrationFlag.TUNNELLED, FlagMatch.FORBIDDEN),
        ),
        Param.PAUSE_BEFORE_SWITCHOVER: Row(
            _C,
            _BOOL,
            _SRC,
            "pause before switchover so block jobs can finish",
            qmp_name="pause-before-switchover",
            always_on=_SRC,
        ),
        Param.MULTIFD: Row(
            _C,
            _BOOL,
            _BOTH,
            "parallel migration",
            qmp_name="multifd",
            flag_rule=_required(MigrationFlag.PARALLEL),
        ),
        Param.DIRTY_BITMAPS: Row(
            _C,
            _BOOL,
            _BOTH,
            "migrate block dirty bitmaps (set with a bitmap mapping)",
            qmp_name="dirty-bitmaps",
        ),
        Param.POSTCOPY_BLOCKTIME: Row(
            _C,
            _BOOL,
            _DST,
            "measure vCPU blocktime during post-copy",
            qmp_name="postcopy-blocktime",
        ),
        Param.LATE_BLOCK_ACTIVATE: Row(
            _C,
            _BOOL,
            _DST,
            "activate block devices only when the guest resumes",
            qmp_name="late-block-activate",
            always_on=_DST,
        ),
        Param.X_IGNORE_SHARED: Row(
            _C,
            _BOOL,
            _BOTH,
            "skip shared memory backends",
            qmp_name="x-ignore-shared",
        ),
        Param.VALIDATE_UUID: Row(
            _C,
            _BOOL,
            _SRC,
            "destination checks the guest UUID",
            qmp_name="validate-uuid",
        ),
        Param.BACKGROUND_SNAPSHOT: Row(
            _C,
            _BOOL,
            _SRC,
            "write-protect based background snapshot",
            qmp_name="background-snapshot",
        ),
        Param.ZERO_COPY_SEND: Row(
            _C,
            _BOOL,
            _SRC,
            "zero-copy send of parallel migration",
            qmp_name="zero-copy-send",
            flag_rule=_required(MigrationFlag.ZEROCOPY),
        ),
        Param.POSTCOPY_PREEMPT: Row(
            _C,
            _BOOL,
            _BOTH,
            "separate channel for post-copy page requests",
            qmp_name="postcopy-preempt",
        ),
        # consumed by the engine
        Param.MIGRATE_URI: Row(
            _E,
            _STR,
            _BOTH,
            "URI of the migration stream (tcp, rdma, unix)",
            typed_name="migrate_uri",
        ),
        Param.DESTINATION_NAME: Row(
            _E,
            _STR,
            _BOTH,
            "new name of the domain on the destination",
            typed_name="destination_name",
        ),
        Param.DESTINATION_XML: Row(
            _E,
            _STR,
            _SRC,
            "live definition for the destination (ABI-checked)",
            typed_name="destination_xml",
        ),
        Param.PERSISTENT_XML: Row(
            _E,
            _STR,
            _SRC,
            "persistent definition for the destination",
            typed_name="persistent_xml",
        ),
        Param.GRAPHICS_URI: Row(
            _E,
            _STR,
            _SRC,
            "where graphics clients are relocated to",
            typed_name="graphics_uri",
        ),
        Param.LISTEN_ADDRESS: Row(
            _E,
            _STR,
            _DST,
            "address the destination listens on (migration and NBD)",
            typed_name="listen_address",
        ),
        Param.MIGRATE_DISKS: Row(
            _E,
            _STR,
            _BOTH,
            "disk targets copied over NBD",
            typed_name="migrate_disks",
            multi=True,
        ),
        Param.MIGRATE_DISKS_DETECT_ZEROES: Row(
            _E,
            _STR,
            _BOTH,
            "disk targets whose mirror detects zeroes",
            typed_name="migrate_disks_detect_zeroes",
            multi=True,
        ),
        Param.DISKS_PORT: Row(
            _E,
            _INT,
            _DST,
            "NBD server port; 0 picks one",
            typed_name="disks_port",
            value_range=(0, 65535),
        ),
        Param.DISKS_URI: Row(
            _E,
            _STR,
            _BOTH,
            "NBD server URI (tcp://host:port or unix:///path)",
            typed_name="disks_uri",
        ),
        Param.COMPRESSION: Row(
            Kind.COMPRESSION,
            _STR,
            _BOTH,
            "compression methods: xbzrle, mt, zlib, zstd",
            typed_name="compression",
            multi=True,
        ),
    }
)
