"""``migrator migrate`` between two ``sim`` daemons: peer-to-peer and managed-direct, the
progress bar and JSON output, and a failure."""

from __future__ import annotations

import json

from migrator.drivers.sim import Workload
from tests.cli.conftest import MiB, SimHosts

#: Converges at the simulator's link speed within a few passes.
STEADY = Workload(working_set_bytes=16 * MiB, dirty_rate_bytes_s=8 * MiB)


def state_on(sim_hosts: SimHosts, host: str, name: str) -> str | None:
    result = sim_hosts.cli("list", "--all", "--json", host=host)
    assert result.exit_code == 0, result.output
    states = {domain["name"]: domain["state"] for domain in json.loads(result.output)}
    return states.get(name)


def test_peer_to_peer_there_and_managed_direct_back(sim_hosts: SimHosts) -> None:
    sim_hosts.define("mover", workload=STEADY)
    assert sim_hosts.cli("start", "mover").exit_code == 0
    there = sim_hosts.cli(
        "migrate", "mover", sim_hosts.tls_uri("host-b"), "--live", "--p2p", "--verbose", "--json"
    )
    assert there.exit_code == 0, there.output
    job = json.loads(there.stdout)
    assert job["job_type"] == "completed"
    assert job["statistics"]["data_processed"] > 0
    assert "100%" in there.stderr
    assert state_on(sim_hosts, "host-b", "mover") == "running"
    assert state_on(sim_hosts, "host-a", "mover") == "shut off"  # still defined there

    back = sim_hosts.cli("migrate", "mover", sim_hosts.unix_uri("host-a"), "--live", host="host-b")
    assert (back.exit_code, back.output) == (0, "")
    assert state_on(sim_hosts, "host-a", "mover") == "running"
    assert state_on(sim_hosts, "host-b", "mover") is None
    completed = sim_hosts.cli("domjobinfo", "mover", "--completed", host="host-a")
    assert "Job type:" in completed.output
    assert sim_hosts.cli("destroy", "mover").exit_code == 0


def test_a_failed_migration_leaves_the_guest_running_on_the_source(sim_hosts: SimHosts) -> None:
    sim_hosts.define("homebody", workload=STEADY)
    assert sim_hosts.cli("start", "homebody").exit_code == 0
    nowhere = f"migrator+unix://{sim_hosts.directory}/nobody.sock"
    result = sim_hosts.cli("migrate", "homebody", nowhere, "--live")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "nobody.sock" in result.stderr
    assert state_on(sim_hosts, "host-a", "homebody") == "running"
    assert sim_hosts.cli("destroy", "homebody").exit_code == 0
