"""Every scenario that applies to qemu, replayed on two real daemons running the test guest
on real QEMU, two scenarios at a time (the machine has two cores).

A scenario this machine cannot replay reports "unsupported here"; only the reasons listed in
:data:`ALLOWED_UNSUPPORTED` are accepted. Partitions and slow links are not replayed yet (the
daemons run on loopback, not in the network lab): those scenarios are expected failures, as
are the scenarios in :data:`NOT_YET` (strictly: once one passes, its entry must go).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from migrator.scenario import DriverName, ScenarioResult, Verdict, load_scenario, replay
from migrator.scenario.trace import golden_path, read_golden

from .conftest import SCENARIOS

pytestmark = pytest.mark.qemu

#: Scenarios replayed at once.
CONCURRENCY = 2
#: Why a scenario may be unsupported here (substrings of the reason).
ALLOWED_UNSUPPORTED = ("netem",)
#: An unsupported-here reason that is a gap of the replay, not of the machine.
NOT_REPLAYED_YET = "network lab"
#: Scenarios that do not pass on qemu yet, and what is wrong.
NOT_YET: dict[str, str] = {
    "source-daemon-dies-without-restart": (
        "real QEMU reaches pre-switchover before the destination gives up, and stays paused"
        " there with nobody to resume it: the source guest is found paused, not running"
    ),
    "timeout-abort": (
        "the test guest cannot dirty memory at 4096 MiB/s: on loopback the migration"
        " converges before the 10 s timeout"
    ),
}


#: Scenarios whose outcome on real QEMU depends on how loaded the machine is (a fault that
#: must land before a fast copy ends): a failure is reported as expected, with what differed.
TIMING_DEPENDENT = frozenset({"destination-daemon-dies-during-perform"})


def qemu_scenarios() -> list[Path]:
    return sorted(
        path for path in SCENARIOS.glob("*.toml") if DriverName.QEMU in load_scenario(path).drivers
    )


async def _replay_all(paths: list[Path]) -> dict[str, ScenarioResult]:
    slots = asyncio.Semaphore(CONCURRENCY)

    async def one(path: Path) -> ScenarioResult:
        async with slots:
            scenario = load_scenario(path)
            golden = read_golden(golden_path(path, driver=DriverName.QEMU.value))
            return await replay(scenario, driver=DriverName.QEMU, golden=golden)

    results = await asyncio.gather(*(one(path) for path in paths))
    return {result.name: result for result in results}


@pytest.fixture(scope="module")
def results() -> dict[str, ScenarioResult]:
    return asyncio.run(_replay_all(qemu_scenarios()))


@pytest.mark.parametrize("path", qemu_scenarios(), ids=lambda path: path.stem)
def test_scenario_on_qemu(path: Path, results: dict[str, ScenarioResult]) -> None:
    result = results[path.stem]
    passed = result.verdict in (Verdict.PASSED, Verdict.KNOWN_ISSUE)
    if path.stem in NOT_YET:
        if passed:
            pytest.fail(f"passes on qemu now: remove it from NOT_YET ({NOT_YET[path.stem]})")
        pytest.xfail(NOT_YET[path.stem])
    if result.verdict is Verdict.UNSUPPORTED:
        reason = " ".join(result.notes)
        if NOT_REPLAYED_YET in reason:
            pytest.xfail(reason)
        assert any(allowed in reason for allowed in ALLOWED_UNSUPPORTED), reason
        return
    if not passed and path.stem in TIMING_DEPENDENT:
        pytest.xfail(f"timing-dependent on a loaded machine: {result.first_difference}")
    assert passed, "\n".join([*result.differences, *result.trace])
