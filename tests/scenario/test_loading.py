"""Reading scenario files: what a good file gives, and one clear error per mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from migrator.scenario import ScenarioFileError, load_scenario, scenario_files
from migrator.scenario.model import (
    FaultKind,
    GuestState,
    JobResult,
    Mode,
    Phase,
    Point,
    PointKind,
    Role,
    StepKind,
    TimeoutAction,
)
from migrator.status import MigrationStatus
from params import MigrationFlag as F

from .conftest import write_scenario

EXPECT = """
[expect]
result = "failed"
guest = { source = "running", destination = "absent" }
defined_on = ["source"]
"""

GOOD = (
    """
description = "everything"
drivers = ["sim"]

[hosts]
rate_mib_s = 200
same_uuid = false

[guest]
memory_mib = 512
working_set_mib = 64
dirty_rate_mib_s = 20

[migration]
mode = "direct"
flags = ["live", "auto-converge"]
typed = { bandwidth = 100, "auto_converge.initial" = 30 }

[[faults]]
kind = "timeout"
at = "before:perform"
seconds = 30
action = "postcopy"

[[faults]]
kind = "daemon-killed"
at = "command:cont@source"
host = "destination"
restart = false

[[faults]]
kind = "qemu-crash"
at = "status:postcopy-active@destination"

[[then]]
do = "wait"
seconds = 5

[[then]]
do = "resume-postcopy"
result = "completed"
"""
    + EXPECT
)


def test_a_full_file_reads_back(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path, "full", GOOD))
    assert scenario.name == "full"
    assert scenario.hosts.rate_mib_s == 200
    assert scenario.guest.memory_mib == 512
    assert scenario.migration.mode is Mode.DIRECT
    assert scenario.migration.flags == F.LIVE | F.AUTO_CONVERGE
    timeout, killed, crash = scenario.faults
    assert timeout.kind is FaultKind.TIMEOUT and timeout.action is TimeoutAction.POSTCOPY
    assert timeout.at == Point.before(Phase.PERFORM)
    assert killed.at == Point.on_command("cont", Role.SOURCE)
    assert killed.target is Role.DESTINATION and not killed.restart
    assert crash.at == Point(
        PointKind.STATUS, Role.DESTINATION, status=MigrationStatus.POSTCOPY_ACTIVE
    )
    assert crash.target is Role.DESTINATION
    assert [step.kind for step in scenario.steps] == [StepKind.WAIT, StepKind.RESUME_POSTCOPY]
    assert scenario.steps[1].result is JobResult.COMPLETED
    assert scenario.expect.guest[Role.SOURCE] is GuestState.RUNNING
    assert scenario.expect.defined_on == {Role.SOURCE}


def test_p2p_is_the_default_and_adds_its_flag(tmp_path: Path) -> None:
    scenario = load_scenario(
        write_scenario(tmp_path, "p2p", 'description = "x"\ndrivers = ["sim"]\n' + EXPECT)
    )
    assert scenario.migration.mode is Mode.P2P
    assert scenario.migration.flags == F.LIVE | F.PEER2PEER


HEAD = 'description = "x"\ndrivers = ["sim"]\n'
FAULT = HEAD + "[[faults]]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('drivers = ["sim"]\n' + EXPECT, "'description' is required"),
        (
            'description = "x"\ndrivers = ["vmware"]\n' + EXPECT,
            "drivers: 'vmware' is not one of: sim, qemu",
        ),
        (HEAD + "colour = 1\n" + EXPECT, "unknown key 'colour'"),
        (
            HEAD + '[migration]\nflags = ["fast"]\n' + EXPECT,
            "migration.flags: unknown migration flag 'fast'",
        ),
        (
            HEAD + '[migration]\nmode = "direct"\nflags = ["peer2peer"]\n' + EXPECT,
            "peer2peer contradicts mode 'direct'",
        ),
        (
            HEAD + '[migration]\ntyped = { "auto_converge.initial" = 30 }\n' + EXPECT,
            "migration.typed: Turn auto convergence on to tune it",
        ),
        (
            FAULT + 'kind = "meteor"\nat = "before:begin"\n' + EXPECT,
            "faults[0].kind: 'meteor' is not one of",
        ),
        (
            FAULT + 'kind = "cancel"\nat = "status:active"\n' + EXPECT,
            "faults[0].at: 'status:active' must name the side",
        ),
        (
            FAULT + 'kind = "cancel"\nat = "command:reboot@source"\n' + EXPECT,
            "faults[0].at: unknown command 'reboot'",
        ),
        (
            FAULT + 'kind = "cancel"\nat = "during:perform"\n' + EXPECT,
            "faults[0].at: 'during' is not one of: before, after, status, command",
        ),
        (
            FAULT + 'kind = "partition"\nat = "before:perform"\n' + EXPECT,
            "faults[0].seconds: a partition needs a positive duration",
        ),
        (
            FAULT + 'kind = "cancel"\nat = "before:begin"\nseconds = 3\n' + EXPECT,
            "faults[0]: unknown key 'seconds'",
        ),
        (
            FAULT + 'kind = "cookie-tampered"\nat = "before:prepare"\n' + EXPECT,
            "needs 'after:' a phase that emits a cookie",
        ),
        (
            HEAD + '[[then]]\ndo = "wait"\n' + EXPECT,
            "then[0].seconds: a wait needs a positive duration",
        ),
        (HEAD + '[expect]\nresult = "failed"\n', "expect: 'defined_on' is required"),
        (
            HEAD + '[expect]\nresult = "failed"\ndefined_on = []\n'
            'guest = { source = "gone", destination = "absent" }\n',
            "expect.guest.source: 'gone' is not one of: running, paused, absent",
        ),
        ('description = "x"\ndrivers = ["sim"\n', "not valid TOML"),
        (
            HEAD + "[guest]\nmemory_mib = 64\nworking_set_mib = 128\n" + EXPECT,
            "guest.working_set_mib: larger than the guest's memory",
        ),
        (
            HEAD + '[known_issue]\nreason = "r"\n' + EXPECT,
            "known_issue: 'differences' is required",
        ),
    ],
)
def test_a_mistake_is_one_error_naming_the_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_scenario(tmp_path, "bad", text)
    with pytest.raises(ScenarioFileError, match=re.escape(message)) as caught:
        load_scenario(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_directories_give_their_scenarios_in_order(tmp_path: Path) -> None:
    for name in ("b", "a"):
        write_scenario(tmp_path, name, "")
    (tmp_path / "notes.txt").write_text("")
    assert [path.name for path in scenario_files([tmp_path])] == ["a.toml", "b.toml"]
    with pytest.raises(ScenarioFileError, match="no such file or directory"):
        scenario_files([tmp_path / "missing.toml"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioFileError, match=re.escape("no *.toml scenario files")):
        scenario_files([empty])
