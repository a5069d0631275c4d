"""The ``qemu`` driver: real QEMU processes driven over QMP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import params
from migrator.domain import Domain, GraphicsType
from migrator.drivers.base import Driver, DriverError, StartMode
from migrator.drivers.events import EventHub
from migrator.drivers.qemu.argv import build_launch_plan, effective_domain
from migrator.drivers.qemu.host import accel_for, emulator, free_tcp_port, has_spice
from migrator.drivers.qemu.instance import Lifecycle, QEMUInstance
from migrator.drivers.qemu.monitor import Monitor
from migrator.drivers.qemu.options import QemuOptions
from migrator.drivers.qemu.plan import LaunchSpec
from migrator.drivers.qemu.process import AdoptedProcess, ChildProcess, QemuProcess
from migrator.drivers.qemu.rundir import RunPaths


class QEMUDriver(Driver):
    """Starts QEMU for guests on this host; their QMP sockets and pidfiles go in ``run_dir``.

    Each guest gets ``run_dir/NAME/`` with ``qmp.sock`` and ``qemu.pid``. A driver created
    later on the same ``run_dir`` (a restarted daemon) finds them again with :meth:`attach`.
    :meth:`close` detaches the instances: QEMU keeps running. ``tls_dir`` is the host's
    certificate directory, which QEMU reads for encrypted migration streams.
    """

    name = "qemu"

    def __init__(
        self,
        run_dir: Path,
        *,
        options: QemuOptions | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.options = options or QemuOptions()
        self.tls_dir = tls_dir
        self._instances: dict[str, QEMUInstance] = {}
        self._starting: set[str] = set()
        self._spice: dict[str, bool] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<QEMUDriver run_dir={str(self.run_dir)!r} guests={sorted(self._instances)}>"

    async def start(self, domain: Domain, *, mode: StartMode) -> QEMUInstance:
        """Start QEMU for ``domain``; return once QMP answers, ``events`` is on and the
        definition's QMP setup (display passwords, balloon) is done. ``PAUSED`` and
        ``INCOMING`` guests start with ``-S``; ``INCOMING`` ones also with ``-incoming defer``.

        Raises:
            UnsupportedConfig: the definition asks for something this driver cannot run.
            DriverError: the driver is closed, the domain already runs here, or QEMU could
                not be started or exited while starting (``detail``: its last stderr lines).
            CommandFailed: QEMU refused a setup command.
            InstanceGone: QEMU went away during setup.
        """
        self._check_open()
        name = domain.name
        paths = RunPaths.of(self.run_dir, name)
        if name in self._starting or name in self._instances:
            raise DriverError(f"domain '{name}' is already running", instance=name)
        pid = paths.running_pid()
        if pid is not None:
            raise DriverError(
                f"domain '{name}' is already running (QEMU pid {pid}, not attached)",
                instance=name,
            )
        self._starting.add(name)
        try:
            return await self._launch(domain, mode=mode, paths=paths)
        finally:
            self._starting.discard(name)

    async def _launch(self, domain: Domain, *, mode: StartMode, paths: RunPaths) -> QEMUInstance:
        listener = paths.bind_monitor()
        try:
            spec = await self._spec(
                effective_domain(domain), mode=mode, paths=paths, monitor_fd=listener.fileno()
            )
            plan = build_launch_plan(domain, spec)
            process = ChildProcess.spawn(
                plan.argv,
                pass_fds=(listener.fileno(),),
                stderr_lines=self.options.stderr_lines,
                grace_s=self.options.exit_grace_s,
            )
        except BaseException:
            paths.remove()
            raise
        finally:
            listener.close()
        instance = await self._connect(domain, process=process, paths=paths, starting=True)
        self._instances[domain.name] = instance
        try:
            supported = await instance.supported_capabilities()
            startup = params.startup_capabilities(supported=supported)
            if startup:
                await instance.set_capabilities(list(startup))
            for command in plan.setup:
                if not (command.guest_state and mode is StartMode.INCOMING):
                    await instance.execute(command.command, command.arguments)
        except BaseException:
            await instance.kill()
            raise
        return instance

    async def _spec(
        self, domain: Domain, *, mode: StartMode, paths: RunPaths, monitor_fd: int
    ) -> LaunchSpec:
        """The host's side of the command line of ``domain`` (defaults filled in)."""
        options = self.options
        binary = emulator(domain, options)
        spice = [g for g in domain.devices.graphics if g.type is GraphicsType.SPICE]
        spice_port = None
        if any(display.autoport for display in spice):
            listen = spice[0].listen or options.graphics_listen
            try:
                spice_port = free_tcp_port(listen)
            except OSError as err:
                raise DriverError(
                    f"cannot pick a SPICE port on {listen}: {err.strerror or err}",
                    instance=domain.name,
                ) from err
        firmware = None
        if domain.os.kernel is not None and options.qboot and options.qboot_rom.is_file():
            firmware = str(options.qboot_rom)
        return LaunchSpec(
            binary=binary,
            accel=accel_for(domain, options),
            kernel_firmware=firmware,
            monitor_fd=monitor_fd,
            pidfile=str(paths.pidfile),
            mode=mode,
            spice=bool(spice) and await self._has_spice(binary),
            graphics_listen=options.graphics_listen,
            spice_port=spice_port,
        )

    async def _has_spice(self, binary: str) -> bool:
        if binary not in self._spice:
            self._spice[binary] = await has_spice(binary)
        return self._spice[binary]

    async def _connect(
        self, domain: Domain, *, process: QemuProcess, paths: RunPaths, starting: bool
    ) -> QEMUInstance:
        """Connect to QEMU's QMP socket, racing QEMU's exit; the instance that follows it.

        On failure QEMU is killed if this driver started it (``starting``), released if not.

        Raises:
            DriverError: QEMU exited first, QMP failed, or it did not answer in time.
        """
        name = domain.name
        hub = EventHub()
        monitor = Monitor(name, on_event=hub.publish)
        connect = asyncio.ensure_future(monitor.connect(str(paths.monitor)))
        exited = asyncio.ensure_future(process.wait())
        try:
            await asyncio.wait(
                (connect, exited),
                timeout=self.options.start_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if connect.done() and connect.exception() is None:
                return QEMUInstance(
                    name=name,
                    process=process,
                    monitor=monitor,
                    hub=hub,
                    displays=[display.type for display in domain.devices.graphics],
                    grace_s=self.options.exit_grace_s,
                    on_end=self._forget,
                    tls_dir=self.tls_dir,
                )
            problem = "did not answer on QMP in time"
            if connect.done():
                problem = f"failed on QMP: {connect.exception()}"
                # QMP usually notices first when QEMU dies: wait for its exit report.
                await asyncio.wait((exited,), timeout=self.options.exit_grace_s)
            if exited.done():
                problem = process.describe_exit()
        except BaseException:
            await self._abandon(process, monitor, paths, starting=starting)
            raise
        finally:
            for task in (connect, exited):
                task.cancel()
            await asyncio.gather(connect, exited, return_exceptions=True)
        await self._abandon(process, monitor, paths, starting=starting)
        raise DriverError(
            f"QEMU (pid {process.pid}) of domain '{name}' {problem}",
            instance=name,
            detail=process.stderr_tail,
        )

    @staticmethod
    async def _abandon(
        process: QemuProcess, monitor: Monitor, paths: RunPaths, *, starting: bool
    ) -> None:
        await monitor.close()
        if starting:
            await process.kill()
            paths.remove()
        else:
            process.release()

    def _forget(self, instance: QEMUInstance) -> None:
        """An instance ended: forget it, and its files once QEMU is gone."""
        if self._instances.get(instance.name) is instance:
            del self._instances[instance.name]
        if instance.lifecycle is Lifecycle.EXITED:
            RunPaths.of(self.run_dir, instance.name).remove()

    async def attach(self, domain: Domain) -> QEMUInstance | None:
        """Reconnect to QEMU of ``domain`` started by a driver on the same run directory.

        Capabilities are left as they are (``events`` was turned on at start). Returns None,
        and removes stale files, when that QEMU is gone.

        Raises:
            DriverError: the driver is closed, or QEMU runs but QMP does not answer.
        """
        self._check_open()
        name = domain.name
        running = self._instances.get(name)
        if running is not None:
            return running
        paths = RunPaths.of(self.run_dir, name)
        pid = paths.running_pid()
        process = None if pid is None else AdoptedProcess.adopt(pid)
        # Checked again with the pidfd open: it now pins the process that was checked.
        if process is None or paths.running_pid() != pid:
            if process is not None:
                process.release()
            paths.remove()
            return None
        instance = await self._connect(domain, process=process, paths=paths, starting=False)
        self._instances[name] = instance
        return instance

    async def close(self) -> None:
        """Detach every instance (QEMU keeps running) and refuse further starts."""
        self._closed = True
        for instance in list(self._instances.values()):
            await instance.detach()

    def _check_open(self) -> None:
        if self._closed:
            raise DriverError(f"the qemu driver of {self.run_dir} is closed")
