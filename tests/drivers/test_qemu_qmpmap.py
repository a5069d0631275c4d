"""QMP replies and events in the driver interface's terms."""

from __future__ import annotations

import pytest

from migrator.drivers.base import (
    DriverError,
    EventKind,
    GraphicsEndpoint,
    InstanceEvent,
    MigrationProgress,
    MigrationStatus,
    RunState,
)
from migrator.drivers.qemu.qmpmap import (
    bound_uri,
    capability_states,
    instance_event,
    migration_progress,
    run_state,
    spice_endpoint,
    vnc_endpoint,
)

#: A ``query-migrate`` reply of QEMU 7.2 during a throttled migration with xbzrle.
ACTIVE = {
    "status": "active",
    "total-time": 1520,
    "setup-time": 3,
    "expected-downtime": 310,
    "cpu-throttle-percentage": 30,
    "ram": {
        "transferred": 25000000,
        "remaining": 9000000,
        "total": 68000000,
        "duplicate": 7000,
        "skipped": 0,
        "normal": 6000,
        "normal-bytes": 24576000,
        "dirty-pages-rate": 16384,
        "mbps": 134.217728,
        "dirty-sync-count": 4,
        "page-size": 4096,
        "postcopy-requests": 0,
        "multifd-bytes": 0,
        "pages-per-second": 4096,
        "precopy-bytes": 25000000,
        "downtime-bytes": 0,
        "postcopy-bytes": 0,
        "dirty-sync-missed-zero-copy": 0,
    },
    "xbzrle-cache": {
        "cache-size": 67108864,
        "bytes": 1200,
        "pages": 30,
        "cache-miss": 400,
        "cache-miss-rate": 0.25,
        "encoding-rate": 3.5,
        "overflow": 2,
    },
}


def test_a_running_migration_maps_every_statistic() -> None:
    assert migration_progress(ACTIVE) == MigrationProgress(
        status=MigrationStatus.ACTIVE,
        total_time=1520,
        setup_time=3,
        downtime=None,
        expected_downtime=310,
        transferred=25000000,
        remaining=9000000,
        total=68000000,
        duplicate=7000,
        normal=6000,
        normal_bytes=24576000,
        dirty_pages_rate=16384,
        mbps=134.217728,
        dirty_sync_count=4,
        page_size=4096,
        postcopy_requests=0,
        cpu_throttle_percentage=30,
        xbzrle_cache_size=67108864,
        xbzrle_bytes=1200,
        xbzrle_pages=30,
        xbzrle_cache_miss=400,
        xbzrle_overflow=2,
    )


def test_no_migration_and_a_failed_one() -> None:
    assert migration_progress({}) == MigrationProgress(status=MigrationStatus.NONE)
    failed = migration_progress(
        {"status": "failed", "error-desc": "Unable to write to socket: Broken pipe"}
    )
    assert failed.status is MigrationStatus.FAILED
    assert failed.error_desc == "Unable to write to socket: Broken pipe"
    completed = migration_progress(
        {"status": "completed", "downtime": 12, "ram": {"postcopy-requests": 7, "mbps": 900}}
    )
    assert (completed.downtime, completed.postcopy_requests, completed.mbps) == (12, 7, 900.0)


def test_malformed_replies_are_driver_errors() -> None:
    with pytest.raises(DriverError, match="unknown migration status 'warp'"):
        migration_progress({"status": "warp"})
    with pytest.raises(DriverError, match="not an object"):
        migration_progress([])
    with pytest.raises(DriverError, match="unknown run state 'dreaming'"):
        run_state({"status": "dreaming", "running": False})


def test_run_state() -> None:
    assert run_state({"status": "inmigrate", "running": False}) is RunState.INMIGRATE


@pytest.mark.parametrize(
    ("message", "event"),
    [
        (
            {"event": "MIGRATION", "data": {"status": "postcopy-active"}},
            InstanceEvent(EventKind.MIGRATION, status=MigrationStatus.POSTCOPY_ACTIVE),
        ),
        ({"event": "STOP"}, InstanceEvent(EventKind.STOPPED)),
        ({"event": "RESUME"}, InstanceEvent(EventKind.RESUMED)),
        (
            {"event": "SHUTDOWN", "data": {"guest": False, "reason": "host-qmp-quit"}},
            InstanceEvent(EventKind.SHUTDOWN),
        ),
        ({"event": "MIGRATION_PASS", "data": {"pass": 2}}, None),
        ({"event": "MIGRATION", "data": {"status": "warp"}}, None),
        ({"event": "MIGRATION"}, None),
    ],
)
def test_events(message: dict[str, object], event: InstanceEvent | None) -> None:
    assert instance_event(message) == event


@pytest.mark.parametrize(
    ("reply", "uri"),
    [
        (
            {
                "status": "setup",
                "socket-address": [{"type": "inet", "host": "127.0.0.1", "port": "41239"}],
            },
            "tcp:127.0.0.1:41239",
        ),
        (
            {"socket-address": [{"type": "inet", "host": "::1", "port": "5000"}]},
            "tcp:[::1]:5000",
        ),
        (
            {
                "socket-address": [
                    {"type": "inet", "host": "10.0.0.2", "port": "6000"},
                    {"type": "inet", "host": "10.0.0.2", "port": "5000"},
                ]
            },
            "tcp:10.0.0.2:6000",
        ),
        ({"socket-address": [{"type": "unix", "path": "/run/m.sock"}]}, "unix:/run/m.sock"),
        ({"status": "setup"}, "tcp:127.0.0.1:0"),
    ],
)
def test_bound_uri_reads_the_port_qemu_picked(reply: dict[str, object], uri: str) -> None:
    assert bound_uri("tcp:127.0.0.1:0", reply) == uri


def test_displays() -> None:
    vnc = {"enabled": True, "auth": "vnc", "family": "ipv4", "service": "5901", "host": "0.0.0.0"}
    assert vnc_endpoint(vnc) == GraphicsEndpoint(type="vnc", listen="0.0.0.0", port=5901)
    assert vnc_endpoint({"enabled": False}) is None
    spice = {"enabled": True, "host": "127.0.0.1", "port": 5930, "tls-port": 5931}
    assert spice_endpoint(spice) == GraphicsEndpoint(
        type="spice", listen="127.0.0.1", port=5930, tls_port=5931
    )


def test_capability_states() -> None:
    reply = [{"capability": "xbzrle", "state": False}, {"capability": "events", "state": True}]
    assert capability_states(reply) == {"xbzrle": False, "events": True}
    with pytest.raises(DriverError):
        capability_states({"capability": "events"})
