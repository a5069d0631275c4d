"""What the query commands print for people and for machines (pure: no daemon)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cookies import JobOperation, JobStatistics
from migrator.cli import main
from migrator.cli.domain_cmd import domain_table, dominfo_rows
from migrator.cli.event_cmd import event_json_line, event_line
from migrator.cli.job_cmd import job_rows
from migrator.cli.migrate_cmd import arguments_of, completion_line
from migrator.cli.migrate_options import FLAG_SWITCHES, POLICY_SWITCHES, TYPED_OPTIONS
from migrator.client.types import (
    DomainInfo,
    DomainState,
    DomainSummary,
    JobEvent,
    JobInfo,
    JobType,
    LifecycleEvent,
    LifecycleKind,
)

MiB = 1 << 20
UUID = "8f5f6b4e-0a0e-4bd4-9bd6-4b7f5d1c9a11"


def test_list_layout() -> None:
    lines = domain_table(
        [
            DomainSummary("vm", UUID, DomainState.RUNNING, persistent=True),
            DomainSummary("database", UUID, DomainState.SHUTOFF, persistent=False),
            DomainSummary("web", UUID, DomainState.SHUTOFF, persistent=True, managed_save=True),
        ]
    )
    assert lines == [
        " Name       State      Persistent",
        "----------------------------------",
        " vm         running    yes",
        " database   shut off   no",
        " web        saved      yes",
    ]


def test_dominfo_rows() -> None:
    info = DomainInfo(
        "vm", UUID, DomainState.PAUSED, True, 131072, 2, job=JobOperation.MIGRATION_OUT
    )
    assert dominfo_rows(info) == [
        ("Name", "vm"),
        ("UUID", UUID),
        ("State", "paused"),
        ("CPU(s)", "2"),
        ("Max memory", "131072 KiB"),
        ("Persistent", "yes"),
        ("Managed save", "no"),
        ("Job", "migration-out"),
    ]


def test_domjobinfo_of_a_running_migration() -> None:
    statistics = JobStatistics(
        time_elapsed=1500,
        data_processed=64 * MiB,
        data_remaining=MiB,
        memory_bps=32 * MiB,
        memory_dirty_rate=250,
        memory_iteration=2,
        downtime=40,
    )
    job = JobInfo(JobType.UNBOUNDED, "migration-out", "perform3", statistics)
    assert job_rows(job) == [
        ("Job type", "Unbounded"),
        ("Operation", "migration-out"),
        ("Phase", "perform3"),
        ("Time elapsed", "1500 ms"),
        ("Data processed", "64.000 MiB"),
        ("Data remaining", "1.000 MiB"),
        ("Memory bandwidth", "32.000 MiB/s"),
        ("Dirty rate", "250 pages/s"),
        ("Iteration", "2"),
        ("Expected downtime", "40 ms"),
    ]


def test_domjobinfo_of_a_finished_or_no_job() -> None:
    failed = JobInfo(
        JobType.FAILED, "migration-out", "perform3", JobStatistics(downtime=12), "boom"
    )
    assert job_rows(failed)[-2:] == [("Total downtime", "12 ms"), ("Error message", "boom")]
    assert job_rows(JobInfo(JobType.NONE)) == [("Job type", "None")]


def test_event_lines() -> None:
    started = LifecycleEvent("vm", LifecycleKind.MIGRATED_IN, "migrated")
    assert event_line(started) == "event 'lifecycle' for domain 'vm': Migrated in Migrated"
    progress = JobEvent(
        "vm", "17", "perform3", JobStatistics(data_processed=2 * MiB, data_remaining=MiB)
    )
    assert event_line(progress) == (
        "event 'job' for domain 'vm': job 17 phase perform3, sent 2.000 MiB, left 1.000 MiB"
    )
    failed = JobEvent("vm", "17", "confirm3", done=True, error="peer lost")
    assert event_line(failed).endswith("job 17 phase confirm3, done, error: peer lost")


def test_event_json_lines_are_one_object_each() -> None:
    line = event_json_line(LifecycleEvent("vm", LifecycleKind.STARTED, "booted"))
    assert "\n" not in line
    assert json.loads(line) == {
        "type": "lifecycle",
        "domain": "vm",
        "event": "started",
        "detail": "booted",
    }
    assert json.loads(event_json_line(JobEvent("vm", "1", "begin3")))["type"] == "job"


def test_completion_line() -> None:
    job = JobInfo(
        JobType.COMPLETED,
        "migration-out",
        "confirmed",
        JobStatistics(time_elapsed=2100, downtime=35, data_processed=40 * MiB),
    )
    assert completion_line("vm", job) == (
        "Migration of 'vm' completed, in 2.1 s, downtime 35 ms, 40.000 MiB sent"
    )


def test_click_values_become_migrate_arguments() -> None:
    choices = {"live": True, "p2p": True, "postcopy_after_precopy": True, "bandwidth": "32"}
    choices.update({"tls": False, "comp_methods": None})
    arguments = arguments_of(choices, params=("a=b",), timeout_s=7)
    assert arguments.switches == {"live", "p2p", "postcopy-after-precopy"}
    assert arguments.options == {"bandwidth": "32"}
    assert (arguments.params, arguments.timeout_s) == (("a=b",), 7)


def test_migrate_offers_every_virsh_option() -> None:
    result = CliRunner().invoke(main, ["migrate", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    names = [switch.name for switch in FLAG_SWITCHES] + [option.name for option in TYPED_OPTIONS]
    for name in [*names, *POLICY_SWITCHES, "timeout", "param", "verbose", "json"]:
        assert f"--{name}" in result.output, name
