from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from migrator.daemon import StateDir


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDir]:
    with StateDir(tmp_path / "state") as opened:
        yield opened


def temp_files(directory: Path) -> list[Path]:
    """Every leftover temporary file under ``directory``."""
    return sorted(path for path in directory.rglob(".*.tmp"))
