"""atomic_write: new content or old content, never a mix, never a stray temporary file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from migrator.daemon import StateDirError, atomic_write, remove_file, remove_stale_temp_files

from .conftest import temp_files


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_creates_the_file_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert mode_of(target) == 0o600
    assert temp_files(tmp_path) == []


def test_write_honours_an_explicit_mode(tmp_path: Path) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"x", mode=0o640)
    assert mode_of(target) == 0o640


def test_write_replaces_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"old content that is longer")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert temp_files(tmp_path) == []


def _fail(*args: object, **kwargs: object) -> None:
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("step", ["replace", "fsync"])
def test_a_failing_write_keeps_the_old_file_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"old")
    monkeypatch.setattr(os, step, _fail)
    with pytest.raises(StateDirError, match=r"cannot write .*file: Input/output error") as info:
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert info.value.path == target
    assert target.read_bytes() == b"old"
    assert sorted(tmp_path.iterdir()) == [target]


def test_an_interrupted_write_cleans_up_and_propagates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"old")

    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(tmp_path.iterdir()) == [target]


def test_write_into_a_missing_directory_is_a_state_dir_error(tmp_path: Path) -> None:
    with pytest.raises(StateDirError, match="missing"):
        atomic_write(tmp_path / "missing" / "file", b"x")


def test_remove_file_removes_and_tolerates_absence(tmp_path: Path) -> None:
    target = tmp_path / "file"
    atomic_write(target, b"x")
    remove_file(target)
    assert not target.exists()
    remove_file(target)


def test_stale_temp_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    keep = [tmp_path / "vm.xml", tmp_path / "notes.tmp"]
    stale = [tmp_path / ".vm.xml.abc123.tmp", tmp_path / ".host.toml.x.tmp"]
    for path in keep + stale:
        path.write_bytes(b"x")
    assert remove_stale_temp_files(tmp_path) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(keep)
