"""Migrations between two in-process hosts on the simulator."""

from __future__ import annotations

import errno

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from migrator.drivers.sim import (
    Fault,
    FaultKind,
    FaultPoint,
    Operation,
    SimDriver,
    SimWorld,
    Workload,
)
from migrator.runtime.host import Host
from migrator.runtime.source import MigrationFailed
from migrator.status import MigrationStatus
from params import MigrationFlag as F

from .cluster import LIVE_P2P, Cluster, MiB, make_domain


async def test_live_migration_moves_the_guest() -> None:
    cluster = Cluster()
    await cluster.start(make_domain())
    await cluster.migrate("vm")
    assert await cluster.running_on("vm") == ["host-b"]
    assert await cluster.alive_on("vm") == ["host-b"]
    assert "vm" in cluster.b.guests and "vm" not in cluster.a.guests
    assert cluster.a.status.load("vm") is None and cluster.b.status.load("vm") is None


async def test_guest_migrates_back_and_forth() -> None:
    cluster = Cluster()
    await cluster.start(make_domain())
    for round_trip in range(3):
        await cluster.migrate("vm", source=cluster.a)
        assert await cluster.running_on("vm") == ["host-b"], round_trip
        await cluster.migrate("vm", source=cluster.b)
        assert await cluster.running_on("vm") == ["host-a"], round_trip


async def test_persist_dest_and_undefine_source_move_the_definition() -> None:
    cluster = Cluster()
    await cluster.start(make_domain())
    await cluster.migrate("vm", flags=LIVE_P2P | F.PERSIST_DEST | F.UNDEFINE_SOURCE)
    assert "vm" in cluster.b.definitions
    assert "vm" not in cluster.a.definitions


async def test_offline_migration_moves_only_the_definition() -> None:
    cluster = Cluster()
    cluster.a.define(make_domain())
    await cluster.migrate("vm", flags=F.OFFLINE | F.PERSIST_DEST | F.PEER2PEER)
    assert "vm" in cluster.b.definitions
    assert await cluster.alive_on("vm") == []


async def test_destination_crash_during_migration_leaves_the_source_running() -> None:
    cluster = Cluster()
    await cluster.start(make_domain(memory_mib=1024), workload=Workload(64 * MiB, 20 * MiB))
    cluster.world.inject(
        Fault(FaultKind.CRASH, "host-b", FaultPoint.on_status(MigrationStatus.ACTIVE))
    )
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm")
    assert await cluster.running_on("vm") == ["host-a"]
    assert await cluster.alive_on("vm") == ["host-a"]


async def test_failed_migrate_command_rolls_back() -> None:
    cluster = Cluster()
    await cluster.start(make_domain())
    cluster.world.inject(
        Fault(FaultKind.COMMAND_FAILURE, "host-a", FaultPoint.on_call(Operation.MIGRATE))
    )
    with pytest.raises(MigrationFailed, match="StartMigration"):
        await cluster.migrate("vm")
    assert await cluster.running_on("vm") == ["host-a"]
    assert await cluster.alive_on("vm") == ["host-a"]


def test_a_definition_that_cannot_be_written_is_not_kept() -> None:
    def disk_full(_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    host = Host(
        name="h",
        uuid="u",
        driver=SimDriver(SimWorld(record_trace=False), "h"),
        signing_key=Ed25519PrivateKey.generate(),
    )
    host.define(make_domain())
    host.on_definitions_changed = disk_full
    with pytest.raises(OSError):
        host.define(make_domain(name="other"))
    with pytest.raises(OSError):
        host.undefine("vm")
    assert sorted(host.definitions) == ["vm"]
