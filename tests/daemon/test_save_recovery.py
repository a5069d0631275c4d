"""A daemon that stops during a save or a restore, on the sim driver: the job stays recorded
in the state directory, the guest and the image as they were, and the next daemon on that
directory resolves it: the save cancelled, its guest running again if it ran, the bandwidth
limit back, the partial image gone; the restore's QEMU killed, its image kept. Then the
domain can be saved and restored again. (The save records on disk are tested here too.)
"""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from migrator.client import Client, ClientError, DomainState, JobType
from migrator.daemon import StateDir, StateDirError
from migrator.daemon.service import Daemon
from migrator.drivers.base import MigrationStatus
from migrator.drivers.sim import Fault, FaultKind, FaultPoint
from migrator.drivers.sim.faults import Operation
from migrator.runtime.records import JobRecord, JobSide
from migrator.saveimage import Magic
from migrator.saving.records import SaveJobKind, SaveRecord
from tests.drivers.contract import next_statuses

from .conftest import SimPair
from .test_sim_api import define_and_start, names

GUARD_S = 30
#: The bandwidth limit (MiB/s) the guest has before a save lifts it.
LIMIT_MIB_S = 8


def image_of(pair: SimPair) -> Path:
    return pair.root / "vm.img"


def managed_image_of(pair: SimPair) -> Path:
    return pair.a.config.state_dir / "save" / "vm.save"


def save_jobs(daemon: Daemon) -> list[Path]:
    """The save job records in the daemon's state directory."""
    return sorted((daemon.config.state_dir / "status").glob("*.save-job"))


async def stalled(pair: SimPair, job: Callable[[], Awaitable[object]]) -> asyncio.Task[object]:
    """Run ``job`` (a save of ``vm`` on ``a``) until QEMU's migration into the file is
    active; it stalls there (an injected hang) until cancelled."""
    pair.world.inject(
        Fault(FaultKind.HANG, "host-a", FaultPoint.on_status(MigrationStatus.ACTIVE), "vm")
    )
    async with pair.a.host.guests["vm"].instance.listen() as events:
        task: asyncio.Task[object] = asyncio.create_task(job())  # type: ignore[arg-type]
        await next_statuses(events, {MigrationStatus.ACTIVE})
    return task


async def restart_during(pair: SimPair, task: asyncio.Task[object]) -> Client:
    """Stop daemon ``a`` while ``task`` (a call to it) runs, start it again on its state
    directory; the new daemon's client. The call fails: its connection closed."""
    stopping = asyncio.create_task(pair.a.stop())
    with pytest.raises(ClientError):
        await task
    await stopping
    assert save_jobs(pair.a), "the stopped daemon forgot the job"
    await pair.restart(pair.a)
    return pair.ca


@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
async def test_a_save_interrupted_by_a_restart_is_undone(
    sim_pair: SimPair, paused: bool, caplog: pytest.LogCaptureFixture
) -> None:
    image = image_of(sim_pair)
    async with asyncio.timeout(GUARD_S):
        client = sim_pair.ca
        await define_and_start(client)
        if paused:
            await client.suspend("vm")
        await client.migrate_setspeed("vm", LIMIT_MIB_S)
        save = await stalled(sim_pair, lambda: client.save("vm", image))
        assert image.read_bytes()[:16] == Magic.PARTIAL.value
        with caplog.at_level(logging.WARNING, logger="migrator.daemon.saves"):
            client = await restart_during(sim_pair, save)

        state = DomainState.PAUSED if paused else DomainState.RUNNING
        assert await names(client) == {"vm": state}
        assert await client.migrate_getspeed("vm") == LIMIT_MIB_S
        assert not image.exists()
        assert save_jobs(sim_pair.a) == []
        completed = await client.domjobinfo("vm", completed=True)
        assert (completed.job_type, completed.operation) == (JobType.FAILED, "save")
        assert completed.error == (
            f"the save of 'vm' to {image} was interrupted: the daemon restarted"
        )
        assert completed.statistics.success is False
        [line] = [r.getMessage() for r in caplog.records if "interrupted" in r.getMessage()]
        assert "recovery: cancel QEMU's migration, restore the bandwidth limit" in line

        if paused:
            await client.resume("vm")
        saved = await client.save("vm", image)
        assert saved.job_type is JobType.COMPLETED
        assert image.read_bytes()[:16] == Magic.COMPLETE.value
        assert await names(client) == {}


