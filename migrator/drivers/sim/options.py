"""QEMU 7.2's migration capabilities and parameters, and how QEMU validates changes to them.

Error messages are QEMU's: the QAPI visitor's type errors first (in schema order), then
unexpected members, then ``migrate_params_check`` / ``migrate_caps_check`` on the merged
settings.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from migrator.drivers.base import CommandFailed

#: ``query-migrate-capabilities`` of QEMU 7.2, in QAPI order.
CAPABILITIES: tuple[str, ...] = (
    "xbzrle",
    "rdma-pin-all",
    "auto-converge",
    "zero-blocks",
    "compress",
    "events",
    "postcopy-ram",
    "x-colo",
    "release-ram",
    "block",
    "return-path",
    "pause-before-switchover",
    "multifd",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "x-ignore-shared",
    "validate-uuid",
    "background-snapshot",
    "zero-copy-send",
    "postcopy-preempt",
)

PAGE_SIZE = 4096
MAX_DOWNTIME_MS = 2_000_000
_UINT64 = 1 << 64


class _Kind(enum.Enum):
    UINT8 = "uint8_t"
    UINT32 = "uint32_t"
    UINT64 = "uint64"
    SIZE = "size"
    BOOL = "boolean"
    STR_OR_NULL = "StrOrNull"
    MULTIFD_COMPRESSION = "MultiFDCompression"


_MULTIFD_COMPRESSIONS = ("none", "zlib", "zstd")


@dataclass(frozen=True)
class _Parameter:
    name: str
    kind: _Kind
    default: object


#: ``query-migrate-parameters`` of QEMU 7.2 with its defaults, in QAPI order.
_PARAMETERS = (
    _Parameter("announce-initial", _Kind.SIZE, 50),
    _Parameter("announce-max", _Kind.SIZE, 550),
    _Parameter("announce-rounds", _Kind.SIZE, 5),
    _Parameter("announce-step", _Kind.SIZE, 100),
    _Parameter("compress-level", _Kind.UINT8, 1),
    _Parameter("compress-threads", _Kind.UINT8, 8),
    _Parameter("compress-wait-thread", _Kind.BOOL, True),
    _Parameter("decompress-threads", _Kind.UINT8, 2),
    _Parameter("throttle-trigger-threshold", _Kind.UINT8, 50),
    _Parameter("cpu-throttle-initial", _Kind.UINT8, 20),
    _Parameter("cpu-throttle-increment", _Kind.UINT8, 10),
    _Parameter("cpu-throttle-tailslow", _Kind.BOOL, False),
    _Parameter("tls-creds", _Kind.STR_OR_NULL, ""),
    _Parameter("tls-hostname", _Kind.STR_OR_NULL, ""),
    _Parameter("tls-authz", _Kind.STR_OR_NULL, ""),
    _Parameter("max-bandwidth", _Kind.SIZE, 134_217_728),
    _Parameter("downtime-limit", _Kind.UINT64, 300),
    _Parameter("x-checkpoint-delay", _Kind.UINT32, 20_000),
    _Parameter("block-incremental", _Kind.BOOL, False),
    _Parameter("multifd-channels", _Kind.UINT8, 2),
    _Parameter("xbzrle-cache-size", _Kind.SIZE, 67_108_864),
    _Parameter("max-postcopy-bandwidth", _Kind.SIZE, 0),
    _Parameter("max-cpu-throttle", _Kind.UINT8, 99),
    _Parameter("multifd-compression", _Kind.MULTIFD_COMPRESSION, "none"),
    _Parameter("multifd-zlib-level", _Kind.UINT8, 1),
    _Parameter("multifd-zstd-level", _Kind.UINT8, 1),
)

_LIMITS = {_Kind.UINT8: 1 << 8, _Kind.UINT32: 1 << 32, _Kind.UINT64: _UINT64, _Kind.SIZE: _UINT64}


def default_parameters() -> dict[str, object]:
    """A fresh QEMU's ``query-migrate-parameters`` reply."""
    return {p.name: p.default for p in _PARAMETERS}


def default_capabilities() -> dict[str, bool]:
    """Every capability off, as a fresh QEMU has them."""
    return dict.fromkeys(CAPABILITIES, False)


# -- parameters -----------------------------------------------------------------------------

Values = Mapping[str, object]


