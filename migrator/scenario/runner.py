"""Replaying a scenario: build its cluster, start the guest, migrate with the faults armed,
run the steps, then compare the outcome with the expectation and the trace with the
golden trace. Every difference is listed, the most telling first: the guest running twice,
then the results, the guest's whereabouts, definitions, jobs, leftovers, and the trace.
"""

from __future__ import annotations

import asyncio
import enum
import time
import traceback
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from migrator.scenario.cluster import Check, Cluster
from migrator.scenario.errors import DriverUnavailable
from migrator.scenario.faults import EXPECTED_ERRORS, FaultPlan
from migrator.scenario.model import (
    DriverName,
    JobResult,
    Role,
    Scenario,
    Step,
    StepKind,
)
from migrator.scenario.qemucluster import QemuCluster, UnsupportedHere
from migrator.scenario.simcluster import SimCluster
from migrator.scenario.trace import (
    TraceKind,
    first_divergence,
    golden_path,
    read_golden,
    write_golden,
)

#: Wall-clock seconds one scenario may take before it counts as hung (a guard only).
WALL_GUARD_S = 120.0

ClusterFactory = Callable[[Scenario], Cluster]


def sim_cluster(scenario: Scenario) -> Cluster:
    return SimCluster.for_hosts(scenario.hosts)


#: The cluster each driver replays on.
CLUSTERS: dict[DriverName, ClusterFactory] = {
    DriverName.SIM: sim_cluster,
    DriverName.QEMU: QemuCluster.for_scenario,
}


def cluster_factory(driver: DriverName) -> ClusterFactory:
    """Raises: DriverUnavailable: no cluster replays scenarios on ``driver`` yet."""
    try:
        return CLUSTERS[driver]
    except KeyError:
        raise DriverUnavailable(
            f"scenarios cannot be replayed on the {driver.value} driver yet: that needs"
            " the host daemon and its client",
            driver=driver.value,
        ) from None


class Verdict(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    #: The scenario shows a defect it names, as expected.
    KNOWN_ISSUE = "known issue"
    #: The scenario does not apply to the driver.
    SKIPPED = "skipped"
    #: The scenario applies to the driver, but this machine cannot replay it.
    UNSUPPORTED = "unsupported here"


@dataclass(frozen=True)
class ScenarioResult:
    """What one replay found. ``notes`` are not failures (checks this driver cannot make,
    a missing golden trace, the known issue); ``clock_s`` is the cluster's clock (virtual
    on the simulator)."""

    name: str
    path: Path
    driver: DriverName
    verdict: Verdict
    differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    trace: tuple[str, ...] = ()
    wall_s: float = 0.0
    clock_s: float = 0.0

    @property
    def first_difference(self) -> str:
        return self.differences[0] if self.differences else ""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": str(self.path),
            "driver": self.driver.value,
            "verdict": self.verdict.value,
            "differences": list(self.differences),
            "notes": list(self.notes),
            "wall_s": round(self.wall_s, 3),
            "clock_s": round(self.clock_s, 3),
            "trace": list(self.trace),
        }


@dataclass
class _Attempt:
    result: JobResult
    error: str = ""


