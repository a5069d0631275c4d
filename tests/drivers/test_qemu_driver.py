"""The qemu driver against real QEMU: what the shared contract does not cover."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from migrator.domain import (
    CharSource,
    CharType,
    Devices,
    Domain,
    Serial,
    SourceMode,
    parse_domain,
)
from migrator.drivers.base import (
    CommandFailed,
    DriverError,
    EventKind,
    GraphicsEndpoint,
    InstanceGone,
    MigrationStatus,
    RunState,
    StartMode,
)
from migrator.drivers.qemu import Lifecycle, QEMUDriver, QEMUInstance
from migrator.drivers.qemu.rundir import RunPaths
from migrator.testguest.protocol import LineKind, parse_line
from tests.drivers.contract import next_statuses, until_gone
from tests.drivers.test_qemu_contract import BUSY, GuestKernels, MiB, WarmDriver

pytestmark = pytest.mark.qemu

GUARD_S = 60.0


@pytest.fixture
def kernels(tmp_path: Path) -> GuestKernels:
    return GuestKernels(tmp_path / "ker,nels")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run,dir"


@pytest.fixture
async def driver(run_dir: Path) -> AsyncIterator[QEMUDriver]:
    driver = QEMUDriver(run_dir)
    yield driver
    await driver.close()


@pytest.fixture
async def started() -> AsyncIterator[list[QEMUInstance]]:
    """The instances a test started: whatever still runs at the end is killed."""
    instances: list[QEMUInstance] = []
    yield instances
    for instance in instances:
        if instance.lifecycle is Lifecycle.RUNNING:
            await instance.kill()
        elif instance.lifecycle is Lifecycle.DETACHED:
            with contextlib.suppress(ProcessLookupError):
                os.kill(instance.pid, signal.SIGKILL)


async def start(
    driver: QEMUDriver,
    domain: Domain,
    started: list[QEMUInstance],
    *,
    mode: StartMode = StartMode.RUNNING,
) -> QEMUInstance:
    instance = await driver.start(domain, mode=mode)
    started.append(instance)
    return instance


def wait_for_exit(pid: int) -> None:
    """Block until process ``pid`` has exited (it may stay a zombie until reaped)."""
    with contextlib.suppress(ProcessLookupError):
        pidfd = os.pidfd_open(pid)
        try:
            select.select([pidfd], [], [], GUARD_S)
        finally:
            os.close(pidfd)


# -- a rich definition on real QEMU -------------------------------------------------------

RICH = """<domain type='kvm'>
  <name>rich</name>
  <uuid>6b1c7a14-7f8a-4e7a-9a16-2b3c4d5e6f70</uuid>
  <memory unit='MiB'>64</memory>
  <currentMemory unit='MiB'>48</currentMemory>
  <vcpu current='1'>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>{kernel}</kernel></os>
  <features><acpi/><vmcoreinfo/></features>
  <clock offset='utc'>
    <timer name='rtc' tickpolicy='catchup'/>
    <timer name='pit' tickpolicy='delay'/>
  </clock>
  <devices>
    <controller type='usb' index='0' model='qemu-xhci'/>
    <controller type='scsi' index='0' model='virtio-scsi'/>
    <controller type='virtio-serial' index='0'/>
    <disk type='file'>
      <driver name='qemu' type='raw' cache='writethrough'/>
      <source file='{disks}/a.img'/><target dev='vda' bus='virtio'/><serial>vd-1</serial>
    </disk>
    <disk type='file'>
      <driver name='qemu' type='raw' cache='writeback'/>
      <source file='{disks}/b.img'/><target dev='sda' bus='sata'/>
    </disk>
    <disk type='file'>
      <source file='{disks}/c.img'/><target dev='sdb' bus='scsi'/><readonly/>
    </disk>
    <disk type='file' device='cdrom'><target dev='sdc' bus='sata'/></disk>
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>
    <serial type='unix'><source mode='bind' path='{disks}/ttyS0'/><target port='0'/></serial>
    <serial type='file'><source path='{disks}/ttyS1.log'/><target port='1'/></serial>
    <console type='file'><source path='{disks}/hvc1.log'/><target type='virtio' port='1'/></console>
    <input type='tablet' bus='usb'/>
    <input type='keyboard' bus='virtio'/>
    <graphics type='vnc' autoport='yes' passwd='s3cret'/>
    <video><model type='vga'/></video>
    <memballoon model='virtio'><stats period='10'/></memballoon>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>"""


async def test_a_rich_definition_runs(
    driver: QEMUDriver, kernels: GuestKernels, tmp_path: Path, started: list[QEMUInstance]
) -> None:
    disks = tmp_path / "disk,s"
    disks.mkdir()
    for image in ("a.img", "b.img", "c.img"):
        with (disks / image).open("wb") as file:
            file.truncate(1024 * 1024)
    kernel = kernels.domain("rich").os.kernel
    domain = parse_domain(RICH.format(kernel=kernel, disks=disks))
    instance = await start(driver, domain, started, mode=StartMode.PAUSED)
    assert await instance.run_state() is RunState.PRELAUNCH
    peripherals = await instance.execute("qom-list", {"path": "/machine/peripheral"})
    assert isinstance(peripherals, list)
    names = {entry["name"] for entry in peripherals}
    assert {
        "disk-vda",
        "disk-sda",
        "disk-sdb",
        "disk-sdc",
        "net0",
        "serial0",
        "serial1",
        "console0",
        "input0",
        "input1",
        "video0",
        "balloon0",
        "rng0",
    } <= names
    vnc = await instance.execute("query-vnc")
    assert isinstance(vnc, dict)
    assert vnc["auth"] == "vnc"
    [display] = await instance.graphics()
    assert display.type == "vnc"
    assert display.listen == "127.0.0.1"
    assert display.port is not None
    assert display.port >= 5900
    interval = await instance.execute(
        "qom-get",
        {"path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval"},
    )
    assert interval == 10
    await instance.relocate_graphics_clients(display)  # VNC: nothing to tell


async def test_the_guest_beats_on_its_serial_socket(
    driver: QEMUDriver, kernels: GuestKernels, tmp_path: Path, started: list[QEMUInstance]
) -> None:
    path = tmp_path / "ser,ial"
    serial = Serial(type=CharType.UNIX, source=CharSource(path=str(path), mode=SourceMode.BIND))
    domain = kernels.domain("beating", devices=Devices(serials=(serial,)))
    await start(driver, domain, started)
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        async with asyncio.timeout(GUARD_S):
            while (line := parse_line((await reader.readline()).rstrip(b"\n"))) is None:
                pass
    finally:
        writer.close()
    assert line.kind is LineKind.HEARTBEAT


async def test_spice_display(
    driver: QEMUDriver, kernels: GuestKernels, started: list[QEMUInstance]
) -> None:
    kernel = kernels.domain("spicy").os.kernel
    domain = parse_domain(f"""<domain type='kvm'>
  <name>spicy</name><memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>{kernel}</kernel></os>
  <devices><graphics type='spice' autoport='yes' passwd='pw'/></devices>
