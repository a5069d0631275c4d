"""Following the demo guest's heartbeat from host to host.

Each QEMU of the guest serves COM1 on its own loopback port and drops the output while
nobody is connected, so the destination's port is attached as soon as that QEMU listens
(during Prepare), well before the guest's first instruction there.
"""

from __future__ import annotations

import asyncio

from migrator.demo.guest import LOOPBACK
from migrator.testguest.errors import SerialSourceError
from migrator.testguest.heartbeat import HeartbeatMonitor

#: How often an attach is retried while the port does not listen yet.
RETRY_INTERVAL_S = 0.01


class GuestHeartbeat:
    """The guest's heartbeat over every QEMU it has run in, one named source each."""

    def __init__(self, monitor: HeartbeatMonitor) -> None:
        self.monitor = monitor

    async def follow(self, port: int, *, name: str) -> None:
        """Attach ``LOOPBACK:port`` as source ``name``, retrying until it listens.

        Bound the wait with ``asyncio.timeout`` or cancel the call.
        """
        while True:
            try:
                await self.monitor.attach((LOOPBACK, port), name=name)
                return
            except SerialSourceError:
                await asyncio.sleep(RETRY_INTERVAL_S)

    async def beating(self, name: str, *, heartbeats: int = 1) -> None:
        """Wait until source ``name`` has delivered ``heartbeats`` heartbeats.

        Raises:
            SerialSourceError: every source closed first.
        """
        await self.monitor.wait_for(lambda report: report.source(name).heartbeats >= heartbeats)

    def switchover_gap_ms(self, name: str) -> float | None:
        """The silence before source ``name``'s first heartbeat, in milliseconds."""
        gap = self.monitor.report().source(name).switchover_gap
        return None if gap is None else gap * 1000
