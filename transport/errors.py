"""Errors of the ``transport`` package: one root, :class:`TransportError`.

Error tree::

    TransportError               code, message, details
    +-- ConfigError              bad configuration: limits, certificate files, endpoints, names
    +-- CertificateError         a CA or host certificate cannot be created, issued or read
    +-- EncodeError              a value cannot be sent: not msgpack-serialisable
    +-- ConnectError             no connection: refused, unreachable, handshake not done in time
    |   +-- AuthenticationError  one side refused the other's identity (TLS, allow-list, name)
    +-- ConnectionClosed         the connection is closed; the call or notification was not sent
    +-- OutcomeUnknown           a call was sent and no answer came: reconcile, never assume
    |   +-- PeerLost             the connection ended with the call in flight (dead, hung, reset)
    |   +-- CallTimeout          the call's own timeout passed
    +-- ProtocolViolation        the peer broke the protocol: malformed frame, wrong shape, no hello
    +-- LimitExceeded            a named limit was exceeded (``limit`` names it)
    +-- RemoteError              the peer's method reported an error with its own code
        +-- MethodNotFound       the peer has no method of that name

Every error carries ``code`` (short, stable, for machines), ``message`` (for people) and
``details`` (a string-keyed map). That triple is what crosses the wire (:class:`WireError`);
:func:`error_from_wire` turns it back into the matching class on the other side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class WireError:
    """An error as it crosses the wire: the ``error`` field of a response."""

    code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)


class TransportError(Exception):
    """Root of all errors raised on purpose by the ``transport`` package.

    Attributes:
        code: short stable identifier for machines (each subclass has its own).
        message: what is wrong, for people.
        details: structured facts about the failure (string keys, msgpack-serialisable values).
    """

    code: str = "transport-error"

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message

    def to_wire(self) -> WireError:
        """This error in the form that crosses the wire."""
        return WireError(self.code, self.message, self.details)


class ConfigError(TransportError):
    """Bad configuration: a limit out of range, an unreadable certificate, a reserved name."""

    code = "config-error"


class CertificateError(TransportError):
    """A CA or host certificate cannot be created, issued or read."""

    code = "certificate-error"


class EncodeError(TransportError):
    """A value cannot be sent because msgpack cannot serialise it."""

    code = "encode-error"


class ConnectError(TransportError):
    """No connection could be established; the root cause is in ``__cause__``."""

    code = "connect-error"


class AuthenticationError(ConnectError):
    """One side refused the other's identity.

    Raised by a client whose server certificate does not name the host it meant to reach or
    does not come from the cluster CA, and by a client that the server refused (its
    certificate is missing, expired, from another CA, or not on the allow-list).
    """

    code = "authentication-failed"


class ConnectionClosed(TransportError):
    """The connection is closed; what was asked was not sent."""

    code = "connection-closed"


class OutcomeUnknown(TransportError):
    """A call was sent and its answer never came.

    The peer may or may not have carried it out: the caller must ask the peer (reconcile),
    never assume either way.
    """

    code = "outcome-unknown"


class PeerLost(OutcomeUnknown):
    """The connection ended while the call was in flight: the peer died, hung or hung up."""

    code = "peer-lost"


class CallTimeout(OutcomeUnknown):
    """The call's timeout passed before its answer came; the peer was asked to cancel it."""

    code = "call-timeout"


class ProtocolViolation(TransportError):
    """The peer broke the protocol: a malformed frame, a wrong message shape, no hello."""

    code = "protocol-violation"


class LimitExceeded(TransportError):
    """A named limit (see :class:`transport.limits.Limits`) was exceeded.

    ``details["limit"]`` (also :attr:`limit`) names the limit.
    """

    code = "limit-exceeded"

    @property
    def limit(self) -> str:
        """The name of the limit that was exceeded."""
        return str(self.details.get("limit", ""))


class RemoteError(TransportError):
    """The peer's method reported an error: its own code, message and details.

    Method handlers raise this to report a failure to the caller.
    """

    code = "remote-error"

    def __init__(
        self, message: str, *, code: str | None = None, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        if code is not None:
            self.code = code


class MethodNotFound(RemoteError):
    """The peer has no method of that name."""

    code = "method-not-found"


#: The classes whose instances keep their type when they cross the wire.
_CROSSING: dict[str, type[TransportError]] = {
    cls.code: cls for cls in (AuthenticationError, LimitExceeded, ProtocolViolation, MethodNotFound)
}


def error_from_wire(error: WireError) -> TransportError:
    """The typed error for a wire error: the matching transport class, else :class:`RemoteError`."""
    cls = _CROSSING.get(error.code)
    if cls is None:
        return RemoteError(error.message, code=error.code, details=error.details)
    return cls(error.message, details=error.details)
