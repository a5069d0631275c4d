"""Calls, notifications, errors, cancellation and closing, over a real unix socket."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from transport import (
    CallTimeout,
    ConfigError,
    ConnectError,
    Connection,
    ConnectionClosed,
    EncodeError,
    LimitExceeded,
    Limits,
    MethodNotFound,
    PeerLost,
    RemoteError,
    Runstate,
    Server,
    connect_unix,
)

from .conftest import FAST, LogWatch, Methods


async def test_calls_round_trip_values(unix_server: Server, socket_path: Path) -> None:
    value = {"name": "vm1", "sizes": [1, 2**40, -3], "blob": b"\x00\xff", "ok": True, "f": 0.5}
    async with await connect_unix(socket_path, limits=FAST) as connection:
        assert connection.state is Runstate.OPEN
        assert connection.peer_name is None
        assert await connection.call("echo", value) == value
        assert await connection.call("echo") is None


async def test_errors_cross_as_structured_values(
    unix_server: Server, socket_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await connect_unix(socket_path, limits=FAST) as connection:
        with pytest.raises(RemoteError) as remote:
            await connection.call("fail", "vm1")
        assert (remote.value.code, remote.value.message) == ("domain-not-found", "no such domain")
        assert remote.value.details == {"name": "vm1"}
        with pytest.raises(MethodNotFound, match="'nosuch'"):
            await connection.call("nosuch")
        with pytest.raises(RemoteError, match="internal error") as internal:
            await connection.call("crash", "key")
        assert internal.value.code == "internal-error"
        assert "KeyError" in caplog.text  # the server logged the traceback
        assert await connection.call("echo", 1) == 1  # errors do not close the connection


async def test_many_concurrent_calls_on_one_connection(methods: Methods, socket_path: Path) -> None:
    limits = Limits(max_in_flight=16)
    async with Server(methods.table(), limits=limits) as server:
        await server.listen_unix(socket_path)
        async with await connect_unix(socket_path, limits=limits) as connection:
            results = await asyncio.gather(
                *(connection.call("slow_echo", index) for index in range(500))
            )
    assert results == list(range(500))
    assert 1 < methods.most_running <= 16


async def test_a_peer_past_its_in_flight_limit_gets_a_limit_error(
    methods: Methods, socket_path: Path
) -> None:
    async with Server(methods.table(), limits=Limits(max_in_flight=2)) as server:
        await server.listen_unix(socket_path)
        async with await connect_unix(socket_path, limits=Limits(max_in_flight=8)) as connection:
            hanging = [asyncio.create_task(connection.call("hang", n)) for n in range(2)]
            await methods.until(lambda: methods.hanging == 2)
            with pytest.raises(LimitExceeded) as refused:
                await connection.call("echo", 3)
            assert refused.value.limit == "max_in_flight"
            for task in hanging:
                task.cancel()
            await methods.until(lambda: len(methods.cancelled) == 2)
            assert await connection.call("echo", 4) == 4


async def test_cancelling_a_call_cancels_it_on_the_peer(
    unix_server: Server, methods: Methods, socket_path: Path
) -> None:
    async with await connect_unix(socket_path, limits=FAST) as connection:
        call = asyncio.create_task(connection.call("hang", "first"))
        await methods.until(lambda: methods.hanging == 1)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await methods.until(lambda: methods.cancelled == ["first"])
        assert await connection.call("echo", "still open") == "still open"


async def test_a_call_timeout_has_an_unknown_outcome_and_cancels_on_the_peer(
    unix_server: Server, methods: Methods, socket_path: Path
) -> None:
    async with await connect_unix(socket_path, limits=FAST) as connection:
        with pytest.raises(CallTimeout, match="outcome is unknown"):
            await connection.call("hang", "timed", timeout=0.05)
        await methods.until(lambda: methods.cancelled == ["timed"])
        assert await connection.call("echo", 2, timeout=5) == 2


async def test_waiting_for_a_call_slot_is_bounded_by_the_timeout(
    methods: Methods, socket_path: Path
) -> None:
    async with Server(methods.table()) as server:
        await server.listen_unix(socket_path)
        async with await connect_unix(socket_path, limits=Limits(max_in_flight=1)) as connection:
            hanging = asyncio.create_task(connection.call("hang"))
            await methods.until(lambda: methods.hanging == 1)
            with pytest.raises(LimitExceeded, match="no free call slot") as caught:
                await connection.call("echo", timeout=0.05)
            assert caught.value.limit == "max_in_flight"
            hanging.cancel()
            assert await connection.call("echo", 1) == 1


async def test_notifications_arrive_in_order_both_ways(
    unix_server: Server, methods: Methods, socket_path: Path
) -> None:
    pushed: list[int] = []
    done = asyncio.Event()

    async def on_pushed(params: Any, connection: Connection) -> None:
        await asyncio.sleep(0)  # a handler that yields must not let a later one overtake
        pushed.append(params)
        if len(pushed) == 200:
            done.set()

    async with await connect_unix(
        socket_path, limits=FAST, methods={"pushed": on_pushed}
    ) as connection:
        for index in range(200):
            await connection.notify("note", index)
        await methods.until(lambda: len(methods.notes) == 200)
        assert methods.notes == list(range(200))
        await connection.call("push", 200)
        await done.wait()
    assert pushed == list(range(200))


async def test_the_server_can_call_back_its_client(unix_server: Server, socket_path: Path) -> None:
    async def client_echo(params: Any, connection: Connection) -> Any:
        return ["from client", params]

    async with await connect_unix(
        socket_path, limits=FAST, methods={"client_echo": client_echo}
    ) as connection:
        assert await connection.call("call_back", 5) == ["from client", 5]


async def test_the_server_pushes_to_a_given_connection(
    unix_server: Server, socket_path: Path
) -> None:
    seen: asyncio.Queue[Any] = asyncio.Queue()

    async def on_event(params: Any, connection: Connection) -> None:
        await seen.put(params)

    async with await connect_unix(socket_path, limits=FAST, methods={"event": on_event}):
        (server_side,) = unix_server.connections
        await server_side.notify("event", {"job": "migrate", "progress": 50})
        assert await seen.get() == {"job": "migrate", "progress": 50}


async def test_closing_fails_calls_in_flight_with_peer_lost(
    unix_server: Server, methods: Methods, socket_path: Path
) -> None:
    connection = await connect_unix(socket_path, limits=FAST)
    call = asyncio.create_task(connection.call("hang"))
    await methods.until(lambda: methods.hanging == 1)
    await unix_server.close()
    with pytest.raises(PeerLost, match="outcome is unknown"):
        await call
    reason = await connection.wait_closed()
    assert isinstance(reason, ConnectionClosed)
    assert connection.state is Runstate.CLOSED
    with pytest.raises(ConnectionClosed, match="closed"):
        await connection.call("echo")
    with pytest.raises(ConnectionClosed):
        await connection.notify("note")


async def test_local_close_fails_own_calls_and_cancels_served_ones(
    unix_server: Server, methods: Methods, socket_path: Path
) -> None:
    connection = await connect_unix(socket_path, limits=FAST)
    (server_side,) = unix_server.connections
    call = asyncio.create_task(connection.call("hang", "mine"))
    await methods.until(lambda: methods.hanging == 1)
    await connection.close()
    with pytest.raises(PeerLost):
        await call
    await methods.until(lambda: methods.cancelled == ["mine"])
    await server_side.wait_closed()
    assert not unix_server.connections


async def test_outgoing_limits_and_bad_values_are_refused_locally(
    unix_server: Server, socket_path: Path
) -> None:
    limits = Limits(max_frame_bytes=1024)
    async with await connect_unix(socket_path, limits=limits) as connection:
        with pytest.raises(LimitExceeded, match="max_frame_bytes"):
            await connection.call("echo", "x" * 2000)
        with pytest.raises(EncodeError):
            await connection.call("echo", {1.5, 2.5})
        with pytest.raises(ConfigError, match="reserved"):
            await connection.call("transport.ping")
        with pytest.raises(ConfigError, match="reserved"):
            await connection.notify("transport.cancel", [1])
        assert await connection.call("echo", "small") == "small"


async def test_an_answer_too_large_for_the_frame_limit_becomes_an_error(
    methods: Methods, socket_path: Path
) -> None:
    async with Server(methods.table(), limits=Limits(max_frame_bytes=1024)) as server:
        await server.listen_unix(socket_path)
        async with await connect_unix(socket_path) as connection:
            with pytest.raises(LimitExceeded, match="answer is"):
                await connection.call("repeat", 2000)
            assert await connection.call("echo", "fits") == "fits"


async def test_keepalive_keeps_an_idle_healthy_connection(
    unix_server: Server, socket_path: Path
) -> None:
    async with await connect_unix(socket_path, limits=FAST) as connection:
        await asyncio.sleep(FAST.silence_allowed * 3)
        assert connection.state is Runstate.OPEN
        assert await connection.call("echo", "alive") == "alive"


async def test_the_socket_is_private_to_its_owner(unix_server: Server, socket_path: Path) -> None:
    mode = os.stat(socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


async def test_socket_paths_in_use_are_refused_and_stale_ones_replaced(
    unix_server: Server, methods: Methods, socket_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="another server is listening"):
        await Server(methods.table()).listen_unix(socket_path)
    plain_file = tmp_path / "file"
    plain_file.write_text("data")
    with pytest.raises(ConfigError, match="not a socket"):
        await Server(methods.table()).listen_unix(plain_file)
    stale_path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(os.fspath(stale_path))
    async with Server(methods.table()) as server:
        await server.listen_unix(stale_path)
        async with await connect_unix(stale_path) as connection:
            assert await connection.call("echo", 1) == 1
    assert not stale_path.exists()


async def test_connecting_to_nobody_is_a_connect_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match="cannot connect"):
        await connect_unix(tmp_path / "nobody.sock")


def test_reserved_method_names_are_refused() -> None:
    async def handler(params: Any, connection: Connection) -> None:
        return None

    with pytest.raises(ConfigError, match="reserved"):
        Server({"transport.hello": handler})
    with pytest.raises(ConfigError, match="empty"):
        Server({"": handler})


async def test_a_notification_backlog_past_its_limit_closes_the_connection(
    socket_path: Path, transport_log: LogWatch
) -> None:
    release = asyncio.Event()

    async def slow_note(params: Any, connection: Connection) -> None:
        await release.wait()

    limits = Limits(max_queued_notifications=4)
    async with Server({"slow_note": slow_note}, limits=limits) as server:
        await server.listen_unix(socket_path)
        connection = await connect_unix(socket_path)
        (server_side,) = server.connections
        for index in range(6):  # one is being handled, four wait, the sixth is one too many
            await connection.notify("slow_note", index)
        reason = await server_side.wait_closed()
        assert isinstance(reason, LimitExceeded)
        assert reason.limit == "max_queued_notifications"
        assert "max_queued_notifications" in await transport_log.wait_for("closing")
        assert isinstance(await connection.wait_closed(), ConnectionClosed)


async def test_connections_past_the_server_limit_are_refused(
    methods: Methods, socket_path: Path, transport_log: LogWatch
) -> None:
    async with Server(methods.table(), limits=Limits(max_connections=1)) as server:
        await server.listen_unix(socket_path)
        async with await connect_unix(socket_path) as first:
            (first_on_server,) = server.connections
            with pytest.raises(ConnectError, match="closed the connection during the hello"):
                await connect_unix(socket_path)
            assert "max_connections" in await transport_log.wait_for("refusing")
            assert await first.call("echo", "first") == "first"
        await first_on_server.wait_closed()
        async with await connect_unix(socket_path) as again:  # the slot is free again
            assert await again.call("echo", 2) == 2
