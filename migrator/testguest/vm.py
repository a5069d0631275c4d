"""Starts QEMU with the test guest, for tests and benchmarks.

This is a harness for the test guest only; the engine's QEMU driver builds its command lines
from domain definitions. The harness opens the listening sockets itself and hands QEMU their
descriptors (``-chardev socket,fd=N``), so a client can connect the moment QEMU starts, with no
polling for socket files. QEMU runs as a direct child process, never daemonized, and
:meth:`GuestVm.close` kills and reaps it.

QMP is on a unix socket. The serial port is on TCP on the loopback interface by default: QEMU
writes the guest's output one byte per ``send``, and a unix stream socket charges each of those
a whole buffer slot, so about 280 bytes (some 50 ms of heartbeats) fill it whenever the reader
lags, and the guest then drops lines. TCP merges small writes and buffers megabytes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from qemu.qmp import QMPClient, QMPError, Runstate

from migrator.drivers.qemu.host import kvm_usable
from migrator.drivers.qemu.options import Accel
from migrator.testguest import probe
from migrator.testguest.errors import GuestHarnessError, QemuProcessError
from migrator.testguest.heartbeat import HeartbeatMonitor, SerialAddress
from migrator.testguest.kernel import build_kernel
from migrator.testguest.memcheck import MemoryCheck
from migrator.testguest.protocol import (
    MIB,
    WORKING_SET_ADDR,
    GuestStatus,
)

QEMU_BINARY = Path("/usr/bin/qemu-system-x86_64")
#: A minimal firmware shipped with Debian's QEMU: boots a ``-kernel`` guest in a fraction of the
#: time SeaBIOS takes.
QBOOT_ROM = Path("/usr/share/qemu/qboot.rom")
KVM_DEVICE = Path("/dev/kvm")
MACHINE_TYPE = "q35"

_UNIX_PATH_MAX = 107
_LOOPBACK = "127.0.0.1"
_STDERR_LINES = 20
_EXIT_GRACE_SECONDS = 2.0


def detect_accel(device: Path = KVM_DEVICE) -> Accel:
    """KVM when ``device`` can be opened for reading and writing, TCG otherwise."""
    return Accel.KVM if kvm_usable(device) else Accel.TCG


def default_bios() -> Path | None:
    """qboot when it is installed; None (QEMU's default firmware) otherwise."""
    return QBOOT_ROM if QBOOT_ROM.is_file() else None


def guest_memory_mib(working_set_mib: int) -> int:
    """The least RAM, in MiB, for a guest built with this working set."""
    return WORKING_SET_ADDR // MIB + working_set_mib


class SerialTransport(enum.Enum):
    """What kind of listening socket carries the guest's serial port."""

    TCP = enum.auto()  # on the loopback interface: buffers megabytes of output
    UNIX = enum.auto()  # a socket file: fills up after some 50 ms without a reader


@dataclass(frozen=True)
class GuestVmSpec:
    """What to start: the kernel image, RAM size, accelerator, firmware and start mode.

    ``paused`` adds ``-S`` (the guest waits for ``cont``); ``incoming`` adds ``-incoming defer``
    (the process waits for ``migrate-incoming``).
    """

    kernel: Path
    memory_mib: int
    accel: Accel
    bios: Path | None
    paused: bool = False
    incoming: bool = False
    serial: SerialTransport = SerialTransport.TCP
    binary: Path = QEMU_BINARY


def qemu_argv(spec: GuestVmSpec, *, qmp_fd: int, serial_fd: int) -> list[str]:
    """The QEMU command line, with QMP and COM1 on the given listening sockets."""
    argv = [
        str(spec.binary),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-machine",
        MACHINE_TYPE,
        "-accel",
        spec.accel.value,
        "-m",
        str(spec.memory_mib),
        "-kernel",
        str(spec.kernel),
        "-chardev",
        f"socket,id=qmp,fd={qmp_fd},server=on,wait=off",
        "-mon",
        "chardev=qmp,mode=control",
        "-chardev",
        f"socket,id=serial,fd={serial_fd},server=on,wait=off"
        + (",nodelay=on" if spec.serial is SerialTransport.TCP else ""),
        "-serial",
        "chardev:serial",
    ]
    if spec.bios is not None:
        argv += ["-bios", str(spec.bios)]
    if spec.paused:
        argv.append("-S")
    if spec.incoming:
        argv += ["-incoming", "defer"]
    return argv


class GuestVm:
    """A running QEMU process with the test guest, and its QMP connection.

    ``qmp`` is a connected :class:`qemu.qmp.QMPClient` for any raw command;
    ``serial_address`` is where a :class:`~migrator.testguest.heartbeat.HeartbeatMonitor`
    attaches.
    """

    def __init__(
        self,
        *,
        name: str,
        spec: GuestVmSpec,
        qmp_socket: Path,
        serial_address: SerialAddress,
        scratch: Path,
        process: asyncio.subprocess.Process,
    ) -> None:
        self.name = name
        self.spec = spec
        self.qmp = QMPClient(name)
        self.qmp_socket = qmp_socket
        self.serial_address = serial_address
        self._scratch = scratch
        self._process = process
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._stderr_reader = asyncio.create_task(self._collect_stderr(), name=f"{name} stderr")

    @classmethod
    async def launch(cls, spec: GuestVmSpec, *, directory: Path, name: str) -> GuestVm:
        """Start QEMU and connect to its QMP socket; files go in ``directory``.

        Raises:
            GuestHarnessError: a socket cannot be opened (for one, the path is too long).
            QemuProcessError: QEMU could not be started, exited before QMP answered, or QMP
                failed.
        """
        qmp_socket, serial_socket = directory / f"{name}.qmp", directory / f"{name}.serial"
        serial_address: SerialAddress
        listeners: list[socket.socket] = []
        try:
            listeners.append(_listen_unix(qmp_socket))
            if spec.serial is SerialTransport.UNIX:
                listeners.append(_listen_unix(serial_socket))
                serial_address = serial_socket
            else:
                listeners.append(_listen_loopback())
                host, port = listeners[1].getsockname()
                serial_address = (host, port)
            process = await _spawn(spec, qmp=listeners[0], serial=listeners[1])
        except BaseException:
            qmp_socket.unlink(missing_ok=True)
            serial_socket.unlink(missing_ok=True)
            raise
        finally:
            for listener in listeners:
                listener.close()
        vm = cls(
            name=name,
            spec=spec,
            qmp_socket=qmp_socket,
            serial_address=serial_address,
            scratch=directory / f"{name}.scratch",
            process=process,
        )
        try:
            await vm._connect()
        except BaseException:
            await vm.close()
            raise
        return vm

    @property
    def pid(self) -> int:
        """QEMU's process id."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """QEMU's exit status once it has exited and been reaped, else None."""
        return self._process.returncode

    @property
    def stderr_tail(self) -> tuple[str, ...]:
        """QEMU's last lines on stderr, oldest first."""
        return tuple(self._stderr)

    async def execute(self, command: str, arguments: Mapping[str, object] | None = None) -> object:
        """Run a QMP command and return its result.

        Raises:
            QemuProcessError: QEMU refused the command or the connection failed.
        """
        try:
            return await self.qmp.execute(command, arguments)
        except QMPError as err:
            if self.qmp.runstate is not Runstate.RUNNING:
                await self._await_exit()
            raise self._error(f"QMP {command} failed: {err}") from err

    async def read_status(self) -> GuestStatus:
        """The guest's status record, read while the guest runs.

        Raises:
            QemuProcessError: QMP failed.
            MemoryDumpError: the guest has not put a status record in place.
        """
        return await probe.read_status(self.execute, self._scratch)

    async def dump_memory(self, path: Path, *, size: int | None = None) -> None:
        """Write guest RAM from address 0 to ``path``, pausing the guest meanwhile if it runs.

        ``size`` bytes, all RAM by default. The dump is one consistent moment of the guest, as
        :func:`verify_memory_dump` needs.

        Raises:
            QemuProcessError: QMP failed.
        """
        size = self.spec.memory_mib * MIB if size is None else size
        await probe.dump_memory(self.execute, path, size=size)

    async def check_memory(self) -> MemoryCheck:
        """Dump guest RAM up to the end of the working set (see :meth:`dump_memory`), check it.

        The check runs in a worker thread, so that the event loop keeps reading serial output
        meanwhile.

        Raises:
            QemuProcessError: QMP failed.
            MemoryDumpError: the guest has no status record in place.
        """
        return await probe.check_memory(self.execute, self._scratch)

    async def close(self) -> None:
        """Disconnect QMP, kill QEMU if it still runs, reap it, remove its files."""
        # A connection that broke earlier re-raises its error here; nothing is left to close.
        with contextlib.suppress(QMPError, EOFError, OSError):
            await self.qmp.disconnect()
        if self._process.returncode is None:
            self._process.kill()
        await self._process.wait()
        await self._stderr_reader
        for path in (self.qmp_socket, self.serial_address, self._scratch):
            if isinstance(path, Path):
                path.unlink(missing_ok=True)

    async def _connect(self) -> None:
        # QEMU holds the only listening descriptor: if it dies, connecting fails rather than hangs
        try:
            await self.qmp.connect(str(self.qmp_socket))
        except QMPError as err:
            await self._await_exit()
            if self.returncode is not None:
                raise self._error("QEMU exited while starting") from err
            raise self._error(f"cannot connect to QMP at {self.qmp_socket}: {err}") from err

    async def _await_exit(self) -> None:
        """Give a QEMU that dropped its QMP connection a moment to exit, for a better error."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_EXIT_GRACE_SECONDS):
                await self._process.wait()
                await self._stderr_reader

    async def _collect_stderr(self) -> None:
        stream = self._process.stderr
        if stream is None:
            return
        async for line in stream:
            self._stderr.append(line.decode(errors="replace").rstrip())

    def _error(self, message: str) -> QemuProcessError:
        return QemuProcessError(
            message, returncode=self._process.returncode, stderr_tail=self.stderr_tail
        )


async def _spawn(
    spec: GuestVmSpec, *, qmp: socket.socket, serial: socket.socket
) -> asyncio.subprocess.Process:
    """Run QEMU with the QMP and serial listeners passed down as descriptors."""
    fds = (qmp.fileno(), serial.fileno())
    try:
        return await asyncio.create_subprocess_exec(
            *qemu_argv(spec, qmp_fd=fds[0], serial_fd=fds[1]),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=fds,
        )
    except OSError as err:
        raise QemuProcessError(
            f"cannot run {spec.binary}: {err.strerror or err}", returncode=None, stderr_tail=()
        ) from err


def _listen_loopback() -> socket.socket:
    """A listening TCP socket on a free loopback port.

    Raises:
        GuestHarnessError: no socket can be opened.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind((_LOOPBACK, 0))
        listener.listen()
    except OSError as err:
        listener.close()
        raise GuestHarnessError(f"cannot listen on {_LOOPBACK}: {err.strerror or err}") from err
    return listener


def guest_spec(
    kernel: Path, *, memory_mib: int, working_set_mib: int, dirty_rate_mib_s: int
) -> GuestVmSpec:
    """Write a test-guest kernel with that workload to ``kernel`` and return a spec that boots
    it with this machine's accelerator and the fastest firmware at hand."""
    kernel.write_bytes(
        build_kernel(working_set_mib=working_set_mib, dirty_rate_mib_s=dirty_rate_mib_s)
    )
    return GuestVmSpec(
        kernel=kernel, memory_mib=memory_mib, accel=detect_accel(), bios=default_bios()
    )


async def launch_running(
    spec: GuestVmSpec,
    *,
    directory: Path,
    name: str,
    monitor: HeartbeatMonitor,
    heartbeats: int,
) -> GuestVm:
    """Launch the guest paused, follow its serial port with ``monitor`` as source ``name``,
    let it run, and return it once ``heartbeats`` heartbeats have arrived (so that its first
    moments are on record). On failure the guest is closed again.

    Raises:
        GuestHarnessError: as :meth:`GuestVm.launch`, or the serial port cannot be followed.
        QemuProcessError: as :meth:`GuestVm.launch`.
    """
    vm = await GuestVm.launch(
        dataclasses.replace(spec, paused=True), directory=directory, name=name
    )
    try:
        await monitor.attach(vm.serial_address, name=name)
        await vm.execute("cont")
        await monitor.wait_for(lambda report: report.heartbeats >= heartbeats)
    except BaseException:
        await vm.close()
        raise
    return vm


def _listen_unix(path: Path) -> socket.socket:
    """A listening unix socket at ``path`` (replacing a stale one).

    Raises:
        GuestHarnessError: the path is too long or the socket cannot be bound there.
    """
    if len(os.fsencode(path)) > _UNIX_PATH_MAX:
        raise GuestHarnessError(f"socket path {path} is too long for a unix socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path.unlink(missing_ok=True)
        listener.bind(str(path))
        listener.listen()
    except OSError as err:
        listener.close()
        raise GuestHarnessError(f"cannot listen on {path}: {err.strerror or err}") from err
    return listener
