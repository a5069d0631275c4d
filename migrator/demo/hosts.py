"""The demo's two hosts, as the demo talks to them: a client over mutual TLS each.

With QEMU, each host is a ``migrator daemon`` subprocess (:mod:`migrator.demo.daemons`).
Without it, each is an in-process :class:`~migrator.daemon.service.Daemon` on the ``sim``
driver, both joined to one simulated world so that guests can migrate between them; the
demo's guest then gets a simulated workload of the same shape as the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from migrator.client import Client
from migrator.daemon.config import DaemonConfig, DriverKind
from migrator.daemon.service import Daemon
from migrator.demo.certificates import CLIENT_NAME, DemoCertificates
from migrator.demo.daemons import DaemonProcess, DaemonSpec
from migrator.demo.guest import LOOPBACK, GuestShape
from migrator.drivers.sim import SimWorld, Workload

HOST_NAMES = ("host-a", "host-b")
MiB = 1 << 20


@dataclass(frozen=True)
class DemoHost:
    """One host: its name, its TLS URI, and a client connected to it."""

    name: str
    uri: str
    client: Client


def _allowed_clients(name: str) -> tuple[str, ...]:
    """The other host (its peer-to-peer calls) and the demo's client."""
    return (*(other for other in HOST_NAMES if other != name), CLIENT_NAME)


async def start_qemu_hosts(
    stack: contextlib.AsyncExitStack, workdir: Path, *, certificates: DemoCertificates
) -> list[DemoHost]:
    """Start a daemon subprocess per host and connect to each; ``stack`` closes the clients
    and stops the daemons.

    Raises:
        DemoError: a daemon did not start.
        ClientError: a daemon cannot be reached.
    """
    specs = [
        DaemonSpec(
            name=name,
            directory=workdir / name,
            tls_dir=certificates.hosts[name],
            driver=DriverKind.QEMU.value,
            allowed_clients=_allowed_clients(name),
        )
        for name in HOST_NAMES
    ]
    started = await asyncio.gather(
        *(DaemonProcess.start(spec) for spec in specs), return_exceptions=True
    )
    daemons = [daemon for daemon in started if isinstance(daemon, DaemonProcess)]
    for daemon in daemons:
        stack.push_async_callback(daemon.stop)
    for outcome in started:
        if isinstance(outcome, BaseException):
            raise outcome
    return [
        await _connect(stack, daemon.spec.name, daemon.tls_uri, certificates=certificates)
        for daemon in daemons
    ]


async def start_simulated_hosts(
    stack: contextlib.AsyncExitStack,
    workdir: Path,
    *,
    certificates: DemoCertificates,
    guest: str,
    shape: GuestShape,
) -> list[DemoHost]:
    """Start an in-process ``sim`` daemon per host, in one world where ``guest`` works as
    ``shape`` says, and connect to each; ``stack`` closes the clients and the daemons.

    Raises:
        StateDirError, ConfigError: a daemon did not start.
        ClientError: a daemon cannot be reached.
    """
    world = SimWorld(record_trace=False)
    world.set_workload(
        guest,
        Workload(
            working_set_bytes=shape.working_set_mib * MiB,
            dirty_rate_bytes_s=shape.dirty_rate_mib_s * MiB,
            nonzero_bytes=shape.working_set_mib * MiB,
        ),
    )
    hosts = []
    for name in HOST_NAMES:
        config = DaemonConfig(
            state_dir=workdir / name / "state",
            listen=(LOOPBACK, 0),
            tls_dir=certificates.hosts[name],
            host_name=name,
            driver=DriverKind.SIM,
            allow_clients=frozenset(_allowed_clients(name)),
        )
        daemon = await stack.enter_async_context(Daemon(config, sim_world=world))
        assert daemon.tls_uri is not None, "a daemon with a listener has a TLS URI"
        hosts.append(await _connect(stack, name, daemon.tls_uri, certificates=certificates))
    return hosts


async def _connect(
    stack: contextlib.AsyncExitStack, name: str, uri: str, *, certificates: DemoCertificates
) -> DemoHost:
    client = await Client.connect(uri, tls_dir=certificates.client)
    await stack.enter_async_context(client)
    return DemoHost(name=name, uri=uri, client=client)
