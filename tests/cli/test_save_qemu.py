"""Save, restore and managed save of a real QEMU guest through the command line and a
``migrator daemon`` subprocess: the image libvirt's layout describes, the guest back where
it was, and a partial image refused without a half-started guest."""

from __future__ import annotations

import pytest

from tests.cli.qemu_hosts import QemuHosts, qemu_hosts

__all__ = ["qemu_hosts"]

pytestmark = pytest.mark.qemu

COMPLETE = b"LibvirtQemudSave"
PARTIAL = b"LibvirtQemudPart"


def ok(qemu_hosts: QemuHosts, *arguments: str) -> str:
    result = qemu_hosts.cli(*arguments)
    assert result.exit_code == 0, result.output
    return result.output


def test_save_then_restore_brings_the_guest_back_running(qemu_hosts: QemuHosts) -> None:
    qemu_hosts.start_restless_guest("kept")
    image = qemu_hosts.directory / "kept.save"
    assert ok(qemu_hosts, "save", "kept", str(image)) == f"Domain 'kept' saved to {image}\n"
    assert image.read_bytes()[:16] == COMPLETE
    assert qemu_hosts.state("host-a", "kept") == "shut off"
    assert ok(qemu_hosts, "restore", str(image)) == f"Domain restored from {image}\n"
    assert qemu_hosts.state("host-a", "kept") == "running"
    ok(qemu_hosts, "destroy", "kept")


def test_restore_paused_as_asked(qemu_hosts: QemuHosts) -> None:
    qemu_hosts.start_restless_guest("held")
    image = qemu_hosts.directory / "held.save"
    ok(qemu_hosts, "save", "held", str(image))
    ok(qemu_hosts, "restore", str(image), "--paused")
    assert qemu_hosts.state("host-a", "held") == "paused"
    ok(qemu_hosts, "destroy", "held")


def test_a_partial_image_is_refused_and_starts_nothing(qemu_hosts: QemuHosts) -> None:
    qemu_hosts.start_restless_guest("torn")
    image = qemu_hosts.directory / "torn.save"
    ok(qemu_hosts, "save", "torn", str(image))
    content = bytearray(image.read_bytes())
    content[:16] = PARTIAL
    image.write_bytes(bytes(content))
    result = qemu_hosts.cli("restore", str(image))
    assert result.exit_code == 1
    assert "save image is incomplete" in result.output
    assert qemu_hosts.state("host-a", "torn") == "shut off"


def test_managedsave_then_start_restores_and_removes_the_image(qemu_hosts: QemuHosts) -> None:
    qemu_hosts.start_restless_guest("napping")
    ok(qemu_hosts, "managedsave", "napping")
    assert "Managed save: yes" in ok(qemu_hosts, "dominfo", "napping")
    ok(qemu_hosts, "start", "napping")
    assert qemu_hosts.state("host-a", "napping") == "running"
    assert "Managed save: no" in ok(qemu_hosts, "dominfo", "napping")
    ok(qemu_hosts, "destroy", "napping")
