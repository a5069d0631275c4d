"""Traces: the first line where two part, and golden traces on disk."""

from __future__ import annotations

from pathlib import Path

from migrator.scenario.trace import (
    Trace,
    TraceKind,
    first_divergence,
    golden_path,
    read_golden,
    write_golden,
)


def test_identical_traces_do_not_diverge() -> None:
    assert first_divergence(["a", "b"], ["a", "b"]) is None
    assert first_divergence([], []) is None


def test_the_first_differing_line_is_reported() -> None:
    divergence = first_divergence(["a", "b", "c"], ["a", "x", "c"])
    assert divergence is not None
    assert (divergence.line, divergence.expected, divergence.actual) == (2, "b", "x")
    assert divergence.text == "trace line 2: expected 'b', got 'x'"


def test_a_shorter_or_longer_trace_diverges_where_one_ends() -> None:
    shorter = first_divergence(["a", "b"], ["a"])
    assert shorter is not None and shorter.text == "trace line 2: expected 'b', the trace ended"
    longer = first_divergence(["a"], ["a", "b"])
    assert (
        longer is not None and longer.text == "trace line 2: unexpected 'b' past the golden trace"
    )


def test_records_are_lines_and_listeners_see_each() -> None:
    trace = Trace()
    seen: list[str] = []
    trace.listeners.append(lambda record: seen.append(record.line))
    trace.add(TraceKind.QMP, "host-a", "cont")
    trace.add(TraceKind.DAEMON, "host-b", "killed")
    trace.add(TraceKind.STEP, "host-a")
    assert trace.lines == ["qmp host-a cont", "daemon host-b killed", "step host-a"]
    assert seen == trace.lines


def test_golden_traces_round_trip_next_to_their_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "crash.toml"
    path = golden_path(scenario, driver="sim")
    assert path == tmp_path / "golden" / "crash.sim.trace"
    assert read_golden(path) is None
    write_golden(path, ["phase host-a source begin3", "qmp host-a migrate"])
    assert read_golden(path) == ["phase host-a source begin3", "qmp host-a migrate"]
    assert [entry.name for entry in path.parent.iterdir()] == ["crash.sim.trace"]