@dataclass
class _Replay:
    """One run of a scenario on a cluster."""

    scenario: Scenario
    cluster: Cluster
    plan: FaultPlan
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        #: Where the guest runs now (it moves with each completed migration).
        self.where = self.scenario.hosts.source

    @property
    def name(self) -> str:
        return self.scenario.guest.name

    def other(self, host: str) -> str:
        hosts = self.scenario.hosts
        return hosts.destination if host == hosts.source else hosts.source

    async def run(self) -> None:
        scenario, cluster = self.scenario, self.cluster
        await cluster.start_guest(scenario.guest, host=scenario.hosts.source)
        first = _Attempt(JobResult.COMPLETED)
        for _ in range(scenario.migration.repeat):
            first = await self.migrate()
            if first.result is JobResult.FAILED:
                break
        self.compare("the migration", scenario.expect.result, scenario.expect.error, first)
        for index, step in enumerate(scenario.steps):
            await self.step(f"step {index + 1} ({step.kind.value})", step)
        await self.plan.drain()
        await self.plan.stop_timers()
        await cluster.settle()
        await self.outcome()

    async def migrate(self) -> _Attempt:
        source, destination = self.where, self.other(self.where)
        migration = self.scenario.migration
        return await self.attempt(
            source,
            f"migrate to {destination}",
            self.cluster.migrate(
                self.name,
                source=source,
                destination=destination,
                mode=migration.mode,
                flags=migration.flags,
                typed=migration.typed,
            ),
        )

    async def attempt(self, source: str, what: str, call: Coroutine[Any, Any, None]) -> _Attempt:
        """Run one migration or resume from ``source`` and trace how it ended."""
        trace = self.cluster.trace
        trace.add(TraceKind.STEP, source, what)
        try:
            await call
        except EXPECTED_ERRORS as exc:
            outcome = _Attempt(JobResult.FAILED, str(exc))
        else:
            outcome = _Attempt(JobResult.COMPLETED)
            self.where = self.other(source)
        await self.plan.stop_timers()
        text = outcome.result.value + (f": {outcome.error}" if outcome.error else "")
        trace.add(TraceKind.RESULT, source, f"{what}: {text}")
        return outcome

    async def step(self, label: str, step: Step) -> None:
        cluster, hosts = self.cluster, self.scenario.hosts
        match step.kind:
            case StepKind.WAIT:
                await cluster.sleep(step.seconds)
            case StepKind.RESTART_DAEMON:
                await cluster.restart_daemon(hosts.name(step.host))
            case StepKind.MIGRATE:
                self.compare(label, step.result, step.error, await self.migrate())
            case StepKind.RESUME_POSTCOPY:
                source = self.where
                attempt = await self.attempt(
                    source,
                    f"resume post-copy to {self.other(source)}",
                    cluster.resume_postcopy(
                        self.name,
                        source=source,
                        destination=self.other(source),
                        mode=self.scenario.migration.mode,
                    ),
                )
                self.compare(label, step.result, step.error, attempt)

    def compare(
        self, label: str, result: JobResult | None, error: str | None, got: _Attempt
    ) -> None:
        if result is not None and got.result is not result:
            detail = f": {got.error}" if got.error else ""
            self.differences.append(
                f"{label}: expected {result.value}, got {got.result.value}{detail}"
            )
        elif error is not None and error not in got.error:
            self.differences.append(
                f"{label}: expected an error with '{error}', got '{got.error or 'none'}'"
            )

    async def outcome(self) -> None:
        cluster, expect, hosts = self.cluster, self.scenario.expect, self.scenario.hosts
        # The invariant comes first: everything else is detail next to it.
        self.differences[:0] = await cluster.violations()
        for role in Role:
            host = hosts.name(role)
            state = await cluster.guest_state(host, self.name)
            if state is not expect.guest[role]:
                self.differences.append(
                    f"the guest on the {role.value} ({host}): expected"
                    f" {expect.guest[role].value}, found {state.value}"
                )
        for role in Role:
            host = hosts.name(role)
            defined = await cluster.defined(host, self.name)
            if defined != (role in expect.defined_on):
                self.differences.append(
                    f"the {role.value} ({host}) {'has' if defined else 'lacks'} a definition"
                    f" of '{self.name}', expected {'none' if defined else 'one'}"
                )
        for role in Role:
            host = hosts.name(role)
            jobs = await cluster.open_jobs(host)
            if bool(jobs) != (role in expect.open_jobs):
                found = ", ".join(jobs) or "none"
                self.differences.append(
                    f"the {role.value} ({host}) holds job records for: {found}; expected"
                    f" {'one' if role in expect.open_jobs else 'none'}"
                )
        self.differences.extend(await cluster.leftovers(self.name))
        await self.optional_checks()

    async def optional_checks(self) -> None:
        wanted = [
            check
            for check, asked in (
                (Check.HEARTBEAT, self.scenario.expect.heartbeat),
                (Check.MEMORY_CHECKSUM, self.scenario.expect.memory_checksum),
            )
            if asked
        ]
        for check in wanted:
            if check not in self.cluster.checks:
                self.notes.append(f"{check.value} not checked on this driver")
                continue
            problem = await self.cluster.check(check, self.name)
            if problem is not None:
                self.differences.append(f"{check.value}: {problem}")


