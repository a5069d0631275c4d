"""A daemon killed (SIGKILL) during a save or a restore of the running test guest on real
QEMU, and started again on its state directory: the save's guest runs on, its heartbeat
carrying on, with its bandwidth limit back and no partial image left; the restore's QEMU is
gone and its image can be restored.

The daemon reports its fault points (``MIGRATOR_FAULT_POINTS``) to the test, which acts at
them: when the save's ``migrate`` is about to reach QEMU, the writer that carries the stream
to the file (``dd``, for a save that bypasses the cache) is stopped, so that QEMU is still
writing when the daemon is killed, and still writing when the next daemon starts; that
daemon's ``migrate_cancel`` lets the writer go on. Nothing is timed: the guard only stops a
broken test from hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from migrator.client import Client, ClientError, DomainState, JobType
from migrator.daemon.faultpoints import FAULT_POINTS_VARIABLE, read_message, write_message
from migrator.saveimage import Magic
from migrator.testguest.heartbeat import HeartbeatMonitor
from tests.integration.qemu_cluster import GuestShape

from .guests import DaemonGuest, beats, follow
from .processes import DaemonProcess, short_directory

pytestmark = pytest.mark.qemu

GUARD_S = 60
#: A guest whose memory does not fit in the pipe to the writer (its working set is not zero).
STEADY = GuestShape(memory_mib=128, working_set_mib=32, dirty_rate_mib_s=20)
#: The bandwidth limit (MiB/s) the guest has before a save lifts it.
LIMIT_MIB_S = 8
#: The programs that carry a save's stream to its file when it bypasses the cache.
WRITERS = frozenset({"sh", "dd"})

#: What the test does at a fault point: given the report, before it is answered.
Action = Callable[[dict[str, Any]], Awaitable[None]]


class FaultPoints:
    """The socket a daemon reports its fault points to: each is answered at once, after the
    action set for it (``command`` name, or ``status:`` + migration status), if any."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.actions: dict[str, Action] = {}
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FaultPoints:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            message = await read_message(reader)
            key = str(message.get("command", f"status:{message.get('status')}"))
            action = self.actions.pop(key, None)
            if action is not None:
                await action(message)
            await write_message(writer, {})
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass  # the daemon died while it waited
        finally:
            writer.close()


def process_tree(root: int) -> dict[int, str]:
    """The processes below ``root``, with their command names."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            line = (entry / "stat").read_text()
        except OSError:
            continue
        name = line[line.index("(") + 1 : line.rindex(")")]
        parents[int(entry.name)] = (int(line[line.rindex(")") + 2 :].split()[1]), name)
    below: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, name) in parents.items():
            if ppid == parent and pid not in below:
                below[pid] = name
                frontier.append(pid)
    return below


class Writers:
    """The stream writers of one daemon's save, stopped and let go again."""

    def __init__(self) -> None:
        self.stopped: set[int] = set()

    def stop(self, daemon: DaemonProcess) -> None:
        """Stop every writer the daemon runs, until none is left running (a stopped shell
        starts no more)."""
        assert daemon.process is not None
        while True:
            found = {
                pid for pid, name in process_tree(daemon.process.pid).items() if name in WRITERS
            }
            if not found - self.stopped:
                break
            for pid in found - self.stopped:
                os.kill(pid, signal.SIGSTOP)
                self.stopped.add(pid)
        assert self.stopped, "the save runs no writer"

    def signal(self, signum: int) -> None:
        for pid in self.stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)


@pytest.fixture
async def monitor() -> AsyncIterator[HeartbeatMonitor]:
    async with HeartbeatMonitor() as watching:
        yield watching


@pytest.fixture
def root() -> Iterator[Path]:
    with short_directory() as path:
        yield path


@pytest.fixture
async def points(root: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FaultPoints]:
    path = root / "points"
    monkeypatch.setenv(FAULT_POINTS_VARIABLE, str(path))
    async with FaultPoints(path) as serving:
        yield serving


@pytest.fixture
async def daemon(root: Path, points: FaultPoints) -> AsyncIterator[DaemonProcess]:
    """A daemon on QEMU reporting to ``points``; at the end it is stopped and its QEMU
    processes killed."""
    process = DaemonProcess("host-a", root / "a")
    await asyncio.to_thread(process.start)
    try:
        yield process
    finally:
        await asyncio.to_thread(process.stop)
        process.kill_guests()


async def start_guest(client: Client, guest: DaemonGuest, monitor: HeartbeatMonitor) -> None:
    """Define and start ``guest``, following its heartbeat as source ``a``."""
    await client.define(guest.xml())
    await client.start(guest.name, paused=True)
    await follow(monitor, guest, source="a")
    await client.resume(guest.name)
    await beats(monitor, "a", 50)


