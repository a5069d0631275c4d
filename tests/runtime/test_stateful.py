"""A hypothesis state machine that interleaves a migration's phases with faults, cancels,
post-copy switches and daemon restarts (jobs rebuilt from their stored records), on the
simulator, and checks after every step that the guest runs on at most one host, and once
no job is open, that it exists on exactly one host with its definition where the flags say.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from migrator.drivers.sim import Fault, FaultKind, FaultPoint, Workload
from migrator.errors import MigratorError
from migrator.runtime.host import Host
from migrator.runtime.protocol import resume_postcopy
from migrator.runtime.restart import reattach
from migrator.status import MigrationStatus as MS
from params import MigrationFlag as F

from .cluster import Cluster, MiB, make_domain, sides_of

EXAMPLES = int(
    os.environ.get("MIGRATOR_STATEFUL_EXAMPLES", "2000" if os.environ.get("CI") else "300")
)

#: Wall-clock seconds any one step may take (the simulator runs in virtual time).
STEP_GUARD_S = 5.0

FLAG_SETS = st.sampled_from(
    [
        F.LIVE | F.PEER2PEER,
        F.PEER2PEER,
        F.LIVE | F.PEER2PEER | F.PERSIST_DEST | F.UNDEFINE_SOURCE,
        F.LIVE | F.PEER2PEER | F.PAUSED,
        F.LIVE | F.PEER2PEER | F.POSTCOPY,
        F.LIVE | F.PEER2PEER | F.POSTCOPY | F.PERSIST_DEST,
        F.LIVE | F.PEER2PEER | F.AUTO_CONVERGE,
    ]
)
WORKLOADS = st.sampled_from(
    [
        Workload(),
        Workload(working_set_bytes=64 * MiB, dirty_rate_bytes_s=20 * MiB),
        Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=4096 * MiB),
    ]
)
STATUSES = st.sampled_from([MS.SETUP, MS.ACTIVE, MS.POSTCOPY_ACTIVE, MS.COMPLETED])
HOSTS = st.sampled_from(["host-a", "host-b"])


class MigrationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.cluster = Cluster()
        self.lost = False
        self.flags = F(0)
        self.migration: asyncio.Task[None] | None = None
        self.crashes: list[Fault] = []
        self.run(self.cluster.start(make_domain(memory_mib=1024)))
        self.home = self.cluster.a

    # -- plumbing ------------------------------------------------------------------------

    def run(self, step: Coroutine[object, object, None]) -> None:
        # A step that waits forever is a hang in the engine: fail it instead of the suite.
        self.loop.run_until_complete(asyncio.wait_for(step, STEP_GUARD_S))

    def teardown(self) -> None:
        # Stop everything still running (watchers, a migration) before the loop goes.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()
        asyncio.set_event_loop(None)

    def other(self, host: Host) -> Host:
        return self.cluster.b if host is self.cluster.a else self.cluster.a

    def host(self, name: str) -> Host:
        return self.cluster.a if name == "host-a" else self.cluster.b

    def jobs_open(self) -> bool:
        return any(side._jobs for pair in self.cluster.sides.values() for side in pair)

    @property
    def migrating(self) -> bool:
        return self.migration is not None and not self.migration.done()

    async def settle(self) -> None:
        await self.cluster.world.sleep(1)

    # -- rules ---------------------------------------------------------------------------

    @precondition(lambda self: not self.migrating and not self.jobs_open() and not self.lost)
    @rule(flags=FLAG_SETS, workload=WORKLOADS)
    def start_migration(self, flags: F, workload: Workload) -> None:
        self.flags = flags
        self.cluster.world.set_workload("vm", workload)
        source = self.home

        async def migrate() -> None:
            with contextlib.suppress(MigratorError):
                await self.cluster.migrate("vm", source=source, flags=flags)

        async def begin() -> None:
            self.migration = asyncio.create_task(migrate())
            await self.settle()

        self.run(begin())

    @rule(ms=st.integers(min_value=1, max_value=20_000))
    def advance(self, ms: int) -> None:
        self.run(self.cluster.world.sleep(ms))
        self.follow_the_guest()

    @precondition(lambda self: self.migrating)
    @rule()
    def cancel(self) -> None:
        async def step() -> None:
            with contextlib.suppress(MigratorError):
                await self.cluster.source(self.home).cancel("vm")
            await self.settle()

        self.run(step())

    @precondition(lambda self: self.migrating and F.POSTCOPY in self.flags)
    @rule()
    def switch_to_postcopy(self) -> None:
        async def step() -> None:
            with contextlib.suppress(MigratorError):
                await self.cluster.source(self.home).switch_to_postcopy("vm")
            await self.settle()

        self.run(step())

    @rule(host=HOSTS, status=STATUSES, kind=st.sampled_from([FaultKind.CRASH, FaultKind.LINK_DOWN]))
    def inject_fault(self, host: str, status: MS, kind: FaultKind) -> None:
        duration = 3_000 if kind is FaultKind.LINK_DOWN else 0
        fault = Fault(kind, host, FaultPoint.on_status(status), duration_ms=duration)
        if kind is FaultKind.CRASH:
            self.crashes.append(fault)
        self.cluster.world.inject(fault)

    @rule(name=HOSTS)
    def restart_daemon(self, name: str) -> None:
        """The daemon of ``name`` dies and starts again; its guests keep running."""
        host = self.host(name)
        peer = self.other(host)

        async def step() -> None:
            if self.migration is not None and not self.migration.done():
                self.migration.cancel()
                with contextlib.suppress(BaseException):
                    await self.migration
            source, destination = self.cluster.sides[name]
            await source.detach()
            await destination.detach()
            # The peer daemon sees its connection drop.
            with contextlib.suppress(MigratorError):
                await self.cluster.source(peer).peer_lost("vm")
            with contextlib.suppress(MigratorError):
                await self.cluster.destination(peer).abandon("vm")
            host.guests.clear()
            sides = sides_of(host)
            self.cluster.sides[name] = sides
            await reattach(host, source=sides[0], destination=sides[1])
            await self.settle()

        self.run(step())
        self.follow_the_guest()

    @precondition(lambda self: not self.migrating)
    @rule()
    def resume_postcopy(self) -> None:
        async def step() -> None:
            with contextlib.suppress(MigratorError):
                await resume_postcopy(
                    self.cluster.source(self.home),
                    self.cluster.destination(self.other(self.home)),
                    "vm",
                )
            await self.settle()

        self.run(step())
        self.follow_the_guest()

    def follow_the_guest(self) -> None:
        """After a finished job, the next migration starts from wherever the guest is."""
        if self.migrating or self.jobs_open():
            return
        alive = self.loop.run_until_complete(self.cluster.alive_on("vm"))
        if len(alive) == 1:
            self.home = self.host(alive[0])
        elif not alive:
            self.lost = True

    # -- the invariant -------------------------------------------------------------------

    @invariant()
    def runs_on_at_most_one_host(self) -> None:
        running = self.loop.run_until_complete(self.cluster.running_on("vm"))
        assert len(running) <= 1, f"guest runs on {running}"

    @invariant()
    def exists_on_exactly_one_host_once_no_job_is_open(self) -> None:
        if self.migrating or self.jobs_open():
            return
        alive = self.loop.run_until_complete(self.cluster.alive_on("vm"))
        pending = self.cluster.world.pending_faults
        if any(all(fault is not waiting for waiting in pending) for fault in self.crashes):
            assert len(alive) <= 1, f"guest alive on {alive}"
        else:
            assert len(alive) == 1, f"guest alive on {alive} with no job open"
            where = self.host(alive[0])
            assert "vm" in where.guests, "the running guest is not known to its host"


MigrationMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMigrationProtocol = MigrationMachine.TestCase
