"""A two-host cluster on real QEMU for each test; every QEMU it started is killed afterwards,
whatever the test's outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.qemu_cluster import QemuCluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[QemuCluster]:
    async with QemuCluster(tmp_path) as two_hosts:
        yield two_hosts