async def killed_and_started_again(daemon: DaemonProcess, call: asyncio.Task[Any]) -> None:
    """SIGKILL the daemon while ``call`` (to it) runs, then start it again; the call fails."""
    daemon.kill()
    with pytest.raises(ClientError):
        await call
    assert sorted(p.name for p in (daemon.state_dir / "status").iterdir()) == ["vm.save-job"]
    await asyncio.to_thread(daemon.start)


async def test_a_save_being_written_when_its_daemon_is_killed_is_undone(
    daemon: DaemonProcess, points: FaultPoints, monitor: HeartbeatMonitor, root: Path
) -> None:
    guest = DaemonGuest.build(root, "vm", STEADY)
    image = root / "vm.img"
    writers = Writers()
    writing = asyncio.Event()

    async def stop_writers(message: dict[str, Any]) -> None:
        assert message["detail"] == "fd"
        writers.stop(daemon)

    async def written(message: dict[str, Any]) -> None:
        writing.set()

    async def let_writers_go(message: dict[str, Any]) -> None:
        writers.signal(signal.SIGCONT)

    try:
        async with asyncio.timeout(GUARD_S):
            client = await Client.connect(daemon.unix_uri)
            await start_guest(client, guest, monitor)
            await client.migrate_setspeed("vm", LIMIT_MIB_S)
            [qemu] = daemon.qemu_pids().values()
            points.actions["migrate"] = stop_writers
            points.actions["status:active"] = written
            save = asyncio.create_task(client.save("vm", image, bypass_cache=True))
            await writing.wait()
            assert image.read_bytes()[:16] == Magic.PARTIAL.value
            points.actions["migrate_cancel"] = let_writers_go
            await killed_and_started_again(daemon, save)
            await client.close()

            async with await Client.connect(daemon.unix_uri) as client:
                assert {d.name: d.state for d in await client.list_domains()} == {
                    "vm": DomainState.RUNNING
                }
                report = await beats(monitor, "a", 300)
                assert report.anomaly_count == 0, report.anomalies
                assert report.bad_page_reports == 0, report.bad_pages
                assert daemon.qemu_pids() == {"vm": qemu}
                assert await client.migrate_getspeed("vm") == LIMIT_MIB_S
                assert not image.exists()
                assert list((daemon.state_dir / "status").iterdir()) == []
                completed = await client.domjobinfo("vm", completed=True)
                assert completed.job_type is JobType.FAILED
                assert completed.error == (
                    f"the save of 'vm' to {image} was interrupted: the daemon restarted"
                )
                [line] = [
                    line for line in daemon.log_text().splitlines() if "restart of the" in line
                ]
                assert (
                    "(the save did not complete; QEMU's migration: active); recovery: cancel "
                    "QEMU's migration, restore the bandwidth limit, resume the guest, remove "
                    "the partial image" in line
                ), line
                assert "failed" not in line
                await client.destroy("vm")
    finally:
        writers.signal(signal.SIGKILL)


async def test_a_restore_whose_daemon_is_killed_leaves_no_qemu_and_can_be_retried(
    daemon: DaemonProcess, points: FaultPoints, monitor: HeartbeatMonitor, root: Path
) -> None:
    guest = DaemonGuest.build(root, "vm", STEADY)
    image = root / "vm.img"
    loading = asyncio.Event()
    killed = asyncio.Event()

    async def hold(message: dict[str, Any]) -> None:
        loading.set()
        await killed.wait()  # the daemon dies waiting for this answer

    async with asyncio.timeout(GUARD_S):
        client = await Client.connect(daemon.unix_uri)
        await start_guest(client, guest, monitor)
        await client.save("vm", image)
        last = monitor.report().source("a").last_seq
        points.actions["migrate-incoming"] = hold
        restore = asyncio.create_task(client.restore(image))
        await loading.wait()
        assert set(daemon.qemu_pids()) == {"vm"}
        try:
            await killed_and_started_again(daemon, restore)
        finally:
            killed.set()
        await client.close()

        async with await Client.connect(daemon.unix_uri) as client:
            assert daemon.qemu_pids() == {}
            assert {d.name: d.state for d in await client.list_domains(include_inactive=True)} == {
                "vm": DomainState.SHUTOFF
            }
            assert image.read_bytes()[:16] == Magic.COMPLETE.value
            assert list((daemon.state_dir / "status").iterdir()) == []
            completed = await client.domjobinfo("vm", completed=True)
            assert (completed.job_type, completed.operation) == (JobType.FAILED, "restore")

            await client.restore(image, running=False)
            await follow(monitor, guest, source="restored")
            await client.resume("vm")
            report = await beats(monitor, "restored", 300)
            assert last is not None
            assert report.source("restored").first_seq == last + 1
            assert report.anomaly_count == 0, report.anomalies
            await client.destroy("vm")