</domain>""")
    instance = await start(driver, domain, started, mode=StartMode.PAUSED)
    [display] = await instance.graphics()
    assert display.type == "spice"
    assert display.port is not None
    spice = await instance.execute("query-spice")
    assert isinstance(spice, dict)
    assert spice["auth"] == "spice"
    await instance.relocate_graphics_clients(
        GraphicsEndpoint(type="spice", listen="127.0.0.1", port=display.port + 1)
    )


# -- QEMU going away ----------------------------------------------------------------------


async def test_a_crash_is_noticed_with_the_stderr_tail(
    driver: QEMUDriver, kernels: GuestKernels, run_dir: Path, started: list[QEMUInstance]
) -> None:
    # A pty serial port makes QEMU tell on stderr where it put the pty.
    serial = Serial(type=CharType.PTY)
    instance = await start(
        driver, kernels.domain("crash", devices=Devices(serials=(serial,))), started
    )
    paths = RunPaths.of(run_dir, "crash")
    assert paths.running_pid() == instance.pid
    async with instance.listen() as events:
        os.kill(instance.pid, signal.SIGKILL)
        rest = await until_gone(events)
    [exited] = rest
    assert exited.kind is EventKind.EXITED
    assert f"QEMU (pid {instance.pid}) was killed by SIGKILL" in exited.detail
    assert "char device redirected to /dev/pts/" in exited.detail
    assert not instance.alive
    with pytest.raises(InstanceGone) as gone:
        await instance.run_state()
    assert gone.value.detail == exited.detail
    assert gone.value.instance == "crash"
    assert not paths.directory.exists()


async def test_a_call_in_flight_fails_when_qemu_dies(
    driver: QEMUDriver, kernels: GuestKernels, started: list[QEMUInstance]
) -> None:
    instance = await start(driver, kernels.domain("inflight"), started)
    os.kill(instance.pid, signal.SIGSTOP)  # QEMU cannot answer any more
    call = asyncio.create_task(instance.query_migration())
    await asyncio.sleep(0.05)
    assert not call.done()
    os.kill(instance.pid, signal.SIGKILL)
    with pytest.raises(InstanceGone):
        async with asyncio.timeout(GUARD_S):
            await call


async def test_quit_is_a_shutdown_then_an_exit(
    driver: QEMUDriver, kernels: GuestKernels, started: list[QEMUInstance]
) -> None:
    instance = await start(driver, kernels.domain("quitter"), started)
    async with instance.listen() as events:
        await instance.execute("quit")
        rest = await until_gone(events)
    assert [event.kind for event in rest] == [EventKind.SHUTDOWN, EventKind.EXITED]
    assert "exited with status 0" in rest[-1].detail


async def test_a_failed_start_reports_qemu_and_leaves_nothing_behind(
    driver: QEMUDriver,
    kernels: GuestKernels,
    run_dir: Path,
    tmp_path: Path,
    started: list[QEMUInstance],
) -> None:
    missing = tmp_path / "no,such.kernel"
    domain = kernels.domain("broken")
    broken = parse_domain(f"""<domain type='kvm'>
  <name>broken</name><uuid>{domain.uuid}</uuid><memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>{missing}</kernel></os>
