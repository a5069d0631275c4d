"""``save``, ``restore``, the ``managedsave*`` and ``save-image-*`` commands through the command
line against a ``sim`` daemon: what they print, what they leave on disk, and their errors."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from migrator.saveimage import Magic
from tests.cli.conftest import SimHosts

TITLE = "<title>edited</title>"


def ok(sim_hosts: SimHosts, *arguments: str, env: dict[str, str] | None = None) -> str:
    result = sim_hosts.cli(*arguments, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def refused(sim_hosts: SimHosts, *arguments: str) -> str:
    """The one error line of a refused command."""
    result = sim_hosts.cli(*arguments)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: "), result.output
    return result.output


def state(sim_hosts: SimHosts, name: str) -> dict[str, object]:
    listing = json.loads(ok(sim_hosts, "list", "--all", "--json"))
    return {item["name"]: item for item in listing}[name]


def editor(script: str) -> dict[str, str]:
    """An $EDITOR that runs ``script`` (Python, the file's path in ``sys.argv[1]``)."""
    return {"EDITOR": f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"}


ADD_TITLE = (
    "import sys; p = sys.argv[1]; t = open(p).read(); "
    f"open(p, 'w').write(t.replace('</name>', '</name>{TITLE}', 1))"
)


@pytest.fixture
def started(sim_hosts: SimHosts, request: pytest.FixtureRequest) -> str:
    name = request.node.name.removeprefix("test_")[:20].replace("_", "-")
    sim_hosts.define(name)
    ok(sim_hosts, "start", name)
    return name


def test_save_then_restore(sim_hosts: SimHosts, started: str) -> None:
    image = sim_hosts.directory / f"{started}.img"
    assert ok(sim_hosts, "save", started, str(image)) == f"Domain '{started}' saved to {image}\n"
    assert image.read_bytes()[:16] == Magic.COMPLETE.value
    assert state(sim_hosts, started)["state"] == "shut off"
    job = json.loads(ok(sim_hosts, "domjobinfo", started, "--completed", "--json"))
    assert (job["job_type"], job["operation"]) == ("completed", "save")
    assert job["statistics"]["memory_total"] > 0

    assert f"<name>{started}</name>" in ok(sim_hosts, "save-image-dumpxml", str(image))
    assert ok(sim_hosts, "restore", str(image), "--paused") == f"Domain restored from {image}\n"
    assert state(sim_hosts, started)["state"] == "paused"
    assert image.exists()  # restore leaves the image
    refused_again = refused(sim_hosts, "restore", str(image))
    assert f"domain '{started}' is already running" in refused_again
    ok(sim_hosts, "destroy", started)


def test_save_refusals(sim_hosts: SimHosts, started: str, tmp_path: Path) -> None:
    image = tmp_path / "vm.img"
    assert refused(sim_hosts, "save", "nobody", str(image)) == (
        "error: failed to get domain 'nobody'\n"
    )
    assert "mutually exclusive" in refused(
        sim_hosts, "save", started, str(image), "--running", "--paused"
    )
    other = tmp_path / "other.xml"
    other.write_text(ok(sim_hosts, "dumpxml", started).replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>"))
    assert "does not describe the saved guest" in refused(
        sim_hosts, "save", started, str(image), "--xml", str(other)
    )
    assert not image.exists()
    ok(sim_hosts, "destroy", started)
    assert refused(sim_hosts, "save", started, str(image)) == (
        f"error: domain '{started}' is not running\n"
    )


def test_restore_refuses_what_is_not_a_complete_image(sim_hosts: SimHosts, started: str) -> None:
    image = sim_hosts.directory / f"{started}.img"
    ok(sim_hosts, "save", started, str(image))
    with image.open("r+b") as file:
        file.write(Magic.PARTIAL.value)
    assert "save image is incomplete" in refused(sim_hosts, "restore", str(image))
    assert "save image is incomplete" in refused(sim_hosts, "save-image-dumpxml", str(image))
    missing = sim_hosts.directory / "missing.img"
    assert "cannot" in refused(sim_hosts, "restore", str(missing))
    assert state(sim_hosts, started)["state"] == "shut off"


def test_save_image_define_and_edit(sim_hosts: SimHosts, started: str) -> None:
    image = sim_hosts.directory / f"{started}.img"
    ok(sim_hosts, "save", started, str(image), "--running")
    xml = ok(sim_hosts, "save-image-dumpxml", str(image))
    edited = sim_hosts.directory / f"{started}.edited.xml"
    edited.write_text(xml.replace("</name>", f"</name>{TITLE}", 1))
    assert ok(sim_hosts, "save-image-define", str(image), str(edited), "--paused") == (
        f"State file {image} updated.\n"
    )
    assert TITLE in ok(sim_hosts, "save-image-dumpxml", str(image))

    unchanged = ok(sim_hosts, "save-image-edit", str(image), env=editor("pass"))
    assert unchanged == f"Saved image {image} XML configuration not changed.\n"
    back = ADD_TITLE.replace(f"'</name>', '</name>{TITLE}'", f"'{TITLE}', ''")
    assert ok(sim_hosts, "save-image-edit", str(image), env=editor(back)) == (
        f"State file {image} edited.\n"
    )
    assert TITLE not in ok(sim_hosts, "save-image-dumpxml", str(image))
    # The image was changed to restore paused.
    ok(sim_hosts, "restore", str(image))
    assert state(sim_hosts, started)["state"] == "paused"
    ok(sim_hosts, "destroy", started)


def test_managedsave_then_start(sim_hosts: SimHosts, started: str) -> None:
    assert ok(sim_hosts, "managedsave", started) == f"Domain '{started}' state saved by libvirt\n"
    listed = state(sim_hosts, started)
    assert (listed["state"], listed["managed_save"]) == ("shut off", True)
    line = next(line for line in ok(sim_hosts, "list", "--all").splitlines() if started in line)
    assert line.split()[1] == "saved"
    assert "Managed save: yes" in ok(sim_hosts, "dominfo", started)
    assert "Refusing to undefine while domain managed save image exists" in refused(
        sim_hosts, "undefine", started
    )

    assert f"<name>{started}</name>" in ok(sim_hosts, "managedsave-dumpxml", started)
    assert ok(sim_hosts, "managedsave-edit", started, env=editor(ADD_TITLE)) == (
        f"Managed save image of domain '{started}' XML configuration edited.\n"
    )
    assert TITLE in ok(sim_hosts, "managedsave-dumpxml", started)
    assert ok(sim_hosts, "managedsave-edit", started, env=editor("pass")) == (
        f"Managed save image of domain '{started}' XML configuration not changed.\n"
    )

    assert ok(sim_hosts, "start", started) == f"Domain '{started}' started\n"
    assert state(sim_hosts, started) == {**listed, "state": "running", "managed_save": False}
    assert TITLE in ok(sim_hosts, "dumpxml", started)  # it runs from the edited image
    assert "Managed save: no" in ok(sim_hosts, "dominfo", started)
    ok(sim_hosts, "destroy", started)


def test_managedsave_define_and_remove(sim_hosts: SimHosts, started: str) -> None:
    assert "has no managed save image" in refused(sim_hosts, "managedsave-dumpxml", started)
    assert ok(sim_hosts, "managedsave-remove", started) == (
        f"Domain '{started}' has no manage save image; removal skipped\n"
    )
    ok(sim_hosts, "managedsave", started, "--paused")
    xml = ok(sim_hosts, "managedsave-dumpxml", started)
    edited = sim_hosts.directory / f"{started}.managed.xml"
    edited.write_text(xml.replace("</name>", f"</name>{TITLE}", 1))
    assert ok(sim_hosts, "managedsave-define", started, str(edited), "--running") == (
        f"Managed save state file of domain '{started}' updated.\n"
    )
    assert TITLE in ok(sim_hosts, "managedsave-dumpxml", started)
    assert ok(sim_hosts, "managedsave-remove", started) == (
        f"Removed managedsave image for domain '{started}'\n"
    )
    assert state(sim_hosts, started)["managed_save"] is False
    ok(sim_hosts, "start", started)
    assert TITLE not in ok(sim_hosts, "dumpxml", started)  # booted fresh
    assert "failed to get domain 'nobody'" in refused(sim_hosts, "managedsave", "nobody")
    ok(sim_hosts, "destroy", started)


def test_start_discards_a_broken_managed_save_image(sim_hosts: SimHosts, started: str) -> None:
    ok(sim_hosts, "managedsave", started)
    image = sim_hosts.directory / "host-a" / "save" / f"{started}.save"
    with image.open("r+b") as file:
        file.write(Magic.PARTIAL.value)
    ok(sim_hosts, "start", started)
    assert not image.exists()
    assert state(sim_hosts, started)["state"] == "running"
    ok(sim_hosts, "destroy", started)
