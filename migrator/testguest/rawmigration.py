"""Live-migrates the test guest between two QEMU processes with raw QMP, nothing else.

The baseline that engine-driven migrations are compared against, and a way to exercise the
guest across a migration without the engine: ``migrate-incoming`` on a destination started with
``-incoming defer``, ``migrate`` on the source, then wait for QEMU to report completion and for
the destination to resume.
"""

from __future__ import annotations

from dataclasses import dataclass

from migrator.testguest.errors import QemuProcessError, RawMigrationError
from migrator.testguest.vm import GuestVm

#: Bytes per second; QEMU's own default (32 MiB/s) would make even small guests slow to move.
DEFAULT_MAX_BANDWIDTH = 10 << 30
_LOOPBACK = "127.0.0.1"
_FINAL_STATES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class RawMigrationStats:
    """What the source QEMU reported for a completed migration."""

    total_time_ms: int
    downtime_ms: int
    setup_time_ms: int
    transferred_bytes: int


async def migrate_raw(
    source: GuestVm, destination: GuestVm, *, max_bandwidth: int = DEFAULT_MAX_BANDWIDTH
) -> RawMigrationStats:
    """Migrate ``source``'s guest into ``destination`` over TCP on the loopback interface.

    ``destination`` must have been launched with ``incoming=True`` and ``paused=False``, so
    that it resumes the guest once the migration completes; this returns after it has. Bound
    the wait with ``asyncio.timeout``: a QEMU that dies without a word stops the events too.

    Raises:
        RawMigrationError: QEMU reported the migration failed or was cancelled.
        QemuProcessError: a QMP command failed, or QEMU answered in an unexpected shape.
    """
    await destination.execute("migrate-incoming", {"uri": f"tcp:{_LOOPBACK}:0"})
    port = _port(await destination.execute("query-migrate"), destination)
    await source.execute(
        "migrate-set-capabilities", {"capabilities": [{"capability": "events", "state": True}]}
    )
    await source.execute("migrate-set-parameters", {"max-bandwidth": max_bandwidth})
    with (
        source.qmp.listener("MIGRATION") as migration,
        destination.qmp.listener("RESUME") as resumed,
    ):
        await source.execute("migrate", {"uri": f"tcp:{_LOOPBACK}:{port}"})
        async for event in migration:
            state = _mapping(event["data"], source).get("status")
            if state in _FINAL_STATES:
                break
        if state != "completed":
            info = _mapping(await source.execute("query-migrate"), source)
            raise RawMigrationError(
                f"migration {state}: {info.get('error-desc', 'no reason given')}", state=str(state)
            )
        await resumed.get()
    # QEMU announces completion before it computes the statistics; it computes them and moves
    # the source to "postmigrate" under one lock, which every query also takes, so that state
    # means the figures are final and this loop turns a few times at most.
    while _mapping(await source.execute("query-status"), source).get("status") != "postmigrate":
        continue
    info = _mapping(await source.execute("query-migrate"), source)
    ram = _mapping(info.get("ram"), source)
    return RawMigrationStats(
        total_time_ms=_integer(info, "total-time", source),
        downtime_ms=_integer(info, "downtime", source),
        setup_time_ms=_integer(info, "setup-time", source),
        transferred_bytes=_integer(ram, "transferred", source),
    )


def _port(info: object, vm: GuestVm) -> int:
    """The listening port from the destination's ``query-migrate`` (QEMU sends it as a string)."""
    addresses = _mapping(info, vm).get("socket-address")
    if isinstance(addresses, list) and addresses:
        port = _mapping(addresses[0], vm).get("port")
        if isinstance(port, str) and port.isdigit():
            return int(port)
    raise _shape_error(vm, "query-migrate has no listening port")


def _mapping(value: object, vm: GuestVm) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _shape_error(vm, f"expected a JSON object, got {value!r}")
    return value


def _integer(info: dict[str, object], key: str, vm: GuestVm) -> int:
    value = info.get(key)
    if not isinstance(value, int):
        raise _shape_error(vm, f"query-migrate has no integer {key!r}")
    return value


def _shape_error(vm: GuestVm, message: str) -> QemuProcessError:
    return QemuProcessError(message, returncode=vm.returncode, stderr_tail=vm.stderr_tail)
