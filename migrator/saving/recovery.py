"""Resolving, when a daemon starts, the save and restore jobs that its predecessor left half
done: each record is read, QEMU and the image are looked at, the plan of
:mod:`migrator.saving.recovery_plan` is carried out, and the record is removed.

Call it once the host has found its running guests again: a save's guest is one of them (or
its QEMU is gone); a restore's QEMU is found by its recorded definition if the host did not
find it (a transient guest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Final

from migrator.domain import DomainError, parse_domain
from migrator.drivers.base import DriverError, Instance, InstanceEvent
from migrator.runtime.host import Host
from migrator.saveimage import Magic
from migrator.saving.errors import ImageIOError
from migrator.saving.imagefile import remove_image
from migrator.saving.job import migration_end
from migrator.saving.records import RecordedJob, SaveJobKind, SaveRecord, SaveRecords
from migrator.saving.recovery_plan import (
    ImageState,
    QemuNow,
    RecoveryAction,
    RecoveryPlan,
    plan_restore,
    plan_save,
)
from migrator.saving.save import MAX_BANDWIDTH

log = logging.getLogger("migrator.save")

#: How long QEMU gets to end a cancelled migration (a guard: QEMU writing into a pipe that
#: nobody reads any more would otherwise hold the daemon's start for ever).
CANCEL_GUARD_S: Final = 60.0


@dataclass(frozen=True)
class Recovered:
    """One job resolved: its record, the plan, and what failed (``failed to ...: why``)."""

    record: SaveRecord
    plan: RecoveryPlan
    failures: tuple[str, ...] = ()

    @property
    def job(self) -> str:
        """The job in words: ``the save of 'vm' to /images/vm.img``."""
        record = self.record
        return {
            SaveJobKind.SAVE: f"the save of '{record.domain}' to {record.path}",
            SaveJobKind.MANAGED_SAVE: f"the managed save of '{record.domain}'",
            SaveJobKind.RESTORE: f"the restore of '{record.domain}' from {record.path}",
            SaveJobKind.MANAGED_RESTORE: (
                f"the start of '{record.domain}' from its managed save image"
            ),
        }[record.kind]

    @property
    def error(self) -> str:
        """Why the job did not complete, for the domain's last completed job."""
        return f"{self.job} was interrupted: the daemon restarted"

    @property
    def kept(self) -> bool:
        """Whether the guest runs on from a restore that had in fact completed."""
        return RecoveryAction.KEEP in self.plan.actions

    def summary(self) -> str:
        """What was done and why, in one line."""
        steps = ", ".join(action.value for action in self.plan.actions) or "nothing to do"
        line = f"{self.job} was interrupted by a restart of the daemon ({self.plan.reason})"
        return "; ".join((f"{line}; recovery: {steps}", *self.failures))


async def recover_jobs(host: Host, records: SaveRecords) -> list[Recovered]:
    """Resolve every job in ``records`` on ``host`` and remove its record.

    Raises:
        MigratorError: a record cannot be read back.
    """
    resolved = []
    for name in records.store.names():
        record = records.store.load(name)
        if record is None:
            continue
        if record.kind.saving:
            recovered = await _recover_save(host, record)
        else:
            recovered = await _recover_restore(host, record)
        RecordedJob(records, record).end()
        resolved.append(recovered)
    return resolved


def image_state(record: SaveRecord) -> ImageState:
    """What the image of ``record`` looks like (blocks: it reads the magic).

    Raises:
        OSError: the file exists but cannot be read.
    """
    try:
        with record.path.open("rb") as file:
            magic = file.read(len(Magic.COMPLETE.value))
    except FileNotFoundError:
        return ImageState.MISSING
    return ImageState.COMPLETE if magic == Magic.COMPLETE.value else ImageState.INCOMPLETE


