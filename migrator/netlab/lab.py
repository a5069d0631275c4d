"""The lab: two network namespaces, a veth pair between them, partitions and shaping."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType

from migrator.netlab.errors import NetLabError, NetLabUnsupported

#: The /24 the lab's two addresses come from; the third octet tells labs apart.
SUBNET_PREFIX = "10.213"
#: How many bytes the token bucket may send at line rate, at least.
MIN_BURST_BYTES = 16 * 1024

_labs = itertools.count(1)


@dataclass(frozen=True)
class LabHost:
    """One end of the lab: its namespace, its veth interface and its address on the link."""

    name: str
    namespace: str
    interface: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


def unavailable() -> str | None:
    """Why no lab can be built on this machine, or None when one can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [tool for tool in ("ip", "tc", "ss") if shutil.which(tool) is None]
    if missing:
        return f"iproute2 is missing ({', '.join(missing)} not found)"
    return None


class NetLab:
    """Hosts ``a`` and ``b`` in their own namespaces, linked by a veth pair.

    Build one with :meth:`create`; :meth:`close` (or leaving ``async with``) removes
    everything it made. Programs run in a host's namespace with :meth:`LabHost.command`.
    """

    def __init__(self, a: LabHost, b: LabHost) -> None:
        self.a = a
        self.b = b
        self._closed = False

    @property
    def hosts(self) -> tuple[LabHost, LabHost]:
        return self.a, self.b

    @classmethod
    async def create(cls, *, names: tuple[str, str] = ("host-a", "host-b")) -> NetLab:
        """Create both namespaces, the link between them and its addresses.

        Raises:
            NetLabUnsupported: :func:`unavailable` names a reason.
            NetLabError: an ``ip`` command failed; what was made is removed again.
        """
        reason = unavailable()
        if reason is not None:
            raise NetLabUnsupported(f"cannot build a network lab: {reason}")
        tag = f"{os.getpid() % 100000}x{next(_labs)}"
        octet = (os.getpid() + next(_labs)) % 250 + 1
        hosts = tuple(
            LabHost(
                name=name,
                namespace=f"mig-{tag}-{end}",
                interface=f"mv{tag}{end}"[:15],
                address=f"{SUBNET_PREFIX}.{octet}.{number}",
            )
            for number, (name, end) in enumerate(zip(names, "ab", strict=True), start=1)
        )
        lab = cls(hosts[0], hosts[1])
        try:
            await lab._build()
        except BaseException:
            await lab.close()
            raise
        return lab

    async def _build(self) -> None:
        for host in self.hosts:
            await _run("ip", "netns", "add", host.namespace)
            await _run(*host.command(["ip", "link", "set", "lo", "up"]))
        a, b = self.hosts
        await _run(
            "ip", "link", "add", a.interface, "netns", a.namespace,
            "type", "veth", "peer", "name", b.interface, "netns", b.namespace,
        )  # fmt: skip
        for host in self.hosts:
            await _run(
                *host.command(["ip", "addr", "add", f"{host.address}/24", "dev", host.interface])
            )
            await _run(*host.command(["ip", "link", "set", host.interface, "up"]))

    async def __aenter__(self) -> NetLab:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def partition(self) -> None:
        """Cut the link: packets between the hosts are dropped until :meth:`heal`.

        Raises:
            NetLabError: ``ip`` failed.
        """
        await self._set_links("down")

    async def heal(self) -> None:
        """Bring the link back after :meth:`partition`.

        Raises:
            NetLabError: ``ip`` failed.
        """
        await self._set_links("up")

    async def partition_for(self, seconds: float) -> None:
        """Cut the link, wait ``seconds``, bring it back (also when cancelled meanwhile).

        Raises:
            NetLabError: ``ip`` failed.
        """
        await self.partition()
        try:
            await asyncio.sleep(seconds)
        finally:
            await asyncio.shield(self.heal())

    async def reset_connections(self, *, sparing: Iterable[int] = ()) -> None:
        """Reset every TCP connection between the hosts, except those to or from a port in
        ``sparing`` (each end sees its peer reset the connection).

        Raises:
            NetLabUnsupported: this kernel cannot destroy sockets (``ss -K``).
            NetLabError: ``ss`` failed otherwise.
        """
        spared = " or ".join(f"sport = :{port} or dport = :{port}" for port in sorted(sparing))
        for host, peer in ((self.a, self.b), (self.b, self.a)):
            selector = f"dst {peer.address}"
            if spared:
                selector += f" and not ( {spared} )"
            try:
                await _run(*host.command(["ss", "-K", "-t", "-n", selector]))
            except NetLabError as err:
                if "Operation not supported" in err.stderr:
                    raise NetLabUnsupported(
                        "this kernel cannot destroy sockets (ss -K)",
                        command=err.command,
                        stderr=err.stderr,
                    ) from None
                raise

    async def shape(self, *, rate_kbit: int | None = None, delay_ms: float | None = None) -> None:
        """Slow the link both ways: at most ``rate_kbit`` kbit/s and/or ``delay_ms`` added
        latency. A rate alone uses a token bucket (``tbf``); a delay needs ``netem``.

        Raises:
            NetLabUnsupported: the kernel lacks the queueing discipline needed.
            NetLabError: ``tc`` failed otherwise, or neither limit was given.
        """
        if rate_kbit is None and delay_ms is None:
            raise NetLabError("shape the link with a rate, a delay, or both")
        if delay_ms is not None:
            qdisc = ["netem", "delay", f"{delay_ms}ms"]
            if rate_kbit is not None:
                qdisc += ["rate", f"{rate_kbit}kbit"]
        else:
            assert rate_kbit is not None
            burst = max(MIN_BURST_BYTES, rate_kbit * 1000 // 8 // 100)
            qdisc = ["tbf", "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", "1s"]
        for host in self.hosts:
            command = host.command(
                ["tc", "qdisc", "replace", "dev", host.interface, "root", *qdisc]
            )
            try:
                await _run(*command)
            except NetLabError as err:
                if "qdisc kind is unknown" in err.stderr:
                    raise NetLabUnsupported(
                        f"this kernel has no '{qdisc[0]}' queueing discipline",
                        command=err.command,
                        stderr=err.stderr,
                    ) from None
                raise

    async def unshape(self) -> None:
        """Remove what :meth:`shape` set (nothing happens where nothing was set)."""
        for host in self.hosts:
            await _run(
                *host.command(["tc", "qdisc", "del", "dev", host.interface, "root"]), check=False
            )

    async def qdisc(self, host: LabHost) -> str:
        """What ``tc qdisc show`` says of ``host``'s end of the link.

        Raises:
            NetLabError: ``tc`` failed.
        """
        return await _run(*host.command(["tc", "qdisc", "show", "dev", host.interface]))

    async def close(self) -> None:
        """Remove both namespaces (which removes the link). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for host in self.hosts:
            await _run("ip", "netns", "del", host.namespace, check=False)

    async def _set_links(self, state: str) -> None:
        for host in self.hosts:
            await _run(*host.command(["ip", "link", "set", host.interface, state]))


async def _run(*argv: str, check: bool = True) -> str:
    """Run ``argv``; its standard output.

    Raises:
        NetLabError: it failed (with ``check``).
    """
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    text = stderr.decode(errors="replace").strip()
    if check and process.returncode != 0:
        raise NetLabError(
            f"'{' '.join(argv)}' failed: {text or f'exit status {process.returncode}'}",
            command=argv,
            stderr=text,
        )
    return stdout.decode(errors="replace")
