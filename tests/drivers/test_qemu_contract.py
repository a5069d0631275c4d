"""The shared driver contract, run on real QEMU with the test guest.

Also the kit of the qemu driver's other tests: small guests booting the test-guest kernel.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from migrator.domain import Arch, Domain, DomainType, Os
from migrator.domain.devices import Devices
from migrator.drivers.base import StartMode
from migrator.drivers.qemu import QEMUDriver, QEMUInstance
from migrator.testguest import probe
from migrator.testguest.kernel import build_kernel
from tests.drivers.contract import BUSY_DIRTY_RATE, BUSY_WORKING_SET, DriverContract, TwoHosts
from transport import certdir

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024

#: RAM of every test guest: room for a 32 MiB working set above the kernel's 2 MiB.
GUEST_MEMORY_BYTES = 64 * MiB
#: A guest that only beats its heart.
IDLE = (0, 0)
LOOPBACK = "127.0.0.1"


class GuestKernels:
    """The test-guest kernel of each guest name, in ``directory``.

    QEMU reads a guest's kernel once, at start, so a guest's workload is fixed then:
    ``default`` for every new name, or what :meth:`set_workload` asked for before the first
    start. Asking a started guest for another workload is an error, never ignored.
    """

    def __init__(self, directory: Path, *, default: tuple[int, int] = IDLE) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.default = default
        self._built: dict[str, tuple[int, int]] = {}

    def workload(self, name: str) -> tuple[int, int]:
        """The (working set MiB, dirty rate MiB/s) guest ``name`` boots with."""
        return self._built.get(name, self.default)

    def kernel(self, name: str) -> Path:
        return self.directory / f"{name}.kernel"

    def domain(self, name: str, *, devices: Devices | None = None) -> Domain:
        """A 64 MiB q35 guest booting its kernel; the kernel is built on first use."""
        if name not in self._built:
            self._build(name, self.default)
        return Domain(
            type=DomainType.KVM,
            name=name,
            uuid=uuid.uuid5(uuid.NAMESPACE_DNS, name),
            memory_kib=GUEST_MEMORY_BYTES // 1024,
            os=Os(arch=Arch.X86_64, machine="q35", kernel=str(self.kernel(name))),
            devices=devices or Devices(),
        )

    def set_workload(self, name: str, *, working_set_bytes: int, dirty_rate_bytes_s: int) -> None:
        wanted = (working_set_bytes // MiB, dirty_rate_bytes_s // MiB)
        built = self._built.get(name)
        if built is None:
            self._build(name, wanted)
        elif built != wanted:
            raise AssertionError(
                f"guest {name!r} was built with workload {built} (MiB, MiB/s), not {wanted}: "
                "a QEMU guest takes its workload at start"
            )

    def _build(self, name: str, workload: tuple[int, int]) -> None:
        working_set_mib, dirty_rate_mib_s = workload
        image = build_kernel(working_set_mib=working_set_mib, dirty_rate_mib_s=dirty_rate_mib_s)
        self.kernel(name).write_bytes(image)
        self._built[name] = workload


class WarmDriver(QEMUDriver):
    """A qemu driver that hands out a running guest with a working set only once the guest
    has rewritten all of it: until then its memory is mostly zero pages, which a migration
    copies at once however busy the guest is about to become."""

    def __init__(
        self, run_dir: Path, kernels: GuestKernels, *, tls_dir: Path | None = None
    ) -> None:
        super().__init__(run_dir, tls_dir=tls_dir)
        self._kernels = kernels

    async def start(self, domain: Domain, *, mode: StartMode) -> QEMUInstance:
        instance = await super().start(domain, mode=mode)
        working_set_mib, _rate = self._kernels.workload(domain.name)
        if mode is StartMode.RUNNING and working_set_mib:
            scratch = self.run_dir / f"{domain.name}.status"
            await probe.until_rewritten(instance.execute, scratch, working_set_mib=working_set_mib)
        return instance


#: The busy test guest's (working set MiB, dirty rate MiB/s), as the contract asks for it.
BUSY = (BUSY_WORKING_SET // MiB, BUSY_DIRTY_RATE // MiB)


def certificates(directory: Path) -> tuple[Path, Path]:
    """Certificate directories of hosts ``a`` and ``b`` from one CA, each naming 127.0.0.1."""
    certdir.create_ca(directory)
    issue = certdir.issue
    return issue(directory, name="a", ips=[LOOPBACK]), issue(directory, name="b", ips=[LOOPBACK])


class TestQemuContract(DriverContract):
    @pytest.fixture
    async def hosts(self, tmp_path: Path) -> AsyncIterator[TwoHosts]:
        kernels = GuestKernels(tmp_path / "kernels", default=IDLE)
        tls_a, tls_b = certificates(tmp_path / "certs")
        source = WarmDriver(tmp_path / "a", kernels, tls_dir=tls_a)
        destination = WarmDriver(tmp_path / "b", kernels, tls_dir=tls_b)
        yield TwoHosts(
            source=source,
            destination=destination,
            make_domain=kernels.domain,
            set_workload=kernels.set_workload,
            listen_uri=f"tcp:{LOOPBACK}:0",
        )
        await source.close()
        await destination.close()
