"""Every scenario in ``scenarios/`` replayed on the simulator, against its golden trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.scenario import DriverName, Verdict, load_scenario, run_scenario
from migrator.scenario.trace import golden_path

from .conftest import SCENARIOS

FILES = sorted(SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_scenario_replays_on_the_simulator(path: Path) -> None:
    scenario = load_scenario(path)
    assert golden_path(path, driver="sim").exists(), "record its golden trace (--record)"
    result = run_scenario(scenario, driver=DriverName.SIM)
    assert result.verdict in (Verdict.PASSED, Verdict.KNOWN_ISSUE), "\n".join(result.differences)
    if scenario.known_issue is None:
        assert result.verdict is Verdict.PASSED


def test_a_replay_gives_the_same_trace_twice() -> None:
    scenario = load_scenario(SCENARIOS / "restart-source-perform3.toml")
    first = run_scenario(scenario, driver=DriverName.SIM)
    second = run_scenario(scenario, driver=DriverName.SIM)
    assert first.trace == second.trace
    assert any(line.startswith("recovery host-a source") for line in first.trace)
