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
    if result.verdict is Verdict.UNSUPPORTED:
        reason = " ".join(result.notes)
        if NOT_REPLAYED_YET in reason:
            pytest.xfail(reason)
        assert any(allowed in reason for allowed in ALLOWED_UNSUPPORTED), reason
        return
    assert passed, "\n".join([*result.differences, *result.trace])
