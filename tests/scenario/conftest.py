from __future__ import annotations

from pathlib import Path

import pytest

#: The scenario files CI replays.
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def write_scenario(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    return tmp_path
