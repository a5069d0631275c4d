"""The demo's parts that need no daemon: the guest's definitions, the certificates, and the
summary table."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from rich.console import Console

from cookies import JobStatistics
from migrator.client.types import JobInfo, JobType
from migrator.demo import GuestShape, MigrationSummary, summary_table
from migrator.demo.certificates import CLIENT_NAME, create_certificates
from migrator.demo.flow import warm_up_heartbeats
from migrator.demo.guest import (
    FIRST_SERIAL_PORT,
    definition_xml,
    free_serial_port,
    guest_definition,
    with_serial_port,
)
from migrator.domain import check_abi_stability, parse_domain
from transport import certdir
from transport.pki import summarize

MiB = 1 << 20


def test_the_destination_definition_differs_only_in_the_serial_port(tmp_path: Path) -> None:
    source = guest_definition("vm", kernel=tmp_path / "k", memory_mib=128, serial_port=4000)
    destination = with_serial_port(source, 4001)
    check_abi_stability(source, destination)
    assert parse_domain(definition_xml(destination)) == destination
    assert "service='4001'" in definition_xml(destination).replace('"', "'")
    assert destination.devices.serials[0].source.service == 4001


def test_serial_ports_come_from_below_the_ephemeral_range() -> None:
    first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_serial_port() for _ in range(20)}
    assert all(FIRST_SERIAL_PORT <= port < first_ephemeral for port in ports)
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_shape_that_does_not_fit_its_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        GuestShape(memory_mib=16, working_set_mib=64)


def test_certificates_for_each_host_and_the_client(tmp_path: Path) -> None:
    made = create_certificates(tmp_path / "pki", hosts=("host-a", "host-b"))
    assert set(made.hosts) == {"host-a", "host-b"}
    for directory in (*made.hosts.values(), made.client):
        assert {path.name for path in directory.iterdir()} == set(certdir.HOST_FILES)
    host = summarize(certdir.load_certificate(made.hosts["host-a"] / certdir.SERVER_CERT))
    assert tuple(host.ip_addresses) == ("127.0.0.1",)
    client = summarize(certdir.load_certificate(made.client / certdir.CLIENT_CERT))
    assert CLIENT_NAME in client.subject


def test_summary_of_a_completed_job() -> None:
    job = JobInfo(
        JobType.COMPLETED,
        statistics=JobStatistics(time_elapsed=1800, downtime=42, memory_processed=48 * MiB),
    )
    summary = MigrationSummary.of(
        job, source="host-a", destination="host-b", wall_ms=2000, heartbeat_gap_ms=55.5
    )
    assert (summary.total_ms, summary.downtime_ms, summary.bytes_moved) == (1800, 42, 48 * MiB)
    untimed = MigrationSummary.of(
        JobInfo(JobType.COMPLETED), source="a", destination="b", wall_ms=2000, heartbeat_gap_ms=None
    )
    assert (untimed.total_ms, untimed.downtime_ms, untimed.bytes_moved) == (2000, None, None)


def test_summary_table_has_a_row_per_migration() -> None:
    summaries = [
        MigrationSummary("host-a", "host-b", 1800, 42, 55.5, 48 * MiB),
        MigrationSummary("host-b", "host-a", 1200, None, None, None),
    ]
    console = Console(record=True, width=120)
    console.print(summary_table(summaries))
    text = console.export_text()
    for header in ("total time", "QEMU downtime", "heartbeat gap", "bytes moved"):
        assert header in text
    assert "host-a -> host-b" in text
    assert "1.8 s" in text
    assert "42 ms" in text
    assert "56 ms" in text
    assert "48.000 MiB" in text
    assert "host-b -> host-a" in text
    assert "virtual time" not in text
    console.print(summary_table(summaries, simulated=True))
    assert "virtual time" in console.export_text()


def test_the_guest_warms_up_for_as_long_as_one_rewrite_of_its_working_set() -> None:
    assert warm_up_heartbeats(GuestShape(working_set_mib=32, dirty_rate_mib_s=16)) == 2000
    assert warm_up_heartbeats(GuestShape(working_set_mib=1, dirty_rate_mib_s=64)) == 200
    assert warm_up_heartbeats(GuestShape(working_set_mib=32, dirty_rate_mib_s=0)) == 200
