"""One msgpack-RPC connection, full duplex: either side may call, answer and notify.

The client side opens with a hello request; the server answers it (or refuses the client's
identity) and only then does either side call or notify. Connections come from
:func:`transport.client.connect_unix`, :func:`transport.client.connect_tls` and
:class:`transport.server.Server`.

Upper half (runs in the caller's task): :meth:`Connection.call`, :meth:`Connection.notify`,
:meth:`Connection.close`, :meth:`Connection.wait_closed`.

Bottom half (runs in the connection's own tasks and timers): the reader, which decodes frames
and dispatches them; the keepalive timer; the task that delivers notifications in order; one
task per incoming call. They never raise into a caller: any failure closes the connection,
and every call still in flight then fails with :class:`~transport.errors.PeerLost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from transport.errors import (
    AuthenticationError,
    CallTimeout,
    ConfigError,
    ConnectionClosed,
    LimitExceeded,
    MethodNotFound,
    PeerLost,
    ProtocolViolation,
    TransportError,
    WireError,
    error_from_wire,
)
from transport.framing import FrameDecoder
from transport.limits import Limits
from transport.messages import (
    MAX_MSGID,
    PROTOCOL_VERSION,
    ControlMethod,
    Message,
    Notification,
    Request,
    Response,
    decode,
    encode,
    is_reserved,
)

#: An RPC method: ``await handler(params, connection)`` returns the result. It reports a
#: failure to the caller by raising :class:`~transport.errors.RemoteError` (or any
#: ``TransportError``); any other exception reaches the caller as ``internal-error`` and is
#: logged here. For a notification the result is ignored.
MethodHandler = Callable[[Any, "Connection"], Awaitable[Any]]

_LOG = logging.getLogger("transport.connection")

#: Bytes asked of the socket per read.
_READ_CHUNK = 64 * 1024

#: What the hello carries both ways.
_HELLO = {"version": PROTOCOL_VERSION}


class Role(enum.Enum):
    """Which end of the hello a connection is."""

    CLIENT = enum.auto()
    SERVER = enum.auto()


class Runstate(enum.Enum):
    """Lifecycle of a connection."""

    HANDSHAKE = enum.auto()  # waiting for the hello exchange
    OPEN = enum.auto()
    CLOSING = enum.auto()
    CLOSED = enum.auto()


def check_methods(methods: Mapping[str, MethodHandler]) -> None:
    """Refuse a method table that uses the transport's reserved names.

    Raises:
        ConfigError: a name is empty or starts with ``transport.``.
    """
    for name in methods:
        _check_method_name(name)


class _ConnectionLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"[{self.extra['connection'] if self.extra else '?'}] {msg}", kwargs


class Connection:
    """A msgpack-RPC connection over an asyncio stream; see the module docstring.

    Usable as an async context manager (closing on exit). ``peer_name`` is the name the peer
    proved with its certificate (the server name a client asked for, the allow-listed name of
    a client), or None on a unix socket.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        role: Role,
        label: str,
        methods: Mapping[str, MethodHandler],
        limits: Limits,
        peer_name: str | None = None,
        refusal: AuthenticationError | None = None,
        handshake_deadline: float | None = None,
        on_closed: Callable[[Connection], None] | None = None,
    ) -> None:
        """Take over an open stream and start reading it.

        Args:
            role: the client sends the hello (:meth:`confirm_session`); the server answers.
            label: names the connection in logs and errors.
            refusal: server role: the client's identity was refused; the hello is answered
                with this error and the connection closed.
            handshake_deadline: server role: loop time by which the hello must have come.
            on_closed: called once the connection is fully closed.
        """
        check_methods(methods)
        self.label = label
        self.peer_name = peer_name
        self._reader = reader
        self._writer = writer
        self._role = role
        self._methods = methods
        self._limits = limits
        self._refusal = refusal
        self._handshake_deadline = handshake_deadline
        self._on_closed = on_closed
        self._log = _ConnectionLog(_LOG, {"connection": label})
        self._loop = asyncio.get_running_loop()

        self._state = Runstate.HANDSHAKE
        self._cause: TransportError | None = None
        self._closed = asyncio.Event()
        self._decoder = FrameDecoder(limits)
        self._frame_started: float | None = None
        self._last_heard = self._loop.time()
        self._next_ping = 0.0
        self._keepalive: asyncio.Handle | None = None

        self._outbox: list[bytes] = []
        self._next_msgid = 0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._slots = asyncio.Semaphore(limits.max_in_flight)
        self._serving: dict[int, asyncio.Task[None]] = {}
        self._notifications: asyncio.Queue[Notification] | None = None
        self._notifier: asyncio.Task[None] | None = None
        self._flush_notifications = False

        self._reader_task = asyncio.create_task(self._run())

    def __repr__(self) -> str:
        return f"<Connection {self.label!r} {self._state.name}>"

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----------------------------------------------------------------- upper half

    @property
    def state(self) -> Runstate:
        """Where the connection is in its lifecycle."""
        return self._state

    @property
    def close_reason(self) -> TransportError | None:
        """Why the connection closed or is closing; None while it is open."""
        return self._cause

    async def call(
        self,
        method: str,
        params: Any = None,
        *,
        # The timeout is the call's own: on expiry the peer is told to cancel, and the caller
        # learns the outcome is unknown (CallTimeout), which a wrapping asyncio.timeout cannot.
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> Any:
        """Call ``method`` on the peer and return its result.

        Waits for a free slot when ``max_in_flight`` calls are already in flight. Cancelling
        the waiting task (or the timeout passing) asks the peer to cancel the call too.

        Raises:
            ConfigError: ``method`` is a reserved name.
            ConnectionClosed: the connection is not open; nothing was sent.
            EncodeError: ``params`` cannot be serialised; nothing was sent.
            LimitExceeded: the request is larger than ``max_frame_bytes``, or no slot came
                free within ``timeout``; nothing was sent. Also when the peer refused the
                call for one of its own limits.
            CallTimeout: no answer within ``timeout`` seconds; the outcome is unknown.
            PeerLost: the connection ended first; the outcome is unknown.
            MethodNotFound: the peer has no such method.
            RemoteError: the peer's method reported an error.
        """
        _check_method_name(method)
        self._require_open()
        return await self._call(method, params, timeout=timeout)

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification; the peer handles notifications in the order they are sent.

        Raises:
            ConfigError: ``method`` is a reserved name.
            ConnectionClosed: the connection is not open.
            EncodeError: ``params`` cannot be serialised.
            LimitExceeded: the notification is larger than ``max_frame_bytes``.
        """
        _check_method_name(method)
        self._require_open()
        self._send(self._encode_outgoing(Notification(method, params)))
        await self._drain()

    async def confirm_session(self) -> None:
        """Client role: the hello exchange, which the server answers only once it has
        accepted this client's identity. (TLS 1.3 lets a client finish its handshake before
        the server has judged the client's certificate.)

        Raises:
            AuthenticationError: the server refused this client's identity.
            ProtocolViolation: the server does not speak this protocol version.
            PeerLost: the connection ended before the answer came.

        On any failure (and on cancellation) the connection is closed.
        """
        try:
            await self._call(ControlMethod.HELLO.value, _HELLO, timeout=None)
        except TransportError as exc:
            self._shut_down(exc)
            raise
        except asyncio.CancelledError:
            self._shut_down(ConnectionClosed("the hello exchange was cancelled"))
            raise

    async def close(self) -> None:
        """Close the connection and wait until it is closed. Calls in flight fail with
        ``PeerLost``; incoming calls still running are cancelled. Never raises."""
        self._shut_down(ConnectionClosed("connection closed locally"))
        await self._closed.wait()

    async def wait_closed(self) -> TransportError:
        """Wait until the connection is closed; return why it closed."""
        await self._closed.wait()
        assert self._cause is not None  # set before _closed
        return self._cause

    def _active(self) -> bool:
        return self._state in (Runstate.HANDSHAKE, Runstate.OPEN)

    def _require_open(self) -> None:
        if self._state is not Runstate.OPEN:
            raise self._not_open()

    def _not_open(self) -> ConnectionClosed:
        reason = f": {self._cause}" if self._cause else ""
        return ConnectionClosed(
            f"connection {self.label} is {self._state.name.lower()}{reason}",
            details={"state": self._state.name},
        )

    async def _call(
        self,
        method: str,
        params: Any,
        *,
        timeout: float | None,  # noqa: ASYNC109
    ) -> Any:
        deadline = None if timeout is None else self._loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        except TimeoutError:
            raise LimitExceeded(
                f"no free call slot within {timeout} s: {self._limits.max_in_flight} calls"
                " already in flight",
                details={"limit": "max_in_flight", "value": self._limits.max_in_flight},
            ) from None
        msgid = self._allocate_msgid()
        reply: asyncio.Future[Any] = self._loop.create_future()
        try:
            frame = self._encode_outgoing(Request(msgid, method, params))
            if not self._active():  # it closed while this call waited for a slot
                raise self._not_open()
            self._pending[msgid] = reply
            self._send(frame)
            async with asyncio.timeout_at(deadline):
                await self._drain()
                return await reply
        except TimeoutError:
            self._abandon(msgid)
            raise CallTimeout(
                f"call {method!r} got no answer within {timeout} s; its outcome is unknown",
                details={"method": method, "timeout": timeout},
            ) from None
        except asyncio.CancelledError:
            self._abandon(msgid)
            raise
        finally:
            self._pending.pop(msgid, None)
            self._slots.release()

    def _abandon(self, msgid: int) -> None:
        """Forget a call whose caller stopped waiting, and ask the peer to cancel it."""
        if self._pending.pop(msgid, None) is not None and self._state is Runstate.OPEN:
            self._send(encode(Notification(ControlMethod.CANCEL.value, [msgid])))

    def _allocate_msgid(self) -> int:
        while True:
            msgid = self._next_msgid
            self._next_msgid = (msgid + 1) & MAX_MSGID
            if msgid not in self._pending:
                return msgid

    def _encode_outgoing(self, message: Request | Notification) -> bytes:
        frame = encode(message)
        if len(frame) > self._limits.max_frame_bytes:
            raise LimitExceeded(
                f"{message.method!r} message is {len(frame)} bytes, larger than"
                f" max_frame_bytes ({self._limits.max_frame_bytes})",
                details={"limit": "max_frame_bytes", "value": self._limits.max_frame_bytes},
            )
        return frame

    def _send(self, frame: bytes) -> None:
        """Queue ``frame``; the frames queued in one turn of the loop leave in one write."""
        if not self._outbox:
            self._loop.call_soon(self._flush)
        self._outbox.append(frame)

    def _flush(self) -> None:
        outbox, self._outbox = self._outbox, []
        if outbox and not self._writer.is_closing():
            self._writer.writelines(outbox)

    async def _drain(self) -> None:
        # On failure the reader meets the same error and closes the connection.
        with contextlib.suppress(OSError):
            await self._writer.drain()

    # ----------------------------------------------------------------- bottom half

    async def _run(self) -> None:
        """Read and dispatch until the connection ends, then tear it down."""
        try:
            await self._read_frames()
        except asyncio.CancelledError:
            self._shut_down(ConnectionClosed("connection cancelled"))
        except TransportError as exc:
            self._shut_down(exc)
        except TimeoutError:
            self._shut_down(self._deadline_missed())
        except OSError as exc:
            self._shut_down(ConnectionClosed(f"connection failed: {exc}"))
        except Exception as exc:  # a bug here must still close the connection cleanly
            self._log.exception("reader failed")
            self._shut_down(ConnectionClosed(f"internal error in the reader: {exc!r}"))
        await self._tear_down()

    async def _read_frames(self) -> None:
        while self._active():
            data = await self._read_chunk()
            if not data:
                self._decoder.check_eof()
                self._flush_notifications = True
                self._shut_down(ConnectionClosed("the peer closed the connection"))
                return
            now = self._loop.time()
            self._last_heard = now
            objects = self._decoder.feed(data)
            for obj in objects:
                self._dispatch(decode(obj))
                if not self._active():
                    return
            if not self._decoder.pending:
                self._frame_started = None
            elif objects or self._frame_started is None:
                self._frame_started = now
            await self._drain()  # a peer that does not read its answers is not read either

    async def _read_chunk(self) -> bytes:
        deadline = self._read_deadline()
        if deadline is None:
            return await self._reader.read(_READ_CHUNK)
        async with asyncio.timeout_at(deadline):
            return await self._reader.read(_READ_CHUNK)

    def _read_deadline(self) -> float | None:
        deadlines = []
        if self._state is Runstate.HANDSHAKE and self._handshake_deadline is not None:
            deadlines.append(self._handshake_deadline)
        if self._frame_started is not None:
            deadlines.append(self._frame_started + self._limits.frame_timeout)
        return min(deadlines, default=None)

    def _deadline_missed(self) -> LimitExceeded:
        if (
            self._state is Runstate.HANDSHAKE
            and self._handshake_deadline is not None
            and self._loop.time() >= self._handshake_deadline
        ):
            return LimitExceeded(
                f"no hello within handshake_timeout ({self._limits.handshake_timeout} s)",
                details={"limit": "handshake_timeout"},
            )
        return LimitExceeded(
            f"frame not complete within frame_timeout ({self._limits.frame_timeout} s):"
            f" {self._decoder.pending} bytes of it received",
            details={"limit": "frame_timeout", "pending_bytes": self._decoder.pending},
        )

    def _dispatch(self, message: Message) -> None:
        match message:
            case Response():
                self._on_response(message)
            case Request():
                self._on_request(message)
            case Notification():
                self._on_notification(message)

    def _on_response(self, response: Response) -> None:
        reply = self._pending.pop(response.msgid, None)
        if self._state is Runstate.HANDSHAKE:
            self._on_hello_answer(response, reply)
        elif reply is None or reply.done():
            self._log.debug("ignoring the answer to call %d: nobody waits for it", response.msgid)
        elif response.error is not None:
            reply.set_exception(error_from_wire(response.error))
        else:
            reply.set_result(response.result)

    def _on_hello_answer(self, response: Response, reply: asyncio.Future[Any] | None) -> None:
        if self._role is Role.SERVER or reply is None:
            raise ProtocolViolation("a response came before the hello exchange")
        if response.error is not None:
            reply.set_exception(error_from_wire(response.error))
        elif not _speaks_our_version(response.result):
            reply.set_exception(
                ProtocolViolation(
                    f"unexpected hello answer {response.result!r}; this side speaks"
                    f" version {PROTOCOL_VERSION}"
                )
            )
        else:
            self._open()
            reply.set_result(response.result)

    def _on_request(self, request: Request) -> None:
        if self._state is Runstate.HANDSHAKE:
            if self._role is Role.SERVER and request.method == ControlMethod.HELLO.value:
                self._answer_hello(request)
                return
            raise ProtocolViolation(f"expected the hello exchange first, got {request.method!r}")
        if request.method == ControlMethod.PING.value:
            self._send_response(Response(request.msgid, None, None))
        elif request.msgid in self._serving:
            raise ProtocolViolation(f"request id {request.msgid} is already in flight")
        elif len(self._serving) >= self._limits.max_in_flight:
            refusal = LimitExceeded(
                f"{self._limits.max_in_flight} calls already in flight on this connection",
                details={"limit": "max_in_flight", "value": self._limits.max_in_flight},
            )
            self._send_response(Response(request.msgid, refusal.to_wire(), None))
        elif (handler := self._methods.get(request.method)) is None:
            missing = MethodNotFound(f"no method {request.method!r}")
            self._send_response(Response(request.msgid, missing.to_wire(), None))
        else:
            self._serving[request.msgid] = asyncio.create_task(self._serve(request, handler))

    def _answer_hello(self, request: Request) -> None:
        refusal: TransportError | None = self._refusal
        if refusal is None and not _speaks_our_version(request.params):
            refusal = ProtocolViolation(
                f"unsupported hello {request.params!r}; this server speaks version"
                f" {PROTOCOL_VERSION}"
            )
        if refusal is not None:
            self._send_response(Response(request.msgid, refusal.to_wire(), None))
            self._shut_down(refusal)
            return
        self._send_response(Response(request.msgid, None, _HELLO))
        self._open()

    def _open(self) -> None:
        self._state = Runstate.OPEN
        self._next_ping = self._loop.time() + self._limits.keepalive_interval
        self._keepalive = self._loop.call_at(self._next_ping, self._keepalive_tick)

    def _keepalive_tick(self, confirming: bool = False) -> None:
        now = self._loop.time()
        silent_for = now - self._last_heard
        if silent_for >= self._limits.silence_allowed and not confirming:
            # After a stall of this loop, the peer's bytes may already be waiting for the
            # reader task, which runs before a callback scheduled now: look again then.
            self._keepalive = self._loop.call_soon(self._keepalive_tick, True)
            return
        if silent_for >= self._limits.silence_allowed:
            self._shut_down(
                PeerLost(
                    f"peer silent for {silent_for:.1f} s (keepalive every"
                    f" {self._limits.keepalive_interval} s, {self._limits.keepalive_missed}"
                    " missed)",
                    details={"limit": "keepalive", "silent_for": silent_for},
                )
            )
            return
        if now >= self._next_ping:
            ping = Request(self._allocate_msgid(), ControlMethod.PING.value, None)
            self._send(encode(ping))  # no drain: a stuck peer must not stall this timer
            self._next_ping = now + self._limits.keepalive_interval
        wake_at = min(self._next_ping, self._last_heard + self._limits.silence_allowed)
        self._keepalive = self._loop.call_at(wake_at, self._keepalive_tick)

    def _on_notification(self, notification: Notification) -> None:
        if self._state is Runstate.HANDSHAKE:
            raise ProtocolViolation(
                f"expected the hello exchange first, got notification {notification.method!r}"
            )
        if notification.method == ControlMethod.CANCEL.value:
            self._cancel_serving(notification.params)
        elif is_reserved(notification.method):
            self._log.debug("ignoring unknown control notification %r", notification.method)
        else:
            self._queue_notification(notification)

    def _cancel_serving(self, params: Any) -> None:
        match params:
            case [int() as msgid] if not isinstance(msgid, bool):
                task = self._serving.get(msgid)
                if task is not None:
                    task.cancel()
            case _:
                raise ProtocolViolation(f"cancel needs [msgid], not {params!r}")

    def _queue_notification(self, notification: Notification) -> None:
        if self._notifications is None:
            self._notifications = asyncio.Queue(self._limits.max_queued_notifications)
            self._notifier = asyncio.create_task(self._deliver(self._notifications))
        try:
            self._notifications.put_nowait(notification)
        except asyncio.QueueFull:
            raise LimitExceeded(
                f"more than max_queued_notifications ({self._limits.max_queued_notifications})"
                " notifications waiting to be handled",
                details={"limit": "max_queued_notifications"},
            ) from None

    async def _deliver(self, queue: asyncio.Queue[Notification]) -> None:
        """Hand notifications to their methods one at a time, in arrival order."""
        while True:
            notification = await queue.get()
            handler = self._methods.get(notification.method)
            if handler is None:
                self._log.warning("no method for notification %r; dropped", notification.method)
            else:
                try:
                    await handler(notification.params, self)
                except Exception:
                    self._log.exception("method for notification %r failed", notification.method)
            queue.task_done()

    async def _serve(self, request: Request, handler: MethodHandler) -> None:
        try:
            result = await handler(request.params, self)
        except TransportError as exc:
            response = Response(request.msgid, exc.to_wire(), None)
        except Exception as exc:
            self._log.exception("method %r failed", request.method)
            response = Response(request.msgid, _internal_error(request.method, exc), None)
        else:
            response = Response(request.msgid, None, result)
        finally:
            self._serving.pop(request.msgid, None)
        self._send_response(response)
        await self._drain()

    def _send_response(self, response: Response) -> None:
        if not self._active():
            return
        try:
            frame = encode(response)
        except TransportError as exc:
            self._log.error("cannot send the answer to call %d: %s", response.msgid, exc)
            frame = encode(Response(response.msgid, exc.to_wire(), None))
        if len(frame) > self._limits.max_frame_bytes:
            too_large = LimitExceeded(
                f"the answer is {len(frame)} bytes, larger than max_frame_bytes"
                f" ({self._limits.max_frame_bytes})",
                details={"limit": "max_frame_bytes", "value": self._limits.max_frame_bytes},
            )
            frame = encode(Response(response.msgid, too_large.to_wire(), None))
        self._send(frame)

    def _shut_down(self, cause: TransportError) -> None:
        """Start closing (once): fail the calls in flight and stop the reader."""
        if self._state in (Runstate.CLOSING, Runstate.CLOSED):
            return
        self._state = Runstate.CLOSING
        self._cause = cause
        if isinstance(cause, ConnectionClosed):
            self._log.debug("closing: %s", cause)
        else:
            self._log.warning("closing: %s", cause)
        if self._keepalive is not None:
            self._keepalive.cancel()
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(
                    PeerLost(
                        f"connection {self.label} ended with the call in flight ({cause});"
                        " its outcome is unknown",
                        details={"cause": cause.code},
                    )
                )
        self._pending.clear()
        if self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()

    async def _tear_down(self) -> None:
        tasks = list(self._serving.values())
        for task in tasks:
            task.cancel()
        if self._notifier is not None and self._notifications is not None:
            if self._flush_notifications:
                try:
                    async with asyncio.timeout(self._limits.close_timeout):
                        await self._notifications.join()
                except TimeoutError:
                    self._log.warning("notifications left unhandled at close")
            self._notifier.cancel()
            tasks.append(self._notifier)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._close_stream()
        self._state = Runstate.CLOSED
        self._closed.set()
        if self._on_closed is not None:
            self._on_closed(self)

    async def _close_stream(self) -> None:
        self._flush()
        if isinstance(self._cause, PeerLost):
            self._writer.transport.abort()  # the peer is gone: nothing to flush
            return
        self._writer.close()
        try:
            async with asyncio.timeout(self._limits.close_timeout):
                await self._writer.wait_closed()
        except (TimeoutError, OSError):
            self._writer.transport.abort()


def _speaks_our_version(hello: Any) -> bool:
    return isinstance(hello, dict) and hello.get("version") == PROTOCOL_VERSION


def _check_method_name(method: str) -> None:
    if not method or is_reserved(method):
        raise ConfigError(
            f"method name {method!r} is empty or in the reserved 'transport.' namespace",
            details={"method": method},
        )


def _internal_error(method: str, exc: Exception) -> WireError:
    return WireError(
        "internal-error",
        f"method {method!r} failed with an internal error ({type(exc).__name__})",
        {"method": method},
    )
