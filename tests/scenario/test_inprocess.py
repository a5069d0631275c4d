"""The in-process daemons under the scenarios: dying, restarting, dropped connections, a
full disk, and the check that the guest never runs on two hosts."""

from __future__ import annotations

import asyncio

import pytest

from migrator.drivers.sim import Workload
from migrator.runtime.host import HostError
from migrator.scenario import ConnectionLost, SimCluster
from migrator.scenario.inprocess import Connection, InProcessDaemon
from migrator.scenario.model import Mode
from migrator.scenario.simcluster import MiB, make_domain
from migrator.status import MigrationStatus
from params import MigrationFlag as F

LIVE_P2P = F.LIVE | F.PEER2PEER


async def test_a_call_to_a_daemon_that_dies_fails_with_connection_lost() -> None:
    cluster = SimCluster()
    daemon = cluster.daemons["host-b"]
    call = asyncio.create_task(daemon.serve(asyncio.Event().wait()))
    await asyncio.sleep(0)
    await daemon.stop()
    with pytest.raises(ConnectionLost, match="the daemon on host-b went away"):
        await call
    with pytest.raises(ConnectionLost):
        await daemon.serve(asyncio.sleep(0))
    await cluster.close()


async def test_a_connection_to_an_earlier_life_or_dropped_refuses_calls() -> None:
    cluster = SimCluster()
    daemon = cluster.daemons["host-a"]
    before = Connection(daemon)
    await daemon.stop()
    await daemon.start()
    with pytest.raises(ConnectionLost):
        await before.call(asyncio.sleep(0))
    after = Connection(daemon)
    await after.call(asyncio.sleep(0))
    after.drop()
    with pytest.raises(ConnectionLost):
        await after.call(asyncio.sleep(0))
    local = Connection(daemon, local=True)
    local.drop()
    await local.call(asyncio.sleep(0))
    await cluster.close()


async def test_a_restarted_daemon_resolves_the_job_it_stored() -> None:
    cluster = SimCluster()
    await cluster.start(make_domain())
    daemon = cluster.daemons["host-a"]
    await daemon.source.begin("vm", flags=LIVE_P2P, typed={})
    assert daemon.host.status.names() == ["vm"]
    await cluster.restart_daemon("host-a")
    assert daemon.host.status.names() == []
    assert cluster.trace.lines[-2:] == [
        "end host-a source begin3",
        "recovery host-a source: nothing, ended",
    ]
    assert cluster.running_on("vm") == ["host-a"]
    assert "vm" in daemon.host.guests
    await cluster.close()


async def test_killing_the_source_daemon_mid_copy_ends_the_migration_it_drove() -> None:
    cluster = SimCluster()
    await cluster.start(make_domain(memory_mib=1024), workload=Workload(64 * MiB, 20 * MiB))
    migration = asyncio.create_task(
        cluster.migrate(
            "vm", source="host-a", destination="host-b", mode=Mode.P2P, flags=LIVE_P2P, typed={}
        )
    )
    daemon = cluster.daemons["host-a"]
    while not _performing(daemon):
        await cluster.world.sleep(10)
    await cluster.kill_daemon("host-a", restart=True)
    with pytest.raises(ConnectionLost):
        await migration
    await cluster.settle()
    assert cluster.running_on("vm") == ["host-a"]
    assert cluster.alive_on("vm") == ["host-a"]
    # The destination's daemon auto-destroyed the incoming guest first, so QEMU's stream
    # had already failed: the restarted source only restores its parameters.
    assert cluster.trace.lines[-1] == "recovery host-a source: RestoreParams, ended"
    assert "daemon host-a killed" in cluster.trace.lines
    await cluster.close()


def _performing(daemon: InProcessDaemon) -> bool:
    try:
        return daemon.source.job("vm").last_status is MigrationStatus.ACTIVE
    except HostError:
        return False


async def test_a_full_disk_keeps_the_stored_definitions() -> None:
    cluster = SimCluster()
    daemon = cluster.daemons["host-b"]
    await cluster.fill_disk("host-b")
    with pytest.raises(OSError, match="No space left on device"):
        daemon.host.define(make_domain())
    assert not await cluster.defined("host-b", "vm")
    await cluster.close()


async def test_the_guest_running_on_two_hosts_is_caught() -> None:
    cluster = SimCluster()
    await cluster.start(make_domain(), host="host-a")
    await cluster.start(make_domain(), host="host-b")
    assert await cluster.violations() == ["'vm' ran on host-a and host-b at once (at the end)"]
    await cluster.close()
