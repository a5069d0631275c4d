"""Fixtures for the transport tests: certificates, limits, servers and raw hostile peers."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

from transport import Connection, Limits, RemoteError, Server, TLSServerConfig, certdir, pki

#: Small limits so that the hostile-peer and keepalive tests finish quickly. The keepalive
#: still allows 2 s of silence: a loaded CI machine can stall an event loop for most of a
#: second, and a test's well-behaved connection must not be dropped for it.
FAST = Limits(
    frame_timeout=1.0,
    handshake_timeout=2.0,
    keepalive_interval=0.5,
    keepalive_missed=4,
    close_timeout=0.5,
)

#: The hello a raw test peer sends first.
HELLO = msgpack.packb([0, 0, "transport.hello", {"version": 1}])

#: Names allowed to connect to the TLS test server.
ALLOWED_CLIENTS = frozenset({"host-b"})


@dataclass(frozen=True)
class Pki:
    """Host directories (certdir layout) for every TLS test case."""

    root: Path
    server: Path  # host-a, 127.0.0.1
    client: Path  # host-b, on the allow-list
    not_allowed: Path  # host-z, valid but not on the allow-list
    rogue: Path  # host-b, signed by another CA
    expired: Path  # host-b, not_valid_after in the past
    expired_server: Path  # host-a, not_valid_after in the past


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    certdir.create_ca(root)
    for name in ("host-a", "host-b", "host-z"):
        certdir.issue(root, name=name, ips=["127.0.0.1"])
    ca = certdir.load_ca(root)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    day = dt.timedelta(days=1)
    for directory, name in (("expired", "host-b"), ("expired-server", "host-a")):
        old = pki.issue_host(ca, name=name, ips=["127.0.0.1"], valid_for=day, now=long_ago)
        certdir.write_host_directory(root / directory, ca_certificate=ca.certificate, host=old)
    rogue_ca = pki.new_ca(name="rogue-ca", valid_for=day)
    rogue = pki.issue_host(rogue_ca, name="host-b", ips=["127.0.0.1"], valid_for=day)
    # The rogue client trusts the cluster CA, so only its own certificate is at fault.
    certdir.write_host_directory(root / "rogue", ca_certificate=ca.certificate, host=rogue)
    return Pki(
        root=root,
        server=root / "host-a",
        client=root / "host-b",
        not_allowed=root / "host-z",
        rogue=root / "rogue",
        expired=root / "expired",
        expired_server=root / "expired-server",
    )


class Methods:
    """The methods a test server offers, with a record of what they saw."""

    def __init__(self) -> None:
        self.notes: list[Any] = []
        self.cancelled: list[Any] = []
        self.hanging = 0
        self.running = 0
        self.most_running = 0
        self._changed = asyncio.Condition()

    def table(self) -> dict[str, Any]:
        return {
            "echo": self.echo,
            "repeat": self.repeat,
            "fail": self.fail,
            "crash": self.crash,
            "hang": self.hang,
            "slow_echo": self.slow_echo,
            "note": self.note,
            "push": self.push,
            "call_back": self.call_back,
            "whoami": self.whoami,
        }

    async def echo(self, params: Any, connection: Connection) -> Any:
        return params

    async def repeat(self, params: Any, connection: Connection) -> Any:
        return "x" * params

    async def fail(self, params: Any, connection: Connection) -> Any:
        raise RemoteError("no such domain", code="domain-not-found", details={"name": params})

    async def crash(self, params: Any, connection: Connection) -> Any:
        raise KeyError(params)

    async def hang(self, params: Any, connection: Connection) -> Any:
        self.hanging += 1
        await self._notify()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(params)
            await self._notify()
            raise

    async def slow_echo(self, params: Any, connection: Connection) -> Any:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(0.001)
            return params
        finally:
            self.running -= 1

    async def note(self, params: Any, connection: Connection) -> None:
        self.notes.append(params)
        await self._notify()

    async def push(self, params: Any, connection: Connection) -> None:
        for index in range(params):
            await connection.notify("pushed", index)

    async def call_back(self, params: Any, connection: Connection) -> Any:
        return await connection.call("client_echo", params)

    async def whoami(self, params: Any, connection: Connection) -> Any:
        return connection.peer_name

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds; it is checked after every change."""
        async with asyncio.timeout(10), self._changed:  # the timeout only stops a broken test
            await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


@pytest.fixture
def methods() -> Methods:
    return Methods()


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "t.sock"


@pytest.fixture
async def unix_server(methods: Methods, socket_path: Path) -> AsyncIterator[Server]:
    async with Server(methods.table(), limits=FAST, name="test") as server:
        await server.listen_unix(socket_path)
        yield server


@pytest.fixture
async def tls_server(methods: Methods, certs: Pki) -> AsyncIterator[tuple[Server, int]]:
    tls = TLSServerConfig.from_dir(certs.server, allowed_clients=ALLOWED_CLIENTS)
    async with Server(methods.table(), limits=FAST, name="test") as server:
        _, port = await server.listen_tls("127.0.0.1", 0, tls=tls)
        yield server, port


@pytest.fixture(autouse=True)
async def no_unhandled_loop_errors() -> AsyncIterator[None]:
    """Fail a test whose event loop reported an unhandled error (a task that crashed)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    yield
    loop.set_exception_handler(None)
    assert not reported, f"unhandled errors in the event loop: {reported}"


class LogWatch(logging.Handler):
    """Lets a test wait for a log line from the ``transport`` loggers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self._logged = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self._logged.set()

    async def wait_for(self, text: str) -> str:
        """The first line containing ``text``, once one has been logged."""
        async with asyncio.timeout(10):  # only stops a broken test from hanging
            while not (found := [line for line in self.lines if text in line]):
                self._logged.clear()
                await self._logged.wait()
        return found[0]


@pytest.fixture
def transport_log() -> Iterator[LogWatch]:
    watch = LogWatch()
    logger = logging.getLogger("transport")
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)


async def closed_except(server: Server, keep: Connection) -> None:
    """Wait until every connection of ``server`` but ``keep`` has closed."""
    for connection in server.connections:
        if connection is not keep:
            await connection.wait_closed()
