"""Save and restore jobs as records, and their recovery after a daemon that stopped mid-job:
the decision table, the record's wire form, when a record is written and removed, and
:meth:`SaveOps.recover` on the simulator (the daemon around it is tested in
``tests/daemon/test_save_recovery.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from migrator.domain import FormatFlag, format_domain
from migrator.drivers.base import MigrationStatus, RunState, StartMode
from migrator.drivers.sim import Fault, FaultKind, FaultPoint
from migrator.runtime.records import RecordError
from migrator.saveimage import Magic
from migrator.saving import BadImage, SaveCancelled, SaveFailed, SaveOps, XmlRejected
from migrator.saving.records import MemorySaveRecordStore, SaveJobKind, SaveRecord
from migrator.saving.recovery_plan import (
    ImageState,
    QemuNow,
    RecoveryAction,
    plan_restore,
    plan_save,
)
from migrator.saving.save import UNLIMITED_BANDWIDTH
from tests.drivers.contract import next_statuses
from tests.drivers.simkit import MiB, domain
from tests.saving.simkit import HOST, SimSaving

A = RecoveryAction
#: The bandwidth limit the guests have before a save lifts it.
LIMIT = 8 * MiB


def save_record(**fields: object) -> SaveRecord:
    values: dict[str, object] = {
        "kind": SaveJobKind.SAVE,
        "domain": "vm",
        "path": Path("/images/vm.img"),
        "was_running": True,
        "original_bandwidth": LIMIT,
        "created": True,
    }
    return SaveRecord(**{**values, **fields})  # type: ignore[arg-type]


# -- the decision --------------------------------------------------------------------------------

ACTIVE = QemuNow(MigrationStatus.ACTIVE, RunState.PAUSED)
CANCELLING = QemuNow(MigrationStatus.CANCELLING, RunState.PAUSED)
FAILED = QemuNow(MigrationStatus.FAILED, RunState.PAUSED)
DONE = QemuNow(MigrationStatus.COMPLETED, RunState.POSTMIGRATE)
NEVER_STARTED = QemuNow(MigrationStatus.NONE, RunState.RUNNING)
PARTIAL, MISSING, COMPLETE = ImageState.INCOMPLETE, ImageState.MISSING, ImageState.COMPLETE
CANCEL, LIMIT_BACK, RESUME, REMOVE = (
    A.CANCEL_MIGRATION,
    A.RESTORE_BANDWIDTH,
    A.RESUME,
    A.REMOVE_PARTIAL_IMAGE,
)


@pytest.mark.parametrize(
    ("changes", "qemu", "image", "actions"),
    [
        ({}, ACTIVE, PARTIAL, (CANCEL, LIMIT_BACK, RESUME, REMOVE)),
        ({"was_running": False}, ACTIVE, PARTIAL, (CANCEL, LIMIT_BACK, REMOVE)),
        ({}, CANCELLING, PARTIAL, (CANCEL, LIMIT_BACK, RESUME, REMOVE)),
        ({}, DONE, PARTIAL, (LIMIT_BACK, RESUME, REMOVE)),
        ({}, FAILED, PARTIAL, (LIMIT_BACK, RESUME, REMOVE)),
        ({"created": False}, ACTIVE, PARTIAL, (CANCEL, LIMIT_BACK, RESUME)),
        ({}, ACTIVE, MISSING, (CANCEL, LIMIT_BACK, RESUME)),
        ({"original_bandwidth": None}, NEVER_STARTED, MISSING, ()),
        ({}, DONE, COMPLETE, (LIMIT_BACK,)),
        ({}, None, PARTIAL, (REMOVE,)),
        ({"created": False}, None, PARTIAL, ()),
        ({}, None, COMPLETE, ()),
    ],
    ids=[
        "running-guest-mid-stream",
        "paused-guest-mid-stream",
        "cancelling",
        "stream-done-image-not-marked",
        "qemu-failed",
        "file-not-created-by-the-save",
        "no-file-yet",
        "before-anything",
        "complete-image",
        "qemu-gone",
        "qemu-gone-file-not-ours",
        "qemu-gone-complete-image",
    ],
)
def test_the_recovery_of_a_save(
    changes: dict[str, object],
    qemu: QemuNow | None,
    image: ImageState,
    actions: tuple[RecoveryAction, ...],
) -> None:
    assert plan_save(save_record(**changes), qemu=qemu, image=image).actions == actions


def test_a_complete_image_keeps_its_guest_paused_and_says_why() -> None:
    plan = plan_save(save_record(), qemu=DONE, image=ImageState.COMPLETE)
    assert A.RESUME not in plan.actions
    assert "image is complete" in plan.reason
    assert "must not run on" in plan.reason


@pytest.mark.parametrize(
    ("kind", "loaded", "alive", "run_state", "actions"),
    [
        (SaveJobKind.RESTORE, False, False, None, ()),
        (SaveJobKind.RESTORE, False, True, None, (A.KILL,)),
        (SaveJobKind.RESTORE, True, True, RunState.PAUSED, (A.KILL,)),
        (SaveJobKind.MANAGED_RESTORE, True, True, RunState.PAUSED, (A.KILL,)),
        (SaveJobKind.RESTORE, True, True, RunState.RUNNING, (A.KEEP,)),
        (
            SaveJobKind.MANAGED_RESTORE,
            True,
            True,
            RunState.RUNNING,
            (A.KEEP, A.REMOVE_MANAGED_IMAGE),
        ),
    ],
)
def test_the_recovery_of_a_restore(
    kind: SaveJobKind,
    loaded: bool,
    alive: bool,
    run_state: RunState | None,
    actions: tuple[RecoveryAction, ...],
) -> None:
    record = save_record(kind=kind, loaded=loaded)
    assert plan_restore(record, alive=alive, run_state=run_state).actions == actions


# -- the record ----------------------------------------------------------------------------------


def test_a_record_round_trips_through_its_wire_form() -> None:
    record = save_record(kind=SaveJobKind.MANAGED_RESTORE, definition="<domain/>", loaded=True)
    assert SaveRecord.from_wire(record.to_wire()) == record
    assert record.to_wire()["kind"] == "managed-restore"
    assert record.to_wire()["path"] == "/images/vm.img"


@pytest.mark.parametrize(
    "damage",
    [
        lambda wire: "not a mapping",
        lambda wire: {k: v for k, v in wire.items() if k != "created"},
        lambda wire: {**wire, "kind": "dump"},
        lambda wire: {**wire, "original_bandwidth": "fast"},
        lambda wire: {**wire, "original_bandwidth": True},
    ],
    ids=["not-a-map", "missing-field", "unknown-kind", "text-bandwidth", "bool-bandwidth"],
)
def test_a_damaged_record_is_refused(damage: object) -> None:
    wire = save_record().to_wire()
    with pytest.raises(RecordError):
        SaveRecord.from_wire(damage(wire))  # type: ignore[operator]


# -- when a record is written and removed --------------------------------------------------------


@dataclass
class WatchedStore(MemorySaveRecordStore):
    """A store that notes, at each write, the record and what the world looked like."""

    sim: SimSaving | None = None
    writes: list[tuple[SaveRecord, RunState | None, bool]] = field(default_factory=list)

    def save(self, name: str, record: SaveRecord) -> None:
        assert self.sim is not None
        guest = self.sim.world.guest(HOST, name)
        run_state = None if guest is None else guest.run_state
        self.writes.append((record, run_state, record.path.exists()))
        super().save(name, record)


@pytest.fixture
def sim(tmp_path: Path) -> SimSaving:
    return SimSaving(tmp_path)


@pytest.fixture
def store(sim: SimSaving) -> WatchedStore:
    return WatchedStore(sim=sim)


@pytest.fixture
def ops(sim: SimSaving, store: WatchedStore) -> SaveOps:
    return SaveOps(sim.host, managed_save_dir=sim.directory / "managed", records=store)


def fault(kind: FaultKind, status: MigrationStatus) -> Fault:
    return Fault(kind=kind, host=HOST, point=FaultPoint.on_status(status), instance="vm")


async def test_a_save_is_recorded_before_its_first_side_effect(
    sim: SimSaving, ops: SaveOps, store: WatchedStore
) -> None:
    instance = await sim.start()
    await instance.set_parameters({"max-bandwidth": LIMIT})
    await ops.save("vm", sim.image())
    (first, state, existed), (second, _, _) = store.writes
    assert (state, existed) == (RunState.RUNNING, False)
    assert first == SaveRecord(
        job_id=first.job_id,
        kind=SaveJobKind.SAVE,
        domain="vm",
        path=sim.image(),
        was_running=True,
        original_bandwidth=LIMIT,
        created=False,
    )
    assert second == dataclasses.replace(first, created=True)
    assert store.records == {}


async def test_a_managed_save_and_its_start_are_recorded(
    sim: SimSaving, ops: SaveOps, store: WatchedStore
) -> None:
    await sim.start(paused=True)
    await ops.managed_save("vm")
    await ops.start_with_managed_save("vm")
    kinds = [(record.kind, record.was_running, record.loaded) for record, _, _ in store.writes]
    assert kinds == [
        (SaveJobKind.MANAGED_SAVE, False, False),
        (SaveJobKind.MANAGED_SAVE, False, False),
        (SaveJobKind.MANAGED_RESTORE, False, False),
        (SaveJobKind.MANAGED_RESTORE, False, True),
    ]
    assert store.records == {}


async def test_a_restore_is_recorded_before_its_qemu_starts(
    sim: SimSaving, ops: SaveOps, store: WatchedStore
) -> None:
    await sim.start()
    await ops.save("vm", sim.image())
    store.writes.clear()
    await ops.restore(sim.image())
    (first, state, _), (second, state_then, _) = store.writes
    assert state is None
    assert (first.kind, first.domain, first.path, first.loaded) == (
        SaveJobKind.RESTORE,
        "vm",
        sim.image(),
        False,
    )
    assert first.definition == format_domain(sim.host.guest("vm").domain, flags=FormatFlag.SECURE)
    assert (second.loaded, state_then) == (True, RunState.PAUSED)
    assert store.records == {}


async def test_a_failed_save_removes_its_record(
    sim: SimSaving, ops: SaveOps, store: WatchedStore
) -> None:
    await sim.start()
    sim.world.inject(fault(FaultKind.COMMAND_FAILURE, MigrationStatus.ACTIVE))
    with pytest.raises(SaveFailed):
        await ops.save("vm", sim.image())
    assert store.writes
    assert store.records == {}


async def test_an_aborted_save_removes_its_record(
    sim: SimSaving, ops: SaveOps, store: WatchedStore
) -> None:
    instance = await sim.start()
    sim.world.inject(fault(FaultKind.HANG, MigrationStatus.ACTIVE))
    async with instance.listen() as events:
        save = asyncio.create_task(ops.save("vm", sim.image()))
        await next_statuses(events, {MigrationStatus.ACTIVE})
        assert list(store.records) == ["vm"]
        await ops.job("vm").abort()
        with pytest.raises(SaveCancelled):
            await save
    assert store.records == {}


async def test_refused_and_failed_restores_leave_no_record(
    sim: SimSaving, ops: SaveOps, store: WatchedStore
) -> None:
    await sim.start()
    with pytest.raises(XmlRejected):
        await ops.save("vm", sim.image(), xml="<domain")
    sim.image().write_bytes(Magic.PARTIAL.value + bytes(200))
    with pytest.raises(BadImage):
        await ops.restore(sim.image())
    assert store.writes == []


# -- recovery through SaveOps --------------------------------------------------------------------


async def interrupted_save(sim: SimSaving, ops: SaveOps, *, paused: bool = False) -> None:
    """A save of ``vm`` that stalls in QEMU's migration and is then interrupted by a stopping
    daemon (:meth:`SaveOps.detach`, then its task cancelled)."""
    instance = await sim.start(paused=paused)
    await instance.set_parameters({"max-bandwidth": LIMIT})
    sim.world.inject(fault(FaultKind.HANG, MigrationStatus.ACTIVE))
    async with instance.listen() as events:
        save = asyncio.create_task(ops.save("vm", sim.image()))
        await next_statuses(events, {MigrationStatus.ACTIVE})
    ops.detach()
    save.cancel()
    with pytest.raises(asyncio.CancelledError):
        await save


def restarted(sim: SimSaving, store: WatchedStore) -> SaveOps:
    """The save operations of the next daemon on the same host."""
    return SaveOps(sim.host, managed_save_dir=sim.directory / "managed", records=store)


@pytest.mark.parametrize("paused", [False, True], ids=["running", "paused"])
async def test_an_interrupted_save_is_left_as_it_is_and_undone_at_the_next_start(
    sim: SimSaving, ops: SaveOps, store: WatchedStore, paused: bool
) -> None:
    await interrupted_save(sim, ops, paused=paused)
    instance = sim.host.guest("vm").instance
    assert list(store.records) == ["vm"]
    assert sim.image().read_bytes()[:16] == Magic.PARTIAL.value
    assert await instance.run_state() is RunState.PAUSED
    assert (await instance.query_parameters())["max-bandwidth"] == UNLIMITED_BANDWIDTH
    assert (await instance.query_migration()).status is MigrationStatus.ACTIVE

    [recovered] = await restarted(sim, store).recover()

    assert recovered.plan.actions == (
        A.CANCEL_MIGRATION,
        A.RESTORE_BANDWIDTH,
        *(() if paused else (A.RESUME,)),
        A.REMOVE_PARTIAL_IMAGE,
    )
    assert recovered.failures == ()
    assert (await instance.query_migration()).status is MigrationStatus.CANCELLED
    assert await instance.run_state() is (RunState.PAUSED if paused else RunState.RUNNING)
    assert (await instance.query_parameters())["max-bandwidth"] == LIMIT
    assert not sim.image().exists()
    assert store.records == {}
    assert recovered.summary() == (
        f"the save of 'vm' to {sim.image()} was interrupted by a restart of the daemon (the "
        "save did not complete; QEMU's migration: active); recovery: cancel QEMU's migration, "
        f"restore the bandwidth limit, {'' if paused else 'resume the guest, '}"
        "remove the partial image"
    )
    assert not recovered.kept


async def test_a_save_whose_qemu_died_only_loses_its_partial_image(
    sim: SimSaving, ops: SaveOps, store: WatchedStore
) -> None:
    await interrupted_save(sim, ops)
    await sim.host.guest("vm").instance.kill()
    [recovered] = await restarted(sim, store).recover()
    assert recovered.plan.actions == (A.REMOVE_PARTIAL_IMAGE,)
    assert not sim.image().exists()
    assert store.records == {}


async def test_a_complete_image_and_its_paused_guest_stay_as_they_are(
    sim: SimSaving, store: WatchedStore
) -> None:
    """The daemon died after the image was marked complete, before the guest was stopped."""
    instance = await sim.start(paused=True)
    await instance.set_parameters({"max-bandwidth": UNLIMITED_BANDWIDTH})
    sim.image().write_bytes(Magic.COMPLETE.value + bytes(200))
    store.records["vm"] = save_record(path=sim.image())
    [recovered] = await restarted(sim, store).recover()
    assert recovered.plan.actions == (A.RESTORE_BANDWIDTH,)
    assert sim.image().read_bytes()[:16] == Magic.COMPLETE.value
    assert await instance.run_state() is RunState.PAUSED
    assert (await instance.query_parameters())["max-bandwidth"] == LIMIT
    assert store.records == {}


async def test_a_restore_that_never_loaded_loses_its_qemu_not_its_image(
    sim: SimSaving, store: WatchedStore
) -> None:
    """A transient guest: the host does not know its QEMU; its record's definition finds it."""
    definition = domain("vm", memory_bytes=64 * MiB)
    await sim.host.driver.start(definition, mode=StartMode.INCOMING)
    sim.image().write_bytes(Magic.COMPLETE.value + bytes(200))
    store.records["vm"] = SaveRecord(
        kind=SaveJobKind.RESTORE,
        domain="vm",
        path=sim.image(),
        definition=format_domain(definition),
    )
    [recovered] = await restarted(sim, store).recover()
    assert recovered.plan.actions == (A.KILL,)
    assert sim.world.guest(HOST, "vm") is None
    assert sim.host.guests == {}
    assert sim.image().exists()
    assert store.records == {}


async def test_a_guest_running_from_its_managed_save_is_kept_and_the_image_removed(
    sim: SimSaving, store: WatchedStore
) -> None:
    """The daemon died after the restored guest was resumed, before the image was removed."""
    definition = domain("vm", memory_bytes=64 * MiB)
    instance = await sim.host.driver.start(definition, mode=StartMode.RUNNING)
    image = sim.directory / "managed" / "vm.save"
    image.parent.mkdir()
    image.write_bytes(Magic.COMPLETE.value + bytes(200))
    store.records["vm"] = SaveRecord(
        kind=SaveJobKind.MANAGED_RESTORE,
        domain="vm",
        path=image,
        definition=format_domain(definition),
        loaded=True,
    )
    [recovered] = await restarted(sim, store).recover()
    assert recovered.kept
    assert sim.host.guest("vm").instance.alive
    assert await instance.run_state() is RunState.RUNNING
    assert not image.exists()
    assert store.records == {}
