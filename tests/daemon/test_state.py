"""The state directory: layout, identity, definitions, stale files, the owner lock."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from cookies import dump_public_key
from migrator.daemon import StateDir, StateDirError
from migrator.domain import Domain, format_domain, inactive
from migrator.domain.devices import Devices, Graphics, GraphicsType
from tests.runtime.cluster import make_domain

from .conftest import temp_files


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def with_vnc(name: str) -> Domain:
    return replace(
        make_domain(name),
        devices=Devices(
            graphics=(Graphics(type=GraphicsType.VNC, port=5901, autoport=True, passwd="s3cret"),)
        ),
    )


# -- Layout and identity ---------------------------------------------------------------


def test_open_creates_a_private_layout(tmp_path: Path) -> None:
    root = tmp_path / "nested" / "state"
    with StateDir(root):
        pass
    assert sorted(p.name for p in root.iterdir()) == [
        "cookie-key.pem",
        "definitions",
        "host.toml",
        "live",
        "state-dir.lock",
        "status",
    ]
    for directory in ("", "definitions", "live", "status"):
        assert mode_of(root / directory) == 0o700, directory
    for file in ("cookie-key.pem", "host.toml", "state-dir.lock"):
        assert mode_of(root / file) == 0o600, file


def test_host_uuid_and_key_are_generated_once_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with StateDir(root) as first:
        host_uuid = first.host_uuid
        public = dump_public_key(first.signing_key.public_key())
    assert str(uuid.UUID(host_uuid)) == host_uuid
    with StateDir(root) as second:
        assert second.host_uuid == host_uuid
        assert dump_public_key(second.signing_key.public_key()) == public
    with StateDir(tmp_path / "other") as other:
        assert other.host_uuid != host_uuid
        assert dump_public_key(other.signing_key.public_key()) != public


def test_an_explicit_host_uuid_overrides_and_is_stored(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with StateDir(root) as generated:
        old = generated.host_uuid
    explicit = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    with StateDir(root, host_uuid=explicit) as overridden:
        assert overridden.host_uuid == explicit.lower() != old
    with StateDir(root) as reopened:
        assert reopened.host_uuid == explicit.lower()


def test_an_invalid_explicit_host_uuid_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateDirError, match="invalid host UUID 'not-a-uuid'") as info:
        StateDir(tmp_path / "state", host_uuid="not-a-uuid")
    assert info.value.code == "bad-uuid"
    with StateDir(tmp_path / "state"):
        pass  # the failed open released the lock


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"host_uuid = ", "has no valid host_uuid"),
        (b'name = "x"\n', "has no valid host_uuid"),
        (b'host_uuid = "nope"\n', "invalid host UUID 'nope'"),
        (b"\xff\xfe", "cannot read"),
    ],
)
def test_a_corrupt_host_file_is_refused_naming_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    root = tmp_path / "state"
    with StateDir(root):
        pass
    (root / "host.toml").write_bytes(content)
    with pytest.raises(StateDirError, match=message) as info:
        StateDir(root)
    assert "host.toml" in str(info.value)


def test_a_corrupt_key_is_refused_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with StateDir(root):
        pass
    (root / "cookie-key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    with pytest.raises(StateDirError, match=r"cookie-key\.pem is not a usable signing key"):
        StateDir(root)


def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.write_bytes(b"")
    with pytest.raises(StateDirError, match="exists and is not a directory"):
        StateDir(root)


def test_stale_temp_files_are_cleaned_at_open(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with StateDir(root) as state:
        state.save_definition(make_domain("vm"))
    stale = [
        root / ".host.toml.1.tmp",
        root / "definitions" / ".vm.xml.2.tmp",
        root / "live" / ".vm.xml.3.tmp",
        root / "status" / ".vm.msgpack.4.tmp",
    ]
    for path in stale:
        path.write_bytes(b"half written <dom")
    with StateDir(root) as reopened:
        assert temp_files(root) == []
        assert list(reopened.definitions()) == ["vm"]


# -- Definitions -------------------------------------------------------------------------


def test_definitions_round_trip_in_inactive_form_with_secrets(state: StateDir) -> None:
    vm = with_vnc("vm")
    state.save_definition(vm)
    state.save_definition(make_domain("db"))
    loaded = state.definitions()
    assert loaded == {"vm": inactive(vm), "db": make_domain("db")}
    assert loaded["vm"].devices.graphics[0].passwd == "s3cret"
    assert mode_of(state.path / "definitions" / "vm.xml") == 0o600
    state.remove_definition("vm")
    state.remove_definition("never-defined")
    assert list(state.definitions()) == ["db"]


def test_live_definitions_keep_live_data(state: StateDir) -> None:
    vm = with_vnc("vm")
    state.save_live(vm)
    assert state.live_definitions() == {"vm": vm}
    assert state.definitions() == {}
    state.remove_live("vm")
    assert state.live_definitions() == {}


def test_definitions_survive_a_reopen(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with StateDir(root) as state:
        state.save_definition(make_domain("vm"))
        state.save_live(make_domain("vm"))
    with StateDir(root) as state:
        assert state.definitions() == {"vm": make_domain("vm")}
        assert state.live_definitions() == {"vm": make_domain("vm")}


def test_sync_definitions_writes_changes_and_removes_the_rest(state: StateDir) -> None:
    state.save_definition(make_domain("old"))
    state.save_definition(make_domain("kept"))
    kept_file = state.path / "definitions" / "kept.xml"
    kept_inode = kept_file.stat().st_ino
    bigger = make_domain("kept", memory_mib=128)
    state.sync_definitions({"kept": make_domain("kept"), "new": make_domain("new")})
    assert kept_file.stat().st_ino == kept_inode  # unchanged, so not rewritten
    assert state.definitions() == {"kept": make_domain("kept"), "new": make_domain("new")}
    state.sync_definitions({"kept": bigger})
    assert state.definitions() == {"kept": bigger}


def test_saving_a_definition_with_a_bad_name_is_refused(state: StateDir) -> None:
    with pytest.raises(StateDirError, match=re.escape("invalid domain name '../escape'")):
        state.save_definition(make_domain("../escape"))
    with pytest.raises(StateDirError, match="invalid domain name 'a/b'"):
        state.remove_live("a/b")
    assert not (state.path / "escape.xml").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<domain type='kvm'><name>vm</na", "is not a valid definition"),
        (b"", "is not a valid definition"),
        (format_domain(make_domain("other")).encode(), "holds domain 'other', not 'vm'"),
    ],
)
@pytest.mark.parametrize("kind", ["definitions", "live"])
def test_an_unreadable_definition_is_refused_naming_the_file(
    state: StateDir, kind: str, content: bytes, message: str
) -> None:
    state.save_definition(make_domain("good"))
    state.save_live(make_domain("good"))
    bad = state.path / kind / "vm.xml"
    bad.write_bytes(content)
    load = state.definitions if kind == "definitions" else state.live_definitions
    with pytest.raises(StateDirError, match=message) as info:
        load()
    assert str(bad) in str(info.value)
    assert info.value.path == bad


def test_a_definition_file_that_cannot_be_read_is_refused(state: StateDir) -> None:
    (state.path / "definitions" / "vm.xml").mkdir()
    with pytest.raises(StateDirError, match=r"cannot read .*vm\.xml"):
        state.definitions()


# -- The owner lock ----------------------------------------------------------------------


def test_a_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with (
        StateDir(root),
        pytest.raises(
            StateDirError, match=re.escape(f"in use by another daemon (pid {os.getpid()})")
        ),
    ):
        StateDir(root)
    with StateDir(root):
        pass  # closing released it


HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from migrator.daemon import StateDir

    with StateDir(Path(sys.argv[1])):
        print("open", flush=True)
        sys.stdin.read()
    """
)

OPENER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from migrator.daemon import StateDir, StateDirError

    try:
        StateDir(Path(sys.argv[1]))
    except StateDirError as exc:
        sys.exit(str(exc))
    """
)


def test_a_daemon_in_another_process_holds_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        with pytest.raises(
            StateDirError, match=re.escape(f"in use by another daemon (pid {holder.pid})")
        ):
            StateDir(root)
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    with StateDir(root):
        refused = subprocess.run(
            [sys.executable, "-c", OPENER, str(root)], capture_output=True, text=True, check=False
        )
    assert refused.returncode == 1
    assert f"in use by another daemon (pid {os.getpid()})" in refused.stderr
