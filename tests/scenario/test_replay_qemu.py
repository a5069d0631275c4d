"""Every scenario that applies to qemu, replayed on two real daemons running the test guest
on real QEMU, a few scenarios at a time.

Scenarios that cut or slow the link run in the network lab (each daemon in a network
namespace of its own); without root they report "unsupported here" and are expected
failures. A scenario this machine cannot replay otherwise reports "unsupported here"; only
the reasons listed in :data:`ALLOWED_UNSUPPORTED` are accepted. Every other scenario must
pass.

Most of the time of the long scenarios is spent waiting (for a keepalive, a timeout, a
partition to heal), so more scenarios run at once than the machine has cores, the longest
first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from migrator.scenario import DriverName, ScenarioResult, Verdict, load_scenario, replay
from migrator.scenario.model import FaultKind, Scenario, StepKind
from migrator.scenario.trace import golden_path, read_golden

from .conftest import SCENARIOS

pytestmark = pytest.mark.qemu

#: Scenarios replayed at once.
CONCURRENCY = 3
#: Why a scenario may be unsupported here (substrings of the reason).
ALLOWED_UNSUPPORTED = ("netem",)
#: An unsupported-here reason that is a gap of the machine (no root), not of the replay.
NO_LAB = "network lab"
#: Seconds a partition keeps a replay busy at most (the daemons' keepalive gives up).
PARTITION_BUSY_S = 20.0
#: Seconds one migration of the test guest takes, about.
MIGRATION_S = 3.0


def qemu_scenarios() -> list[Path]:
    return sorted(
        path for path in SCENARIOS.glob("*.toml") if DriverName.QEMU in load_scenario(path).drivers
    )


def waits_s(scenario: Scenario) -> float:
    """About how long ``scenario`` waits, whatever the machine's speed."""
    steps = sum(step.seconds for step in scenario.steps if step.kind is StepKind.WAIT)
    faults = sum(
        min(fault.seconds, PARTITION_BUSY_S) if fault.kind is FaultKind.PARTITION else fault.seconds
        for fault in scenario.faults
        if fault.kind in (FaultKind.TIMEOUT, FaultKind.PARTITION)
    )
    return steps + faults + scenario.migration.repeat * MIGRATION_S


async def _replay_all(paths: list[Path]) -> dict[str, ScenarioResult]:
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(path: Path) -> ScenarioResult:
        async with slots:
            scenario = load_scenario(path)
            golden = read_golden(golden_path(path, driver=DriverName.QEMU.value))
            return await replay(scenario, driver=DriverName.QEMU, golden=golden)

    longest_first = sorted(paths, key=lambda path: -waits_s(load_scenario(path)))
    results = await asyncio.gather(*(one(path) for path in longest_first))
    return {result.name: result for result in results}


@pytest.fixture(scope="module")
def results() -> dict[str, ScenarioResult]:
    return asyncio.run(_replay_all(qemu_scenarios()))


@pytest.mark.parametrize("path", qemu_scenarios(), ids=lambda path: path.stem)
def test_scenario_on_qemu(path: Path, results: dict[str, ScenarioResult]) -> None:
    result = results[path.stem]
    passed = result.verdict in (Verdict.PASSED, Verdict.KNOWN_ISSUE)
    if result.verdict is Verdict.UNSUPPORTED:
        reason = " ".join(result.notes)
        if NO_LAB in reason:
            pytest.xfail(reason)
        assert any(allowed in reason for allowed in ALLOWED_UNSUPPORTED), reason
        return
    assert passed, "\n".join([*result.differences, *result.trace])