async def replay(
    scenario: Scenario,
    *,
    driver: DriverName,
    golden: Sequence[str] | None,
    make_cluster: ClusterFactory | None = None,
) -> ScenarioResult:
    """Replay ``scenario`` on ``driver`` and compare its trace with ``golden`` (None: no
    comparison).

    Raises:
        DriverUnavailable: no cluster replays scenarios on ``driver``.
    """
    if driver not in scenario.drivers:
        return ScenarioResult(scenario.name, scenario.path, driver, Verdict.SKIPPED)
    try:
        cluster = (make_cluster or cluster_factory(driver))(scenario)
    except UnsupportedHere as exc:
        return ScenarioResult(
            scenario.name,
            scenario.path,
            driver,
            Verdict.UNSUPPORTED,
            notes=(f"unsupported here: {exc}",),
        )
    plan = FaultPlan(
        scenario.faults, cluster=cluster, hosts=scenario.hosts, guest=scenario.guest.name
    )
    cluster.points = plan
    run = _Replay(scenario, cluster, plan)
    started = time.monotonic()
    try:
        async with asyncio.timeout(WALL_GUARD_S):
            await run.run()
    except TimeoutError:
        run.differences.insert(0, f"did not finish within {WALL_GUARD_S:g} s of wall time")
    except Exception as exc:  # a bug in the engine or the replay: shown, not hidden
        run.differences.insert(0, f"the replay crashed: {type(exc).__name__}: {exc}")
        run.notes.append("".join(traceback.format_exception(exc)))
    finally:
        # What closing the cluster sets off is not part of the run.
        lines = tuple(cluster.trace.lines)
        await cluster.close()
    wall_s = time.monotonic() - started
    run.differences.extend(f"never fired: {fault.text}" for fault in plan.pending)
    if golden is None:
        run.notes.append("no golden trace to compare with")
    else:
        divergence = first_divergence(golden, lines)
        if divergence is not None:
            run.differences.append(divergence.text)
    return ScenarioResult(
        name=scenario.name,
        path=scenario.path,
        driver=driver,
        verdict=_verdict(scenario, run.differences, run.notes),
        differences=tuple(run.differences),
        notes=tuple(run.notes),
        trace=lines,
        wall_s=wall_s,
        clock_s=cluster.elapsed_s,
    )


def _verdict(scenario: Scenario, differences: list[str], notes: list[str]) -> Verdict:
    issue = scenario.known_issue
    if issue is None:
        return Verdict.FAILED if differences else Verdict.PASSED
    if not differences:
        differences.append(f"passes now: remove its known_issue ({issue.reason})")
        return Verdict.FAILED
    unexplained = [d for d in differences if not any(part in d for part in issue.differences)]
    missing = [part for part in issue.differences if not any(part in d for d in differences)]
    if not unexplained and not missing:
        notes.insert(0, f"known issue: {issue.reason}")
        return Verdict.KNOWN_ISSUE
    explained = [d for d in differences if d not in unexplained]
    differences[:] = [
        *unexplained,
        *(f"the known issue no longer shows as '{part}'" for part in missing),
        *explained,
    ]
    return Verdict.FAILED


def run_scenario(scenario: Scenario, *, driver: DriverName, record: bool = False) -> ScenarioResult:
    """Replay ``scenario`` in an event loop of its own, against its golden trace; with
    ``record``, store the new trace as the golden one instead (only from a run that met
    its expectation).

    Raises:
        DriverUnavailable: no cluster replays scenarios on ``driver``.
        OSError, StateDirError: the golden trace cannot be read or written.
    """
    path = golden_path(scenario.path, driver=driver.value)
    golden = None if record else read_golden(path)
    result = asyncio.run(replay(scenario, driver=driver, golden=golden))
    if record and result.verdict in (Verdict.PASSED, Verdict.KNOWN_ISSUE):
        write_golden(path, result.trace)
        notes = tuple(note for note in result.notes if not note.startswith("no golden"))
        return replace(result, notes=(*notes, f"trace recorded in {path}"))
    return result
