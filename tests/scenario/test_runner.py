"""What a replay finds: the guest running twice, faults that never fire, known issues that
show (or no longer do), and a replay that crashes."""

from __future__ import annotations

from pathlib import Path

from migrator.scenario import DriverName, Verdict, load_scenario, replay
from migrator.scenario.cluster import Cluster
from migrator.scenario.model import GuestSpec, GuestState, Scenario
from migrator.scenario.runner import ClusterFactory, sim_cluster
from migrator.scenario.simcluster import SimCluster, make_domain

from .conftest import write_scenario

HEAD = 'description = "test"\ndrivers = ["sim"]\n'
COMPLETES = """
[expect]
result = "completed"
guest = { source = "absent", destination = "running" }
defined_on = ["source"]
"""


async def replayed(scenario: Scenario, make_cluster: ClusterFactory | None = None):
    return await replay(scenario, driver=DriverName.SIM, golden=None, make_cluster=make_cluster)


async def test_a_plain_migration_passes(tmp_path: Path) -> None:
    result = await replayed(load_scenario(write_scenario(tmp_path, "plain", HEAD + COMPLETES)))
    assert result.verdict is Verdict.PASSED, result.differences
    assert result.notes == ("no golden trace to compare with",)
    assert result.clock_s > 0


class TwiceStarted(SimCluster):
    """Starts the guest on the destination too, behind the engine's back."""

    async def start_guest(self, guest: GuestSpec, *, host: str) -> None:
        await super().start_guest(guest, host=host)
        await self.start(make_domain(guest.name, memory_mib=guest.memory_mib), host="host-b")


def twice_started(scenario: Scenario) -> Cluster:
    return TwiceStarted(hosts=(scenario.hosts.source, scenario.hosts.destination))


async def test_the_guest_running_on_two_hosts_fails_the_scenario(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path, "twice", HEAD + COMPLETES))
    result = await replayed(scenario, make_cluster=twice_started)
    assert result.verdict is Verdict.FAILED
    assert result.first_difference == (
        "'vm' ran on host-a and host-b at once (at 'step host-a migrate to host-b')"
    )


async def test_a_fault_that_never_fires_fails_the_scenario(tmp_path: Path) -> None:
    text = HEAD + '[[faults]]\nkind = "qemu-crash"\nat = "status:postcopy-active@source"\n'
    result = await replayed(load_scenario(write_scenario(tmp_path, "idle", text + COMPLETES)))
    assert result.verdict is Verdict.FAILED
    assert result.differences == (
        "never fired: qemu-crash on source at status:postcopy-active@source",
    )


def known(reason: str, *differences: str) -> str:
    listed = ", ".join(f'"{difference}"' for difference in differences)
    return f'\n[known_issue]\nreason = "{reason}"\ndifferences = [{listed}]\n'


WRONG = COMPLETES.replace('destination = "running"', 'destination = "paused"')
SHOWS = "the guest on the destination (host-b): expected paused, found running"


async def test_a_known_issue_that_shows_as_described_is_reported_as_such(tmp_path: Path) -> None:
    text = HEAD + WRONG + known("paused is ignored", SHOWS)
    result = await replayed(load_scenario(write_scenario(tmp_path, "known", text)))
    assert result.verdict is Verdict.KNOWN_ISSUE
    assert result.notes[0] == "known issue: paused is ignored"


async def test_a_known_issue_that_shows_otherwise_fails(tmp_path: Path) -> None:
    text = HEAD + WRONG + known("something else", "holds job records")
    result = await replayed(load_scenario(write_scenario(tmp_path, "other", text)))
    assert result.verdict is Verdict.FAILED
    assert result.differences == (
        SHOWS,
        "the known issue no longer shows as 'holds job records'",
    )


async def test_a_known_issue_that_no_longer_shows_fails(tmp_path: Path) -> None:
    text = HEAD + COMPLETES + known("was broken", SHOWS)
    result = await replayed(load_scenario(write_scenario(tmp_path, "fixed", text)))
    assert result.verdict is Verdict.FAILED
    assert result.differences == ("passes now: remove its known_issue (was broken)",)


class Broken(SimCluster):
    async def guest_state(self, host: str, name: str) -> GuestState:
        raise ZeroDivisionError("a bug")


async def test_a_replay_that_crashes_says_how(tmp_path: Path) -> None:
    scenario = load_scenario(write_scenario(tmp_path, "crash", HEAD + COMPLETES))
    result = await replayed(scenario, make_cluster=lambda s: Broken())
    assert result.verdict is Verdict.FAILED
    assert result.first_difference == "the replay crashed: ZeroDivisionError: a bug"
    assert "Traceback" in result.notes[0]


async def test_a_scenario_for_another_driver_is_skipped(tmp_path: Path) -> None:
    scenario = load_scenario(
        write_scenario(tmp_path, "qemu", HEAD.replace('"sim"', '"qemu"') + COMPLETES)
    )
    result = await replay(scenario, driver=DriverName.SIM, golden=None, make_cluster=sim_cluster)
    assert result.verdict is Verdict.SKIPPED
