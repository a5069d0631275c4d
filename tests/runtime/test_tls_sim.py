"""Migrations with TLS between two in-process hosts on the simulator: the credentials each
side creates, the parameters that name them, and their removal on every way a job ends."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from migrator.drivers.base import TLS_CREDENTIALS_ID
from migrator.drivers.sim import Fault, FaultKind, FaultPoint, Workload
from migrator.drivers.sim.guest import SimGuest
from migrator.errors import MigratorError
from migrator.phases import SourcePhase
from migrator.runtime.restart import reattach
from migrator.runtime.source import MigrationFailed
from migrator.status import MigrationStatus as MS
from params import MigrationFlag as F

from .cluster import LIVE_P2P, Cluster, MiB, make_domain, sides_of

TLS = LIVE_P2P | F.TLS
BOTH = ("host-a", "host-b")
#: A guest whose migration never converges: it stays in Perform until something happens.
BUSY = Workload(working_set_bytes=512 * MiB, dirty_rate_bytes_s=4096 * MiB)


async def started(
    *, certified: tuple[str, ...] = BOTH, workload: Workload | None = None
) -> Cluster:
    cluster = Cluster(certified=certified)
    await cluster.start(make_domain(), workload=workload)
    return cluster


def qmp(cluster: Cluster, host: str) -> list[str]:
    """The commands ``host``'s daemon sent, as the trace shows them."""
    prefix = f"qmp {host} "
    return [
        line.removeprefix(prefix) for line in cluster.sim.trace.lines if line.startswith(prefix)
    ]


def guest(cluster: Cluster, host: str) -> SimGuest:
    found = cluster.world.guest(host, "vm")
    assert found is not None, f"vm does not run on {host}"
    return found


def assert_tls_gone(found: SimGuest) -> None:
    assert found.tls_credentials == {}
    assert (found.parameters["tls-creds"], found.parameters["tls-hostname"]) == ("", "")


async def test_each_side_creates_its_credentials_and_deletes_them_at_the_end() -> None:
    cluster = await started()
    await cluster.migrate("vm", flags=TLS)
    assert await cluster.running_on("vm") == ["host-b"]
    source, destination = qmp(cluster, "host-a"), qmp(cluster, "host-b")
    named = f"tls-creds={TLS_CREDENTIALS_ID}"
    assert source.index("object-add tls-creds-x509 client") < source.index(
        f"migrate-set-parameters {named} tls-hostname=host-b"
    )
    assert source[-1] == "kill"
    assert destination.index("object-add tls-creds-x509 server") < destination.index(
        f"migrate-set-parameters {named} tls-hostname="
    )
    assert destination[-1] == "object-del"
    assert_tls_gone(guest(cluster, "host-b"))


async def test_tls_destination_names_the_host_the_certificate_is_checked_against() -> None:
    cluster = await started()
    await cluster.migrate("vm", flags=TLS, typed={"tls.destination": "b.example"})
    assert f"migrate-set-parameters tls-creds={TLS_CREDENTIALS_ID} tls-hostname=b.example" in (
        qmp(cluster, "host-a")
    )


async def test_without_the_flag_tls_is_turned_off_explicitly() -> None:
    cluster = await started(certified=())
    await cluster.migrate("vm")
    for host in BOTH:
        commands = qmp(cluster, host)
        assert "migrate-set-parameters tls-creds= tls-hostname=" in commands
        assert not [command for command in commands if command.startswith("object-")]


async def test_a_failed_migration_leaves_no_credentials_on_the_source() -> None:
    cluster = await started(workload=Workload(64 * MiB, 20 * MiB))
    cluster.world.inject(Fault(FaultKind.CRASH, "host-b", FaultPoint.on_status(MS.ACTIVE)))
    with pytest.raises(MigrationFailed):
        await cluster.migrate("vm", flags=TLS)
    assert await cluster.alive_on("vm") == ["host-a"]
    assert await cluster.running_on("vm") == ["host-a"]
    commands = qmp(cluster, "host-a")
    assert commands.index("object-del") > commands.index("migrate-set-capabilities none")
    assert_tls_gone(guest(cluster, "host-a"))


@pytest.mark.parametrize("uncertified", BOTH)
async def test_a_host_without_certificates_fails_the_migration_cleanly(uncertified: str) -> None:
    """The runtime's own guard (a daemon refuses such a migration before it starts)."""
    certified = tuple(host for host in BOTH if host != uncertified)
    cluster = await started(certified=certified)
    with pytest.raises(MigratorError, match="no certificate directory"):
        await cluster.migrate("vm", flags=TLS)
    assert await cluster.alive_on("vm") == ["host-a"]
    assert await cluster.running_on("vm") == ["host-a"]
    assert_tls_gone(guest(cluster, "host-a"))
    assert cluster.a.status.load("vm") is None and cluster.b.status.load("vm") is None


async def test_a_restarted_source_deletes_the_credentials_of_the_job_it_cancels() -> None:
    cluster = await started(workload=BUSY)
    migration = asyncio.create_task(cluster.migrate("vm", flags=TLS))
    source_side = cluster.source(cluster.a)
    while not (
        "vm" in source_side._jobs
        and source_side.job("vm").state is SourcePhase.PERFORM3
        and source_side.job("vm").last_status is MS.ACTIVE
    ):
        await cluster.world.sleep(5)
    assert guest(cluster, "host-a").tls_credentials
    # The source daemon dies with its migration in Perform and starts again.
    migration.cancel()
    with contextlib.suppress(BaseException):
        await migration
    await source_side.detach()
    cluster.a.guests.clear()
    sides = sides_of(cluster.a)
    cluster.sides["host-a"] = sides
    (resolved,) = await reattach(cluster.a, source=sides[0], destination=sides[1])
    assert [action.name for action in resolved.recovery.actions] == [
        "CancelMigration",
        "RestoreParams",
        "DeleteTLSCredentials",
    ]
    assert await cluster.running_on("vm") == ["host-a"]
    assert_tls_gone(guest(cluster, "host-a"))
