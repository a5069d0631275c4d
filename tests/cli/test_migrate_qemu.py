"""The client's own migration policy on real QEMU, through the command line: ``--timeout``
suspends a migration that does not converge, ``--postcopy-after-precopy`` switches to
post-copy after the first pass. Two ``migrator daemon`` subprocesses, the test guest.

Nothing here is timed: the guards only stop a broken test from hanging.
"""

from __future__ import annotations

import json

import pytest

from tests.cli.qemu_hosts import SLOW, QemuHosts, qemu_hosts

__all__ = ["qemu_hosts"]

pytestmark = pytest.mark.qemu


def test_timeout_suspends_a_migration_that_does_not_converge(qemu_hosts: QemuHosts) -> None:
    qemu_hosts.start_restless_guest("stuck")
    result = qemu_hosts.migrate(
        "stuck",
        "--live",
        "--p2p",
        *SLOW,
        "--xml",
        qemu_hosts.destination_xml("stuck"),
        "--timeout",
        "2",
        "--json",
        give_up_on="warning: cannot suspend the guest",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job_type"] == "completed"
    # As with libvirt: paused on the source to converge, the guest runs on the destination
    # (only --suspend or a guest paused before Begin arrives paused).
    assert qemu_hosts.state("host-b", "stuck") == "running"
    assert qemu_hosts.cli("destroy", "stuck", host="host-b").exit_code == 0


def test_postcopy_after_the_first_pass(qemu_hosts: QemuHosts) -> None:
    qemu_hosts.start_restless_guest("eager")
    result = qemu_hosts.migrate(
        "eager",
        "--live",
        "--p2p",
        "--postcopy",
        "--postcopy-after-precopy",
        *SLOW,
        "--xml",
        qemu_hosts.destination_xml("eager"),
        "--verbose",
    )
    assert result.returncode == 0, result.stderr
    assert "Migration of 'eager' completed" in result.stdout
    assert qemu_hosts.state("host-b", "eager") == "running"
    assert qemu_hosts.state("host-a", "eager") == "shut off"
    assert qemu_hosts.cli("destroy", "eager", host="host-b").exit_code == 0
