"""Applying and restoring a job's migration parameters on a simulated QEMU: every
capability ends in its state, and only the capabilities that change are sent."""

from __future__ import annotations

from collections.abc import Mapping

from migrator.drivers.base import Instance, StartMode
from migrator.drivers.sim import CommandRecord, SimDriver, SimWorld
from migrator.drivers.sim.faults import Operation
from migrator.runtime.params_apply import apply_params, restore_params, save_originals
from params import MigrationFlag as F
from params import Side, from_typed

from .cluster import make_domain

POSTCOPY = F.LIVE | F.PEER2PEER | F.POSTCOPY


def capability_sets(world: SimWorld) -> list[Mapping[str, bool]]:
    """Each ``migrate-set-capabilities`` the guest received, as name -> state."""
    return [
        {str(item["capability"]): bool(item["state"]) for item in record.arguments["capabilities"]}  # type: ignore[attr-defined]
        for record in world.trace
        if isinstance(record, CommandRecord) and record.operation is Operation.SET_CAPABILITIES
    ]


async def started(world: SimWorld) -> Instance:
    return await SimDriver(world, "host-a").start(make_domain(), mode=StartMode.PAUSED)


async def test_a_job_sends_only_the_capabilities_it_changes() -> None:
    world = SimWorld()
    instance = await started(world)
    before = dict(await instance.capability_states())
    at_start = len(capability_sets(world))  # the driver turns "events" on
    originals = await save_originals(instance)
    pset = from_typed({}, flags=POSTCOPY, side=Side.SOURCE)

    await apply_params(instance, pset, side=Side.SOURCE, remote_caps=None)
    after = await instance.capability_states()
    (applied,) = capability_sets(world)[at_start:]
    assert applied == {name: after[name] for name in after if after[name] != before[name]}
    assert after["postcopy-ram"] and after["return-path"] and after["pause-before-switchover"]

    await apply_params(instance, pset, side=Side.SOURCE, remote_caps=None)
    assert len(capability_sets(world)) == at_start + 1, "nothing changed, so nothing is sent"

    await restore_params(instance, originals)
    assert await instance.capability_states() == before
    assert capability_sets(world)[-1] == {name: False for name in applied if applied[name]}
