"""The asyncio monitor against plain unix-socket servers standing in for QEMU's serial ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from migrator.testguest.errors import SerialSourceError
from migrator.testguest.heartbeat import HeartbeatMonitor

TIMEOUT = 10  # only stops a broken test from hanging


class SerialPort:
    """A listening unix socket standing in for QEMU's: it writes what the test tells it to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._clients: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._client: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=self.path)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._clients.put((reader, writer))

    async def client(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._client is None:
            self._client = await self._clients.get()
        return self._client

    async def send(self, data: bytes) -> None:
        _, writer = await self.client()
        writer.write(data)
        await writer.drain()

    async def hang_up(self) -> None:
        _, writer = await self.client()
        writer.close()
        await writer.wait_closed()

    async def stop(self) -> None:
        assert self._server is not None
        if self._client is not None:
            self._client[1].close()
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def ports(tmp_path: Path) -> AsyncIterator[tuple[SerialPort, SerialPort]]:
    pair = SerialPort(tmp_path / "src.serial"), SerialPort(tmp_path / "dst.serial")
    for port in pair:
        await port.start()
    yield pair
    for port in pair:
        await port.stop()


async def test_follows_two_sources_across_a_switchover(
    ports: tuple[SerialPort, SerialPort],
) -> None:
    source, destination = ports
    async with asyncio.timeout(TIMEOUT), HeartbeatMonitor() as monitor:
        await monitor.attach(source.path, name="src")
        await monitor.attach(destination.path, name="dst")
        await source.send(b"H0\nH1\nOK 1\nH")  # stopped in the middle of a line
        await monitor.wait_for(lambda r: r.heartbeats == 2)
        await destination.send(b"2\nH3\n")
        report = await monitor.wait_for(lambda r: r.heartbeats == 4)
    assert (report.last_seq, report.anomaly_count, report.verified_sweeps) == (3, 0, 1)
    assert report.source("dst").first_seq == 2
    assert report.source("dst").switchover_gap is not None


async def test_a_cut_line_is_joined_even_when_the_monitor_reads_late(
    ports: tuple[SerialPort, SerialPort],
) -> None:
    source, destination = ports
    async with asyncio.timeout(TIMEOUT), HeartbeatMonitor() as monitor:
        await monitor.attach(source.path, name="src")
        await monitor.attach(destination.path, name="dst")
        await source.send(b"H10\nH11\n")
        await monitor.wait_for(lambda r: r.heartbeats == 2)
        _, source_writer = await source.client()
        _, destination_writer = await destination.client()
        # Both become readable before the monitor runs again, the destination's bytes first:
        # the source's last bytes must still be fed before them.
        destination_writer.write(b"2\nH13\n")
        source_writer.write(b"H1")
        report = await monitor.wait_for(lambda r: r.heartbeats == 4 or r.anomaly_count > 0)
    assert report.anomalies == ()
    assert (report.last_seq, report.source("dst").first_seq) == (0x13, 0x12)


async def test_wait_fails_once_every_source_has_closed(
    ports: tuple[SerialPort, SerialPort],
) -> None:
    source, _ = ports
    async with asyncio.timeout(TIMEOUT), HeartbeatMonitor() as monitor:
        await monitor.attach(source.path, name="src")
        await source.send(b"H0\n")
        await source.hang_up()
        with pytest.raises(SerialSourceError, match="every serial source has closed"):
            await monitor.wait_for(lambda r: r.heartbeats > 1)
        report = monitor.report()
    assert report.heartbeats == 1
    assert report.source("src").closed


async def test_clock_stamps_arrivals(ports: tuple[SerialPort, SerialPort]) -> None:
    source, _ = ports
    times = iter([10.0, 10.5])
    async with asyncio.timeout(TIMEOUT), HeartbeatMonitor(clock=lambda: next(times)) as monitor:
        await monitor.attach(source.path, name="src")
        await source.send(b"H0\n")
        await monitor.wait_for(lambda r: r.heartbeats == 1)
        await source.send(b"H1\n")
        report = await monitor.wait_for(lambda r: r.heartbeats == 2)
    assert report.largest_gap == pytest.approx(0.5)


async def test_attach_errors(ports: tuple[SerialPort, SerialPort], tmp_path: Path) -> None:
    source, _ = ports
    async with asyncio.timeout(TIMEOUT):
        monitor = HeartbeatMonitor()
        with pytest.raises(SerialSourceError, match="cannot connect") as refused:
            await monitor.attach(tmp_path / "nothing.serial", name="src")
        assert refused.value.path == str(tmp_path / "nothing.serial")
        await monitor.attach(source.path, name="src")  # the failed attempt left no trace
        with pytest.raises(SerialSourceError, match="already attached"):
            await monitor.attach(source.path, name="src")
        await monitor.close()
        with pytest.raises(SerialSourceError, match="closed"):
            await monitor.attach(source.path, name="later")


async def test_close_hangs_up(ports: tuple[SerialPort, SerialPort]) -> None:
    async with asyncio.timeout(TIMEOUT):
        monitor = HeartbeatMonitor()
        for port, name in zip(ports, ("a", "b"), strict=True):
            await monitor.attach(port.path, name=name)
        await monitor.close()
        await monitor.close()
        for port in ports:
            reader, _ = await port.client()
            assert await reader.read() == b""
