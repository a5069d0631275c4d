"""The test guest as daemons run it: its definition, a definition of it for the destination
with a serial port of its own (both hosts are this machine), and its heartbeat followed from
each QEMU that runs it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from migrator.demo.guest import LOOPBACK, serial_on
from migrator.domain import Domain, format_domain
from migrator.drivers.qemu.host import free_tcp_port
from migrator.testguest.errors import SerialSourceError
from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.heartbeat_log import AnomalyKind, HeartbeatReport
from migrator.testguest.kernel import build_kernel
from tests.integration.qemu_cluster import GuestShape, guest_domain

#: How often a follower tries a serial port that does not listen yet.
RETRY_S = 0.01


@dataclasses.dataclass(frozen=True)
class DaemonGuest:
    """Guest ``domain``, its serial port on the loopback interface."""

    domain: Domain

    @classmethod
    def build(cls, directory: Path, name: str, shape: GuestShape) -> DaemonGuest:
        kernel = directory / f"{name}.kernel"
        kernel.write_bytes(
            build_kernel(
                working_set_mib=shape.working_set_mib, dirty_rate_mib_s=shape.dirty_rate_mib_s
            )
        )
        return cls(guest_domain(name, kernel=kernel, memory_mib=shape.memory_mib))

    @property
    def name(self) -> str:
        return self.domain.name

    @property
    def port(self) -> int:
        service = self.domain.devices.serials[0].source.service
        assert isinstance(service, int)
        return service

    def xml(self) -> str:
        return format_domain(self.domain)

    def moved(self) -> DaemonGuest:
        """The same guest with its serial port on a fresh port: its destination XML."""
        devices = dataclasses.replace(
            self.domain.devices, serials=(serial_on(free_tcp_port(LOOPBACK)),)
        )
        return DaemonGuest(dataclasses.replace(self.domain, devices=devices))


async def follow(monitor: HeartbeatMonitor, guest: DaemonGuest, *, source: str) -> None:
    """Follow ``guest``'s serial port as ``source``, waiting for its QEMU to listen."""
    while True:
        try:
            await monitor.attach((LOOPBACK, guest.port), name=source)
        except SerialSourceError:
            await asyncio.sleep(RETRY_S)
        else:
            return


def follow_soon(
    monitor: HeartbeatMonitor, guest: DaemonGuest, *, source: str
) -> asyncio.Task[None]:
    """:func:`follow` in a task: started before a migration, it attaches to the destination
    QEMU's serial port as soon as Prepare has started that QEMU."""
    return asyncio.create_task(follow(monitor, guest, source=source))


def assert_one_guest(report: HeartbeatReport, *, before: str, after: str) -> None:
    """The guest went on from ``before`` to ``after``: every heartbeat from ``after`` comes
    later than every one from ``before`` (never two copies running), and no page was
    found damaged. (Heartbeats can be missing between the two: a follower that attaches
    late misses the first ones.)"""
    first_after = report.source(after).first_seq
    last_before = report.source(before).last_seq
    assert first_after is not None and last_before is not None
    assert first_after > last_before
    repeats = [a for a in report.anomalies if a.kind is not AnomalyKind.GAP]
    assert repeats == [], repeats
    assert report.bad_page_reports == 0, report.bad_pages


async def beats(monitor: HeartbeatMonitor, source: str, count: int) -> HeartbeatReport:
    """Wait until ``count`` more heartbeats came from ``source`` than had come so far."""
    seen = monitor.report().source(source).heartbeats
    return await monitor.wait_for(lambda r: r.source(source).heartbeats >= seen + count)