async def test_a_managed_save_interrupted_by_a_restart_is_undone(sim_pair: SimPair) -> None:
    image = managed_image_of(sim_pair)
    async with asyncio.timeout(GUARD_S):
        client = sim_pair.ca
        await define_and_start(client)
        save = await stalled(sim_pair, lambda: client.managed_save("vm"))
        assert image.exists()
        client = await restart_during(sim_pair, save)

        assert await names(client) == {"vm": DomainState.RUNNING}
        assert not image.exists()
        assert not (await client.dominfo("vm")).managed_save
        assert save_jobs(sim_pair.a) == []
        completed = await client.domjobinfo("vm", completed=True)
        assert completed.error == "the managed save of 'vm' was interrupted: the daemon restarted"

        await client.managed_save("vm")
        assert image.read_bytes()[:16] == Magic.COMPLETE.value
        await client.start("vm")
        assert await names(client) == {"vm": DomainState.RUNNING}
        assert not image.exists()


async def stalled_restore(
    pair: SimPair, job: Callable[[], Awaitable[object]]
) -> asyncio.Task[object]:
    """Run ``job`` (a restore of ``vm`` on ``a``) until its QEMU has started and is told to
    load the stream: that command never returns (an injected hang)."""
    pair.world.inject(
        Fault(FaultKind.HANG, "host-a", FaultPoint.on_call(Operation.START_INCOMING), "vm")
    )
    task: asyncio.Task[object] = asyncio.create_task(job())  # type: ignore[arg-type]
    while pair.world.pending_faults:
        assert not task.done(), task
        await asyncio.sleep(0.01)
    return task


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "transient"])
async def test_a_restore_interrupted_by_a_restart_leaves_no_qemu_and_keeps_the_image(
    sim_pair: SimPair, persistent: bool
) -> None:
    image = image_of(sim_pair)
    async with asyncio.timeout(GUARD_S):
        client = sim_pair.ca
        await define_and_start(client)
        await client.save("vm", image)
        if not persistent:
            await client.undefine("vm")
        restore = await stalled_restore(sim_pair, lambda: client.restore(image))
        assert sim_pair.world.guest("host-a", "vm") is not None
        client = await restart_during(sim_pair, restore)

        assert sim_pair.world.guest("host-a", "vm") is None
        assert await names(client, include_inactive=True) == (
            {"vm": DomainState.SHUTOFF} if persistent else {}
        )
        assert image.read_bytes()[:16] == Magic.COMPLETE.value
        assert save_jobs(sim_pair.a) == []
        completed = await client.domjobinfo("vm", completed=True)
        assert (completed.job_type, completed.operation) == (JobType.FAILED, "restore")
        assert "was interrupted: the daemon restarted" in (completed.error or "")

        await client.restore(image)
        assert await names(client) == {"vm": DomainState.RUNNING}


async def test_a_start_from_a_managed_save_interrupted_by_a_restart_keeps_the_image(
    sim_pair: SimPair,
) -> None:
    image = managed_image_of(sim_pair)
    async with asyncio.timeout(GUARD_S):
        client = sim_pair.ca
        await define_and_start(client)
        await client.managed_save("vm")
        start = await stalled_restore(sim_pair, lambda: client.start("vm"))
        client = await restart_during(sim_pair, start)

        assert await names(client, include_inactive=True) == {"vm": DomainState.SHUTOFF}
        assert (await client.dominfo("vm")).managed_save
        assert sim_pair.world.guest("host-a", "vm") is None
        await client.start("vm")
        assert await names(client) == {"vm": DomainState.RUNNING}
        assert not image.exists()


# -- the records on disk -------------------------------------------------------------------------


def save_record(domain: str = "vm") -> SaveRecord:
    return SaveRecord(
        job_id="5d7c0c5e-0000-4000-8000-000000000002",
        kind=SaveJobKind.MANAGED_SAVE,
        domain=domain,
        path=Path("/state/save") / f"{domain}.save",
        was_running=True,
        original_bandwidth=8 << 20,
        created=True,
    )


def test_save_records_live_next_to_migration_records_without_mixing(state: StateDir) -> None:
    store = state.status.save_jobs
    store.save("vm", save_record("vm"))
    store.save("db", save_record("db"))
    state.status.save(
        "web",
        JobRecord(job_id="j", side=JobSide.SOURCE, domain="web", phase="perform3", flags=0),
    )
    assert store.load("vm") == save_record("vm")
    assert store.names() == ["db", "vm"]
    assert state.status.names() == ["web"]
    assert stat.S_IMODE((state.path / "status" / "vm.save-job").stat().st_mode) == 0o600
    store.delete("vm")
    store.delete("vm")
    assert store.load("vm") is None
    assert store.names() == ["db"]


def test_an_unreadable_save_record_is_a_clear_error(state: StateDir) -> None:
    (state.path / "status" / "vm.save-job").write_bytes(b"\x93\x01\x02\x03")
    with pytest.raises(StateDirError, match=r"vm\.save-job is not a valid job record"):
        state.status.save_jobs.load("vm")
