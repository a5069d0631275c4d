"""The scenario set covers what it must: the failure and recovery tables' rows, every
fault kind, cancel at each phase, every flag combination, offline migration, round trips."""

from __future__ import annotations

import itertools

from migrator.scenario import DriverName, FaultKind, load_scenario
from migrator.scenario.model import GuestStart, Phase, PointKind, Scenario, StepKind
from params import MigrationFlag as F

from .conftest import SCENARIOS

ALL = [load_scenario(path) for path in sorted(SCENARIOS.glob("*.toml"))]


def test_there_are_at_least_forty_scenarios_all_replayable_on_the_simulator() -> None:
    assert len(ALL) >= 40
    assert all(DriverName.SIM in scenario.drivers for scenario in ALL)


def test_every_fault_kind_is_used() -> None:
    used = {fault.kind for scenario in ALL for fault in scenario.faults}
    assert used == set(FaultKind)


def test_faults_fire_at_every_kind_of_point() -> None:
    used = {fault.at.kind for scenario in ALL for fault in scenario.faults}
    assert used == set(PointKind)


def test_every_persist_undefine_paused_combination_is_there() -> None:
    seen = {
        tuple(flag in s.migration.flags for flag in (F.PERSIST_DEST, F.UNDEFINE_SOURCE, F.PAUSED))
        for s in ALL
        if F.OFFLINE not in s.migration.flags and not s.faults
    }
    assert seen >= set(itertools.product([False, True], repeat=3))


def cancels_at(scenario: Scenario) -> set[str]:
    return {f.at.text for f in scenario.faults if f.kind is FaultKind.CANCEL}


def test_cancel_is_tried_around_every_phase_of_a_migration() -> None:
    points = set().union(*(cancels_at(scenario) for scenario in ALL))
    assert {"before:begin", "after:begin", "after:prepare", "after:perform"} <= points
    assert "status:active@source" in points and "status:postcopy-active@source" in points
    assert "after:finish" in points


def test_daemon_restarts_cover_the_recovery_table_phases() -> None:
    names = {scenario.name for scenario in ALL}
    for phase in ("begin3", "perform3", "perform3-done", "confirm3-cancelled", "confirm3"):
        assert f"restart-source-{phase}" in names
    for name in ("restart-source-postcopy-failed", "restart-source-confirm-resume"):
        assert name in names
    for name in ("prepare", "finish3-postcopy", "postcopy-failed"):
        assert f"restart-destination-{name}" in names


def test_the_special_cases_are_there() -> None:
    by_name = {scenario.name: scenario for scenario in ALL}
    assert by_name["same-host-refused"].hosts.same_uuid
    assert by_name["offline-migration"].guest.start is GuestStart.SHUTOFF
    assert by_name["back-and-forth"].migration.repeat == 20
    resumed = [s for s in ALL if any(step.kind is StepKind.RESUME_POSTCOPY for step in s.steps)]
    assert resumed
    assert F.AUTO_CONVERGE in by_name["slow-link-auto-converge"].migration.flags
    assert F.AUTO_CONVERGE not in by_name["slow-link-without-auto-converge"].migration.flags
    heals = by_name["partition-heals-during-perform"]
    assert heals.faults[0].kind is FaultKind.PARTITION
    cookie_faults = {f.at.phase for s in ALL for f in s.faults if f.kind.alters_cookie}
    assert Phase.BEGIN in cookie_faults
