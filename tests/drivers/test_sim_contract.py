"""The shared driver contract, run on the simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from migrator.drivers.sim import SimDriver, SimWorld, Workload
from tests.drivers.contract import DriverContract, TwoHosts
from tests.drivers.simkit import DESTINATION, SOURCE, domain


class TestSimContract(DriverContract):
    @pytest.fixture
    def hosts(self) -> TwoHosts:
        world = SimWorld()

        def set_workload(name: str, *, working_set_bytes: int, dirty_rate_bytes_s: int) -> None:
            world.set_workload(
                name,
                Workload(
                    working_set_bytes=working_set_bytes, dirty_rate_bytes_s=dirty_rate_bytes_s
                ),
            )

        return TwoHosts(
            source=SimDriver(world, SOURCE, tls_dir=Path("certs") / SOURCE),
            destination=SimDriver(world, DESTINATION, tls_dir=Path("certs") / DESTINATION),
            make_domain=domain,
            set_workload=set_workload,
            listen_uri=f"tcp:{DESTINATION}:0",
        )
