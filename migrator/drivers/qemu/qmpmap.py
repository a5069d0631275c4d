"""QMP replies and events in the driver interface's terms: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping

from migrator.drivers.base import (
    DriverError,
    EventKind,
    GraphicsEndpoint,
    InstanceEvent,
    MigrationProgress,
    MigrationStatus,
    RunState,
)

#: The QMP events an instance passes on.
RELAYED_EVENTS = ("MIGRATION", "STOP", "RESUME", "SHUTDOWN")

_SIMPLE_EVENTS = {
    "STOP": EventKind.STOPPED,
    "RESUME": EventKind.RESUMED,
    "SHUTDOWN": EventKind.SHUTDOWN,
}
_STATUSES = {status.value: status for status in MigrationStatus}


def as_mapping(value: object, *, what: str) -> Mapping[str, object]:
    """``value`` if it is a JSON object.

    Raises:
        DriverError: it is not (QEMU answered something else than the schema says).
    """
    if not isinstance(value, Mapping):
        raise DriverError(f"QEMU answered {what} with {type(value).__name__}, not an object")
    return value


def _int(record: Mapping[str, object], key: str) -> int | None:
    value = record.get(key)
    return value if isinstance(value, int) else None


def _count(record: Mapping[str, object], key: str) -> int:
    return _int(record, key) or 0


def instance_event(message: Mapping[str, object]) -> InstanceEvent | None:
    """The instance event of a QMP event; None for events not passed on (or a migration
    status this version does not know)."""
    name = message.get("event")
    if name == "MIGRATION":
        data = message.get("data")
        status = _STATUSES.get(str(data.get("status"))) if isinstance(data, Mapping) else None
        return None if status is None else InstanceEvent(EventKind.MIGRATION, status=status)
    kind = _SIMPLE_EVENTS.get(str(name))
    return None if kind is None else InstanceEvent(kind)


def run_state(reply: object) -> RunState:
    """The run state in a ``query-status`` reply.

    Raises:
        DriverError: the reply holds no known run state.
    """
    status = as_mapping(reply, what="query-status").get("status")
    try:
        return RunState(status)
    except ValueError:
        raise DriverError(f"QEMU reported an unknown run state {status!r}") from None


def migration_progress(reply: object) -> MigrationProgress:
    """A ``query-migrate`` reply as :class:`MigrationProgress` (no status: ``none``).

    Raises:
        DriverError: the reply is not an object, or holds an unknown status.
    """
    record = as_mapping(reply, what="query-migrate")
    text = record.get("status", MigrationStatus.NONE.value)
    status = _STATUSES.get(str(text))
    if status is None:
        raise DriverError(f"QEMU reported an unknown migration status {text!r}")
    ram = as_mapping(record.get("ram", {}), what="query-migrate ram")
    xbzrle = as_mapping(record.get("xbzrle-cache", {}), what="query-migrate xbzrle-cache")
    error = record.get("error-desc")
    mbps = ram.get("mbps", 0.0)
    return MigrationProgress(
        status=status,
        total_time=_int(record, "total-time"),
        setup_time=_int(record, "setup-time"),
        downtime=_int(record, "downtime"),
        expected_downtime=_int(record, "expected-downtime"),
        transferred=_count(ram, "transferred"),
        remaining=_count(ram, "remaining"),
        total=_count(ram, "total"),
        duplicate=_count(ram, "duplicate"),
        normal=_count(ram, "normal"),
        normal_bytes=_count(ram, "normal-bytes"),
        dirty_pages_rate=_count(ram, "dirty-pages-rate"),
        mbps=float(mbps) if isinstance(mbps, int | float) else 0.0,
        dirty_sync_count=_count(ram, "dirty-sync-count"),
        page_size=_int(ram, "page-size") or MigrationProgress.page_size,
        postcopy_requests=_count(ram, "postcopy-requests"),
        cpu_throttle_percentage=_count(record, "cpu-throttle-percentage"),
        xbzrle_cache_size=_count(xbzrle, "cache-size"),
        xbzrle_bytes=_count(xbzrle, "bytes"),
        xbzrle_pages=_count(xbzrle, "pages"),
        xbzrle_cache_miss=_count(xbzrle, "cache-miss"),
        xbzrle_overflow=_count(xbzrle, "overflow"),
        error_desc=error if isinstance(error, str) else None,
    )


def bound_uri(requested: str, reply: object) -> str:
    """The URI an incoming migration listens on, from ``query-migrate``'s ``socket-address``
    (where QEMU reports the port it picked for port 0, as a string, newest listener first);
    ``requested`` when QEMU reports no socket."""
    addresses = as_mapping(reply, what="query-migrate").get("socket-address")
    if not isinstance(addresses, list) or not addresses:
        return requested
    address = as_mapping(addresses[0], what="query-migrate socket-address")
    match address.get("type"):
        case "inet":
            host, port = str(address.get("host")), str(address.get("port"))
            return f"tcp:[{host}]:{port}" if ":" in host else f"tcp:{host}:{port}"
        case "unix":
            return f"unix:{address.get('path')}"
        case _:
            return requested


def vnc_endpoint(reply: object) -> GraphicsEndpoint | None:
    """Where VNC listens, from ``query-vnc`` (None while disabled)."""
    record = as_mapping(reply, what="query-vnc")
    if record.get("enabled") is not True:
        return None
    service = str(record.get("service", ""))
    return GraphicsEndpoint(
        type="vnc",
        listen=str(record.get("host", "")),
        port=int(service) if service.isdigit() else None,
    )


def spice_endpoint(reply: object) -> GraphicsEndpoint | None:
    """Where SPICE listens, from ``query-spice`` (None while disabled)."""
    record = as_mapping(reply, what="query-spice")
    if record.get("enabled") is not True:
        return None
    return GraphicsEndpoint(
        type="spice",
        listen=str(record.get("host", "")),
        port=_int(record, "port"),
        tls_port=_int(record, "tls-port"),
    )


def capability_states(reply: object) -> dict[str, bool]:
    """Each capability of a ``query-migrate-capabilities`` reply, and whether it is on.

    Raises:
        DriverError: the reply is not a list of objects.
    """
    if not isinstance(reply, list):
        raise DriverError("QEMU answered query-migrate-capabilities with something else")
    entries = [as_mapping(entry, what="query-migrate-capabilities") for entry in reply]
    return {str(entry.get("capability")): entry.get("state") is True for entry in entries}


def child_names(reply: object) -> frozenset[str]:
    """The property names in a ``qom-list`` reply (an object's children among them).

    Raises:
        DriverError: the reply is not a list of objects.
    """
    if not isinstance(reply, list):
        raise DriverError("QEMU answered qom-list with something else")
    return frozenset(str(as_mapping(entry, what="qom-list").get("name")) for entry in reply)
