"""Domain names that can and cannot name a state file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.daemon import MAX_NAME_BYTES, StateDirError, check_name
from migrator.daemon.names import named_path


@pytest.mark.parametrize("name", ["vm", "web-01", "db_2.prod", "a" * MAX_NAME_BYTES, "vmé"])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("../etc", "starts with a dot"),
        (".hidden", "starts with a dot"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("a\0b", "NUL"),
        ("a" * (MAX_NAME_BYTES + 1), "longer than"),
        ("é" * (MAX_NAME_BYTES // 2 + 1), "longer than"),
        ("\ud800", "not valid Unicode"),
    ],
)
def test_bad_names_are_refused_by_name(name: str, problem: str) -> None:
    with pytest.raises(StateDirError, match=problem) as info:
        check_name(name)
    assert repr(name) in str(info.value)
    assert info.value.code == "bad-name"


@given(st.text(min_size=1, max_size=80))
def test_an_accepted_name_stays_inside_the_directory(name: str) -> None:
    directory = Path("/state/definitions")
    try:
        path = named_path(directory, name, suffix=".xml")
    except StateDirError:
        return
    assert path.parent == directory
    assert path.name == f"{name}.xml"