@dataclass(frozen=True)
class _Check:
    """One rule of ``migrate_params_check``: ``valid`` on the merged values, or the error."""

    field: str
    expects: str
    valid: Callable[[Values], bool]


def _int(values: Values, name: str) -> int:
    value = values[name]
    assert isinstance(value, int)
    return value


def _between(name: str, bounds: tuple[int, int]) -> Callable[[Values], bool]:
    low, high = bounds
    return lambda values: low <= _int(values, name) <= high


def _power_of_two_page(values: Values) -> bool:
    size = _int(values, "xbzrle-cache-size")
    return size >= PAGE_SIZE and size & (size - 1) == 0


def _max_throttle(values: Values) -> bool:
    return _int(values, "cpu-throttle-initial") <= _int(values, "max-cpu-throttle") <= 99


_CHECKS = (
    _Check("compress_level", "a value between 0 and 9", _between("compress-level", (0, 9))),
    _Check("compress_threads", "a value between 1 and 255", _between("compress-threads", (1, 255))),
    _Check(
        "decompress_threads", "a value between 1 and 255", _between("decompress-threads", (1, 255))
    ),
    _Check(
        "throttle_trigger_threshold",
        "an integer in the range of 1 to 100",
        _between("throttle-trigger-threshold", (1, 100)),
    ),
    _Check(
        "cpu_throttle_initial",
        "an integer in the range of 1 to 99",
        _between("cpu-throttle-initial", (1, 99)),
    ),
    _Check(
        "cpu_throttle_increment",
        "an integer in the range of 1 to 99",
        _between("cpu-throttle-increment", (1, 99)),
    ),
    _Check(
        "downtime_limit",
        f"an integer in the range of 0 to {MAX_DOWNTIME_MS} ms",
        _between("downtime-limit", (0, MAX_DOWNTIME_MS)),
    ),
    _Check("multifd_channels", "a value between 1 and 255", _between("multifd-channels", (1, 255))),
    _Check("multifd_zlib_level", "a value between 0 and 9", _between("multifd-zlib-level", (0, 9))),
    _Check(
        "multifd_zstd_level", "a value between 0 and 20", _between("multifd-zstd-level", (0, 20))
    ),
    _Check(
        "xbzrle_cache_size",
        "a power of two no less than the target page size",
        _power_of_two_page,
    ),
    _Check(
        "max_cpu_throttle",
        "an integer in the range of cpu_throttle_initial to 99",
        _max_throttle,
    ),
    _Check(
        "announce_initial",
        "a value between 0 and 100000",
        _between("announce-initial", (0, 100_000)),
    ),
    _Check("announce_max", "a value between 0 and 100000", _between("announce-max", (0, 100_000))),
    _Check("announce_rounds", "a value between 0 and 1000", _between("announce-rounds", (0, 1000))),
    _Check("announce_step", "a value between 0 and 10000", _between("announce-step", (1, 10_000))),
)


def _coerce(parameter: _Parameter, value: object) -> object:
    """What QEMU's input visitor makes of ``value``, or its error."""
    name, kind = parameter.name, parameter.kind
    if kind is _Kind.BOOL:
        if not isinstance(value, bool):
            raise CommandFailed(f"Invalid parameter type for '{name}', expected: boolean")
        return value
    if kind is _Kind.STR_OR_NULL:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise CommandFailed(f"Invalid parameter type for '{name}', expected: StrOrNull")
        return value
    if kind is _Kind.MULTIFD_COMPRESSION:
        if not isinstance(value, str):
            raise CommandFailed(f"Invalid parameter type for '{name}', expected: string")
        if value not in _MULTIFD_COMPRESSIONS:
            raise CommandFailed(f"Parameter '{name}' does not accept value '{value}'")
        return value
    expects = "size" if kind is _Kind.SIZE else "uint64"
    # Unsigned integers take negative numbers modulo 2**64, for backward compatibility.
    lowest = 0 if kind is _Kind.SIZE else -_UINT64 // 2
    if not isinstance(value, int) or isinstance(value, bool) or not lowest <= value < _UINT64:
        raise CommandFailed(f"Parameter '{name}' expects {expects}")
    number = value % _UINT64
    if number >= _LIMITS[kind]:
        raise CommandFailed(f"Parameter '{name}' expects {kind.value}")
    return number


