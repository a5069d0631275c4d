"""The domain, job and event commands through the real command line, against two ``sim``
daemons (over their unix sockets and over mutual TLS)."""

from __future__ import annotations

import asyncio
import json
import threading

from migrator.client import Client
from tests.cli.conftest import GUARD_S, SimHosts


def test_a_domain_from_definition_to_undefinition(sim_hosts: SimHosts) -> None:
    path = sim_hosts.define("life")
    listing = sim_hosts.cli("list", "--all")
    assert listing.exit_code == 0, listing.output
    assert any(line.split()[:3] == ["life", "shut", "off"] for line in listing.output.splitlines())
    assert "life" not in sim_hosts.cli("list", "--name").output.split()

    started = sim_hosts.cli("start", "life")
    assert (started.exit_code, started.output) == (0, "Domain 'life' started\n")
    info = json.loads(sim_hosts.cli("dominfo", "life", "--json").output)
    assert (info["name"], info["state"], info["persistent"]) == ("life", "running", True)
    assert info["memory_kib"] == 128 * 1024

    assert sim_hosts.cli("suspend", "life").output == "Domain 'life' suspended\n"
    assert "State:        paused" in sim_hosts.cli("dominfo", "life").output
    assert sim_hosts.cli("resume", "life").output == "Domain 'life' resumed\n"

    xml = sim_hosts.cli("dumpxml", "life", "--inactive")
    assert xml.exit_code == 0, xml.output
    assert "<name>life</name>" in xml.output
    assert json.loads(sim_hosts.cli("dumpxml", "life", "--json").output)["name"] == "life"

    assert sim_hosts.cli("destroy", "life").output == "Domain 'life' destroyed\n"
    assert sim_hosts.cli("undefine", "life").output == "Domain 'life' has been undefined\n"
    assert "life" not in sim_hosts.cli("list", "--all", "--name").output.split()
    assert path.exists()


def test_over_tls_too(sim_hosts: SimHosts) -> None:
    listing = sim_hosts.cli("list", "--all", "--json", tls=True)
    assert listing.exit_code == 0, listing.output
    assert isinstance(json.loads(listing.output), list)


def test_an_unknown_domain_is_one_error_line(sim_hosts: SimHosts) -> None:
    result = sim_hosts.cli("dominfo", "nobody")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")
    assert "nobody" in result.stderr


def test_refused_operations_are_one_error_line(sim_hosts: SimHosts) -> None:
    sim_hosts.define("idle")
    resumed = sim_hosts.cli("resume", "idle")
    assert resumed.exit_code == 1
    assert resumed.stderr.startswith("error: ")
    assert resumed.stderr.count("\n") == 1


def test_no_job_and_speed_settings(sim_hosts: SimHosts) -> None:
    sim_hosts.define("tuned")
    assert sim_hosts.cli("start", "tuned").exit_code == 0
    assert sim_hosts.cli("domjobinfo", "tuned").output == "Job type: None\n"
    assert json.loads(sim_hosts.cli("domjobinfo", "tuned", "--json").output)["job_type"] == "none"
    assert sim_hosts.cli("migrate-setspeed", "tuned", "64").exit_code == 0
    assert sim_hosts.cli("migrate-getspeed", "tuned").output == "64\n"
    speed = json.loads(sim_hosts.cli("migrate-getspeed", "tuned", "--json").output)
    assert speed == {"bandwidth_mib_s": 64}
    downtime = sim_hosts.cli("migrate-setmaxdowntime", "tuned", "500")
    assert downtime.exit_code == 0, downtime.output
    assert sim_hosts.cli("destroy", "tuned").exit_code == 0


def test_event_prints_the_first_event_of_a_domain(sim_hosts: SimHosts) -> None:
    sim_hosts.define("blinker")
    assert sim_hosts.cli("start", "blinker").exit_code == 0
    stop = threading.Event()

    async def blink() -> None:
        # Until the command has printed an event: it subscribes when it starts waiting.
        async with await Client.connect(sim_hosts.unix_uri("host-a")) as client:
            while not stop.is_set():
                await client.suspend("blinker")
                await asyncio.sleep(0.05)
                await client.resume("blinker")
                await asyncio.sleep(0.05)

    blinking = asyncio.run_coroutine_threadsafe(blink(), sim_hosts.background.loop)
    try:
        result = sim_hosts.cli("event", "--domain", "blinker", "--json", "--timeout", "60")
    finally:
        stop.set()
        blinking.result(GUARD_S)
    assert result.exit_code == 0, result.output
    event = json.loads(result.stdout)
    assert (event["type"], event["domain"]) == ("lifecycle", "blinker")
    assert event["event"] in ("suspended", "resumed")
    assert sim_hosts.cli("destroy", "blinker").exit_code == 0