async def _recover_save(host: Host, record: SaveRecord) -> Recovered:
    try:
        image = await asyncio.to_thread(image_state, record)
    except OSError as exc:
        # Nothing is removed and the guest is left as it is: the image may be complete.
        return Recovered(
            record,
            RecoveryPlan((), "its image cannot be read"),
            (f"failed to read the image: {exc.strerror or exc}",),
        )
    guest = host.guests.get(record.domain)
    if guest is None or not guest.instance.alive:
        plan = plan_save(record, qemu=None, image=image)
        return Recovered(record, plan, await _carry_out(plan, record, instance=None, events=None))
    instance = guest.instance
    try:
        async with instance.listen() as events:
            migration = await instance.query_migration()
            qemu = QemuNow(migration.status, await instance.run_state())
            plan = plan_save(record, qemu=qemu, image=image)
            failures = await _carry_out(plan, record, instance=instance, events=events)
    except DriverError as exc:
        return Recovered(
            record, RecoveryPlan((), "QEMU does not answer"), (f"failed to ask QEMU: {exc}",)
        )
    return Recovered(record, plan, failures)


async def _recover_restore(host: Host, record: SaveRecord) -> Recovered:
    name = record.domain
    guest = host.guests.get(name)
    try:
        domain = parse_domain(record.definition) if guest is None else guest.domain
        instance = guest.instance if guest is not None else await host.driver.attach(domain)
    except (DomainError, DriverError) as exc:
        return Recovered(
            record, RecoveryPlan((), "its QEMU cannot be found"), (f"failed to look: {exc}",)
        )
    if instance is None or not instance.alive:
        return Recovered(record, plan_restore(record, alive=False, run_state=None))
    run_state = None
    failures: tuple[str, ...] = ()
    if record.loaded:
        try:
            run_state = await instance.run_state()
        except DriverError as exc:
            failures = (f"failed to read QEMU's run state: {exc}",)
    plan = plan_restore(record, alive=True, run_state=run_state)
    if RecoveryAction.KILL in plan.actions:
        if guest is not None:
            host.remove_guest(name)
        failures += await _attempt(RecoveryAction.KILL, instance.kill())
        return Recovered(record, plan, failures)
    if guest is None:
        host.add_guest(domain, instance)
    if RecoveryAction.REMOVE_MANAGED_IMAGE in plan.actions:
        failures += await _remove(RecoveryAction.REMOVE_MANAGED_IMAGE, record)
    return Recovered(record, plan, failures)


async def _carry_out(
    plan: RecoveryPlan,
    record: SaveRecord,
    *,
    instance: Instance | None,
    events: AsyncIterator[InstanceEvent] | None,
) -> tuple[str, ...]:
    """Take the steps of a save's plan, in order; the ones that failed, with why."""
    failures: tuple[str, ...] = ()
    for action in plan.actions:
        if action is RecoveryAction.REMOVE_PARTIAL_IMAGE:
            failures += await _remove(action, record)
            continue
        assert instance is not None and events is not None  # only removal without QEMU
        if action is RecoveryAction.CANCEL_MIGRATION:
            failures += await _attempt(action, _cancel(instance, events))
        elif action is RecoveryAction.RESTORE_BANDWIDTH:
            original = {MAX_BANDWIDTH: record.original_bandwidth}
            failures += await _attempt(action, instance.set_parameters(original))
        elif action is RecoveryAction.RESUME:
            failures += await _attempt(action, instance.resume())
    return failures


async def _cancel(instance: Instance, events: AsyncIterator[InstanceEvent]) -> None:
    """Cancel QEMU's migration and wait until it has ended.

    Raises:
        DriverError: QEMU refused the cancel.
        TimeoutError: the migration did not end within :data:`CANCEL_GUARD_S`.
    """
    await instance.cancel_migration()
    async with asyncio.timeout(CANCEL_GUARD_S):
        await migration_end(events)


async def _attempt(action: RecoveryAction, step: Awaitable[None]) -> tuple[str, ...]:
    """Await ``step``; what failed, if it did."""
    try:
        await step
    except DriverError as exc:
        return (f"failed to {action.value}: {exc}",)
    except TimeoutError:
        return (f"failed to {action.value}: it did not end within {CANCEL_GUARD_S:g} s",)
    return ()


async def _remove(action: RecoveryAction, record: SaveRecord) -> tuple[str, ...]:
    try:
        await asyncio.to_thread(remove_image, record.path, domain=record.domain)
    except ImageIOError as exc:
        return (f"failed to {action.value}: {exc}",)
    return ()