</domain>""")
    with pytest.raises(DriverError, match="exited with status 1") as failed:
        await driver.start(broken, mode=StartMode.RUNNING)
    assert f"could not open kernel file '{missing}'" in failed.value.detail
    assert not RunPaths.of(run_dir, "broken").directory.exists()
    await start(driver, domain, started)


async def test_qmp_errors_keep_their_class(
    driver: QEMUDriver, kernels: GuestKernels, started: list[QEMUInstance]
) -> None:
    instance = await start(driver, kernels.domain("errors"), started, mode=StartMode.PAUSED)
    with pytest.raises(CommandFailed, match="The command no-such-command has not been found") as e:
        await instance.execute("no-such-command")
    assert e.value.error_class == "CommandNotFound"
    with pytest.raises(CommandFailed) as refused:
        await instance.set_parameters({"downtime-limit": "fast"})
    assert refused.value.error_class == "GenericError"
    with pytest.raises(DriverError, match="not JSON"):
        await instance.set_parameters({"max-bandwidth": object()})
    assert await instance.run_state() is RunState.PRELAUNCH


# -- a restarted daemon -------------------------------------------------------------------


async def test_attach_after_a_daemon_restart(
    kernels: GuestKernels, run_dir: Path, started: list[QEMUInstance]
) -> None:
    domain = kernels.domain("survivor")
    first = QEMUDriver(run_dir)
    before = await start(first, domain, started)
    # Turned off here, and not turned on again by the reconnection.
    await before.set_capabilities([{"capability": "events", "state": False}])
    await first.close()
    assert not before.alive
    assert before.lifecycle is Lifecycle.DETACHED
    with pytest.raises(DriverError, match="detached") as detached:
        await before.run_state()
    assert not isinstance(detached.value, InstanceGone)
    async with before.listen() as events:
        assert await until_gone(events) == []
    with pytest.raises(DriverError, match="closed"):
        await first.start(domain, mode=StartMode.RUNNING)

    second = QEMUDriver(run_dir)
    with pytest.raises(DriverError, match="already running"):
        await second.start(domain, mode=StartMode.RUNNING)
    after = await second.attach(domain)
    assert after is not None
    assert await second.attach(domain) is after
    assert after.pid == before.pid
    assert await after.run_state() is RunState.RUNNING
    capabilities = await after.execute("query-migrate-capabilities")
    assert isinstance(capabilities, list)
    assert {"capability": "events", "state": False} in capabilities

    async with after.listen() as events:
        os.kill(after.pid, signal.SIGKILL)  # noticed through the pidfd: not our child
        [exited] = await until_gone(events)
    assert exited.kind is EventKind.EXITED
    assert not after.alive
    assert await second.attach(domain) is None
    await second.close()


async def test_attach_to_a_gone_or_foreign_process_cleans_up(
    kernels: GuestKernels, run_dir: Path, started: list[QEMUInstance]
) -> None:
    domain = kernels.domain("ghost")
    first = QEMUDriver(run_dir)
    instance = await start(first, domain, started)
    await first.close()
    os.kill(instance.pid, signal.SIGKILL)
    await asyncio.to_thread(wait_for_exit, instance.pid)
    paths = RunPaths.of(run_dir, "ghost")
    second = QEMUDriver(run_dir)
    assert await second.attach(domain) is None
    assert not paths.directory.exists()

    paths.directory.mkdir(parents=True)
    paths.pidfile.write_text(f"{os.getpid()}\n")  # alive, but not QEMU of this guest
    assert await second.attach(domain) is None
    assert not paths.directory.exists()
    await (await start(second, domain, started)).kill()
    await second.close()


# -- parameters, incoming ports, file descriptors -----------------------------------------


async def test_parameters_round_trip(
    driver: QEMUDriver, kernels: GuestKernels, started: list[QEMUInstance]
) -> None:
    instance = await start(driver, kernels.domain("params"), started, mode=StartMode.PAUSED)
    original = await instance.query_parameters()
    await instance.set_parameters(
        {"max-bandwidth": 1 << 30, "downtime-limit": 50, "multifd-channels": 8}
    )
    assert await instance.query_parameters() != original
    await instance.set_parameters(original)  # what a migration does on every end path
    assert await instance.query_parameters() == original


async def test_port_zero_becomes_the_port_qemu_listens_on(
    driver: QEMUDriver, kernels: GuestKernels, started: list[QEMUInstance]
) -> None:
    instance = await start(driver, kernels.domain("listener"), started, mode=StartMode.INCOMING)
    uri = await instance.start_incoming("tcp:127.0.0.1:0")
    host, port = uri.removeprefix("tcp:").rsplit(":", 1)
    assert host == "127.0.0.1"
    with socket.socket() as probe, pytest.raises(OSError, match="Address already in use"):
        probe.bind((host, int(port)))


async def test_migration_through_a_file_descriptor(
    driver: QEMUDriver, kernels: GuestKernels, tmp_path: Path, started: list[QEMUInstance]
) -> None:
    domain = kernels.domain("saved")
    source = await start(driver, domain, started)
    image = tmp_path / "saved.image"
    with image.open("wb") as file:
        async with source.listen() as events:
            await source.migrate_to_fd(file.fileno())
            statuses = await next_statuses(events, {MigrationStatus.COMPLETED})
    assert statuses[-1] is MigrationStatus.COMPLETED
    assert image.read_bytes()[:4] == b"QEVM"
    await source.kill()

    other = QEMUDriver(tmp_path / "other")
    try:
        restored = await start(other, domain, started, mode=StartMode.INCOMING)
        with image.open("rb") as file:
            async with restored.listen() as events:
                await restored.start_incoming_from_fd(file.fileno())
                await next_statuses(events, {MigrationStatus.COMPLETED})
        assert await restored.run_state() is RunState.PAUSED
        await restored.resume()
        assert await restored.run_state() is RunState.RUNNING
        await restored.kill()
    finally:
        await other.close()


async def test_a_paused_postcopy_recovers_on_a_port_qemu_picked(
    tmp_path: Path, started: list[QEMUInstance]
) -> None:
    kernels = GuestKernels(tmp_path / "kernels", default=BUSY)
    source_driver = WarmDriver(tmp_path / "a", kernels)
    destination_driver = QEMUDriver(tmp_path / "b")
    domain = kernels.domain("recovering")
    source = await start(source_driver, domain, started)
    destination = await start(destination_driver, domain, started, mode=StartMode.INCOMING)
    postcopy = [{"capability": "postcopy-ram", "state": True}]
    for instance in (source, destination):
        await instance.set_capabilities(postcopy)
    uri = await destination.start_incoming("tcp:127.0.0.1:0")
    # Slow enough that the post-copy phase is still running when it is paused.
    await source.set_parameters({"max-bandwidth": 16 * MiB, "max-postcopy-bandwidth": MiB})
    await destination.resume()  # so that the guest starting there tells when post-copy runs
    async with source.listen() as out, destination.listen() as into:
        await source.migrate(uri)
        await next_statuses(out, {MigrationStatus.ACTIVE})
        await source.start_postcopy()
        await next_statuses(out, {MigrationStatus.POSTCOPY_ACTIVE})
        async with asyncio.timeout(GUARD_S):
            async for event in into:
                if event.kind is EventKind.RESUMED:
                    break
        # Only a running post-copy can pause and recover; one still loading devices fails.
        await source.pause_postcopy()
        await next_statuses(out, {MigrationStatus.POSTCOPY_PAUSED})
        await next_statuses(into, {MigrationStatus.POSTCOPY_PAUSED})

        recovery = await destination.recover_postcopy("tcp:127.0.0.1:0")
        assert recovery.startswith("tcp:127.0.0.1:")
        assert recovery != uri
        await source.set_parameters({"max-postcopy-bandwidth": 0})
        await source.migrate(recovery, resume=True)
        await next_statuses(out, {MigrationStatus.COMPLETED})
        await next_statuses(into, {MigrationStatus.COMPLETED})
    assert await source.run_state() is RunState.POSTMIGRATE
    assert await destination.run_state() is RunState.RUNNING
