"""A QEMU process: one this daemon started (a child it reaps) or one it found running.

QEMU is never daemonized: a child runs in its own process group, its stderr (with its stdout,
where it says things like which pty a serial port got) goes into a bounded ring of lines for
error reports, and the driver reaps it. Both kinds are followed
through a pidfd, which tells of the exit without a helper thread and makes signals safe from
pid reuse. Children are started with :class:`subprocess.Popen`, not asyncio's subprocess
transport, which kills its child when it is closed or collected: QEMU must outlive the daemon
that started it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from migrator.drivers.base import DriverError

#: Bytes read from QEMU's stderr at a time, and the longest line kept whole.
_CHUNK = 65536


class QemuProcess:
    """A running QEMU process, followed through a pidfd."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self.pid = pid
        self._pidfd: int | None = pidfd
        loop = asyncio.get_running_loop()
        self._exit: asyncio.Future[None] = loop.create_future()
        loop.add_reader(pidfd, self._on_exit)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} pid={self.pid} exited={self.exited}>"

    @property
    def exited(self) -> bool:
        """True once the process has exited (a child: been reaped, its stderr read)."""
        return self._exit.done()

    async def wait(self) -> None:
        """Return once :attr:`exited`."""
        await asyncio.shield(self._exit)

    async def kill(self) -> None:
        """SIGKILL the process and wait for :attr:`exited`; nothing if it already exited."""
        if self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        await self.wait()

    def describe_exit(self) -> str:
        """How the process ended, as ``exited with status 1``."""
        return "exited" if self.exited else "is running"

    @property
    def stderr_tail(self) -> str:
        """QEMU's last stderr lines, oldest first ("" if unknown)."""
        return ""

    def release(self) -> None:
        """Stop following the process; it keeps running."""
        self._close_pidfd()

    def _on_exit(self) -> None:
        self._close_pidfd()
        self._exited()

    def _exited(self) -> None:
        """The process exited: what a subclass must do before :attr:`exited` comes true."""
        if not self._exit.done():
            self._exit.set_result(None)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None


class AdoptedProcess(QemuProcess):
    """QEMU started by an earlier daemon: its exit status and its stderr went to that one."""

    @classmethod
    def adopt(cls, pid: int) -> AdoptedProcess | None:
        """Follow process ``pid``; None if it does not exist."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return None
        return cls(pid, pidfd)


class StderrTail:
    """The last lines a pipe carried, read as they come; ``ended`` resolves at its end."""

    def __init__(self, fd: int, *, lines: int) -> None:
        self._fd = fd
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._partial = b""
        loop = asyncio.get_running_loop()
        self.ended: asyncio.Future[None] = loop.create_future()
        os.set_blocking(fd, False)
        loop.add_reader(fd, self._readable)

    @property
    def text(self) -> str:
        return "\n".join(self._lines)

    def close(self) -> None:
        """Stop reading: the writer gets EPIPE from now on (QEMU ignores SIGPIPE)."""
        if not self.ended.done():
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self.ended.set_result(None)

    def _readable(self) -> None:
        try:
            chunk = os.read(self._fd, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._keep(self._partial)
            self.close()
            return
        *complete, partial = (self._partial + chunk).split(b"\n")
        for line in complete:
            self._keep(line)
        if len(partial) >= _CHUNK:  # a line without an end is cut, so memory stays bounded
            self._keep(partial)
            partial = b""
        self._partial = partial

    def _keep(self, line: bytes) -> None:
        if line:
            self._lines.append(line.decode(errors="replace").rstrip())


class ChildProcess(QemuProcess):
    """QEMU started by this daemon: reaped when it exits, its stderr read as it comes.

    Once released its stderr pipe is closed, as when the daemon exits; it is still reaped
    when it exits, so that it never stays a zombie of a daemon that lives on.
    """

    def __init__(self, popen: subprocess.Popen[bytes], *, stderr_lines: int, grace_s: float):
        assert popen.stdout is not None
        self._popen = popen
        self._grace_s = grace_s
        self._stderr = StderrTail(os.dup(popen.stdout.fileno()), lines=stderr_lines)
        popen.stdout.close()
        # An unreaped child keeps its pid: the pidfd names this very process.
        super().__init__(popen.pid, os.pidfd_open(popen.pid))
        self._finisher: asyncio.Task[None] | None = None  # held: the loop keeps weak refs

    @classmethod
    def spawn(
        cls, argv: Sequence[str], *, pass_fds: Sequence[int], stderr_lines: int, grace_s: float
    ) -> ChildProcess:
        """Start ``argv`` in its own process group, keeping ``pass_fds`` open in it.

        Raises:
            DriverError: the binary cannot be run.
        """
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
                process_group=0,
            )
        except OSError as err:
            raise DriverError(f"cannot run {argv[0]}: {err.strerror or err}") from err
        return cls(popen, stderr_lines=stderr_lines, grace_s=grace_s)

    def describe_exit(self) -> str:
        code = self._popen.returncode
        if code is None:
            return "is running"
        if code >= 0:
            return f"exited with status {code}"
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:  # a real-time signal has no name
            return f"was killed by signal {-code}"

    @property
    def stderr_tail(self) -> str:
        return self._stderr.text

    def release(self) -> None:
        self._stderr.close()

    def _exited(self) -> None:
        self._popen.wait()  # reaps at once: the pidfd said it exited
        self._finisher = asyncio.get_running_loop().create_task(self._finish())

    async def _finish(self) -> None:
        # The last lines are the interesting ones; the pipe closes with the process.
        await asyncio.wait((self._stderr.ended,), timeout=self._grace_s)
        super()._exited()