def apply_parameters(
    current: Values, changes: Values, *, capabilities: Mapping[str, bool]
) -> dict[str, object]:
    """The parameters after ``migrate-set-parameters`` with ``changes``.

    Raises:
        CommandFailed: a value of the wrong type or out of range, an unknown parameter, or
            a combination QEMU refuses (QEMU's message).
    """
    coerced = {p.name: _coerce(p, changes[p.name]) for p in _PARAMETERS if p.name in changes}
    for name in changes:
        if name not in coerced:
            raise CommandFailed(f"Parameter '{name}' is unexpected")
    merged = {**current, **coerced}
    for check in _CHECKS:
        if not check.valid(merged):
            raise CommandFailed(f"Parameter '{check.field}' expects {check.expects}")
    if capabilities["zero-copy-send"] and (
        merged["multifd-compression"] != "none" or merged["tls-creds"]
    ):
        raise CommandFailed("Zero copy only available for non-compressed non-TLS multifd migration")
    return merged


# -- capabilities ---------------------------------------------------------------------------

#: What ``background-snapshot`` cannot be combined with.
_NOT_WITH_BACKGROUND_SNAPSHOT = (
    "postcopy-ram",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "return-path",
    "multifd",
    "pause-before-switchover",
    "auto-converge",
    "release-ram",
    "rdma-pin-all",
    "block",
    "compress",
    "xbzrle",
    "x-colo",
    "validate-uuid",
    "zero-copy-send",
)


def _capability_items(request: object) -> list[tuple[str, bool]]:
    if not isinstance(request, list):
        raise CommandFailed("Invalid parameter type for 'capabilities', expected: array")
    items: list[tuple[str, bool]] = []
    for index, item in enumerate(request):
        where = f"capabilities[{index}]"
        if not isinstance(item, dict):
            raise CommandFailed(f"Invalid parameter type for '{where}', expected: object")
        if "capability" not in item:
            raise CommandFailed(f"Parameter '{where}.capability' is missing")
        name = item["capability"]
        if not isinstance(name, str):
            raise CommandFailed(
                f"Invalid parameter type for '{where}.capability', expected: string"
            )
        if name not in CAPABILITIES:
            raise CommandFailed(f"Parameter '{where}.capability' does not accept value '{name}'")
        if "state" not in item:
            raise CommandFailed(f"Parameter '{where}.state' is missing")
        state = item["state"]
        if not isinstance(state, bool):
            raise CommandFailed(f"Invalid parameter type for '{where}.state', expected: boolean")
        for key in item:
            if key not in ("capability", "state"):
                raise CommandFailed(f"Parameter '{where}.{key}' is unexpected")
        items.append((name, state))
    return items


def _check_capabilities(caps: Mapping[str, bool], parameters: Values) -> None:
    if caps["postcopy-ram"] and caps["x-ignore-shared"]:
        raise CommandFailed("Postcopy is not compatible with ignore-shared")
    if caps["background-snapshot"]:
        for other in _NOT_WITH_BACKGROUND_SNAPSHOT:
            if caps[other]:
                raise CommandFailed(f"Background-snapshot is not compatible with {other}")
    if caps["zero-copy-send"] and (
        not caps["multifd"]
        or caps["compress"]
        or caps["xbzrle"]
        or parameters["multifd-compression"] != "none"
        or parameters["tls-creds"]
    ):
        raise CommandFailed("Zero copy only available for non-compressed non-TLS multifd migration")
    if caps["postcopy-preempt"]:
        if not caps["postcopy-ram"]:
            raise CommandFailed("Postcopy preempt requires postcopy-ram")
        if caps["compress"]:
            raise CommandFailed("Postcopy preempt not compatible with compress")
    if caps["multifd"] and caps["compress"]:
        raise CommandFailed("Multifd is not compatible with compress")


def apply_capabilities(
    current: Mapping[str, bool],
    request: object,
    *,
    parameters: Values,
    migrating: bool,
) -> dict[str, bool]:
    """The capabilities after ``migrate-set-capabilities`` with ``request``.

    Raises:
        CommandFailed: a malformed request or unknown capability, a migration in progress
            ("There's a migration process in progress"), or a combination QEMU refuses.
    """
    items = _capability_items(request)
    if migrating:
        raise CommandFailed("There's a migration process in progress")
    merged = {**current, **dict(items)}
    _check_capabilities(merged, parameters)
    return merged
