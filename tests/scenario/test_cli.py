"""``migrator scenario run``: the summary, the first difference, JSON, recording, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from migrator.cli import main

from .conftest import SCENARIOS


def scenario_copy(tmp_path: Path, name: str, *, golden: bool = True) -> Path:
    path = tmp_path / f"{name}.toml"
    shutil.copy(SCENARIOS / f"{name}.toml", path)
    if golden:
        (tmp_path / "golden").mkdir(exist_ok=True)
        shutil.copy(SCENARIOS / "golden" / f"{name}.sim.trace", tmp_path / "golden")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scenario", "run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_passing_scenarios_give_a_summary_and_exit_zero(tmp_path: Path) -> None:
    scenario_copy(tmp_path, "cancel-during-perform")
    scenario_copy(tmp_path, "same-host-refused")
    code, out, err = run(str(tmp_path))
    assert code == 0, out + err
    assert "2 scenarios: 2 passed" in out
    assert "cancel-during-perform" in out and "same-host-refused" in out
    assert "passed cancel-during-perform" in err


def test_a_wrong_expectation_fails_with_the_first_difference(tmp_path: Path) -> None:
    path = scenario_copy(tmp_path, "perform-qemu-crash-destination")
    path.write_text(path.read_text().replace('source = "running"', 'source = "paused"'))
    code, out, _ = run(str(path))
    assert code == 1
    assert "1 scenarios: 1 failed" in out
    assert "the guest on the source (host-a): expected paused, found running" in out


def test_a_changed_trace_fails_with_the_first_divergent_line(tmp_path: Path) -> None:
    path = scenario_copy(tmp_path, "cancel-after-perform")
    golden = tmp_path / "golden" / "cancel-after-perform.sim.trace"
    lines = golden.read_text().splitlines()
    lines[3] = "cookie host-a begin lockstate"
    golden.write_text("\n".join(lines) + "\n")
    code, out, _ = run("--json", str(path))
    assert code == 1
    (result,) = json.loads(out)
    assert result["verdict"] == "failed"
    assert result["differences"] == [
        "trace line 4: expected 'cookie host-a begin lockstate',"
        " got 'cookie host-a begin capabilities'"
    ]


def test_json_lists_each_result_with_its_trace(tmp_path: Path) -> None:
    path = scenario_copy(tmp_path, "restart-source-begin3")
    code, out, _ = run("--json", str(path))
    assert code == 0
    (result,) = json.loads(out)
    assert result["name"] == "restart-source-begin3"
    assert result["driver"] == "sim" and result["verdict"] == "passed"
    assert "daemon host-a killed" in result["trace"]
    assert "recovery host-a source: nothing, ended" in result["trace"]


def test_record_stores_the_golden_trace(tmp_path: Path) -> None:
    path = scenario_copy(tmp_path, "cookie-tampered", golden=False)
    code, out, _ = run("--json", "--record", str(path))
    assert code == 0, out
    golden = tmp_path / "golden" / "cookie-tampered.sim.trace"
    assert golden.read_text() == (SCENARIOS / "golden" / "cookie-tampered.sim.trace").read_text()
    (result,) = json.loads(out)
    assert any("trace recorded" in note for note in result["notes"])


def test_a_scenario_for_another_driver_is_skipped(tmp_path: Path) -> None:
    path = scenario_copy(tmp_path, "cookie-tampered")
    path.write_text(path.read_text().replace('drivers = ["sim", "qemu"]', 'drivers = ["qemu"]'))
    code, out, _ = run(str(path))
    assert code == 0
    assert "skipped" in out


def test_a_scenario_qemu_cannot_replay_here_says_why() -> None:
    code, out, _ = run(
        "--driver", "qemu", "--json", str(SCENARIOS / "slow-link-during-perform.toml")
    )
    assert code == 0
    [result] = json.loads(out)
    assert result["verdict"] == "unsupported here"
    assert "netem" in result["notes"][0]


def test_a_bad_file_is_one_error_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('description = "x"\ndrivers = ["sim"]\n')
    code, _, err = run(str(path))
    assert code == 1
    assert err.strip() == f"error: {path}: 'expect' is required"
