"""Other daemons: connecting to them, and which cookie-signing keys this host trusts.

The trust rule: a daemon accepts a peer's cookie-signing key only from a connection that
proves who is at its other end, and binds the key to the peer's host UUID:

- over mutual TLS: the peer's certificate comes from the cluster CA and names the address
  this daemon connected to, or (when the peer connected) is on the allow-list. A key a
  connecting peer presents is bound to its certificate's name: a later key for the same
  host UUID from a certificate of another name is refused;
- over this daemon's own unix socket (mode 0600): whoever can connect there administers
  this host already;
- never for this host's own UUID (that is the same-host migration libvirt refuses).

Keys are exchanged in one call: the daemon that opens the connection presents its own
identity with ``host.trust`` and receives the other's in the answer. A client never carries
keys: for a managed-direct migration it asks the source daemon to introduce itself to the
destination (``host.trust`` with ``peer``), which the source does over a connection it
opens itself. Trust lasts until the daemon stops.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cookies import CookieError, KeyFormat, dump_public_key, load_public_key
from migrator.client.errors import INVALID_ARGUMENT, UNREACHABLE, ClientError
from migrator.client.fields import Fields
from migrator.client.session import Session, open_session
from migrator.client.uri import parse_uri
from migrator.daemon.errors import RequestError
from migrator.runtime.host import Host
from transport import Limits

log = logging.getLogger("migrator.daemon.peers")

#: The error code of a refused introduction.
TRUST_REFUSED = "trust-refused"
#: Seconds a kept connection may take to answer before a new one replaces it.
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Identity:
    """Who a daemon says it is: host name, host UUID, cookie-signing public key (raw)."""

    name: str
    uuid: str
    key: bytes

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid, "key": self.key}

    @classmethod
    def from_wire(cls, fields: Fields) -> Identity:
        return cls(name=fields.text("name"), uuid=fields.text("uuid"), key=fields.binary("key"))


def identity_of(host: Host) -> Identity:
    key = dump_public_key(host.signing_key.public_key(), key_format=KeyFormat.RAW)
    return Identity(name=host.name, uuid=host.uuid, key=key)


class Peers:
    """This host's dealings with other daemons."""

    def __init__(self, host: Host, *, tls_dir: Path | None, limits: Limits | None = None) -> None:
        self.host = host
        self.tls_dir = tls_dir
        self.limits = limits
        #: The certificate name of the connecting peer that presented each host UUID's key.
        self._presented_by: dict[str, str] = {}
        self._sessions: dict[str, Session] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def session_to(self, uri: str) -> Session:
        """A connection to the daemon at ``uri`` that has just exchanged keys with it: the
        one kept from an earlier call if it still answers (the exchange proves it), else a
        new one, kept for the next call (:meth:`close` closes them).

        Raises:
            ClientError: as :meth:`connect` and :meth:`introduce`.
        """
        async with self._locks.setdefault(uri, asyncio.Lock()):
            kept = self._sessions.pop(uri, None)
            if kept is not None and not kept.closed:
                try:
                    await self.introduce(kept, within_s=PROBE_TIMEOUT_S)
                except ClientError as exc:
                    await kept.close()
                    if exc.code != UNREACHABLE:
                        raise
                else:
                    self._sessions[uri] = kept
                    return kept
            session = await self.connect(uri)
            try:
                await self.introduce(session)
            except BaseException:
                await session.close()
                raise
            self._sessions[uri] = session
            return session

    async def close(self) -> None:
        """Close the connections kept for later calls. Never raises."""
        sessions = list(self._sessions.values())
        self._sessions.clear()
        await asyncio.gather(*(session.close() for session in sessions))

    async def connect(self, uri: str) -> Session:
        """Open a connection to the daemon at ``uri``, as this host (its TLS certificate).

        Raises:
            ClientError: a malformed URI, or the daemon cannot be reached or refused this
                host (``unreachable``).
        """
        return await open_session(parse_uri(uri), tls_dir=self.tls_dir, limits=self.limits)

    async def introduce(self, session: Session, *, within_s: float | None = None) -> Identity:
        """Exchange cookie-signing keys with the daemon behind ``session``; its identity.

        Raises:
            ClientError: the peer refused this host's identity, answered with a bad one, or
                not within ``within_s`` seconds (``unreachable``).
        """
        answer = await session.call(
            "host.trust", identity_of(self.host).to_wire(), timeout=within_s
        )
        fields = Fields(answer, what="host.trust result", error=_bad_peer)
        peer = Identity.from_wire(fields)
        try:
            self.learn(peer, presented_by=None)
        except RequestError as exc:
            raise ClientError(str(exc), code=exc.code) from None
        return peer

    async def introduce_to(self, uri: str) -> Identity:
        """Connect to the daemon at ``uri`` and exchange keys with it (managed-direct).

        Raises:
            ClientError: as :meth:`connect` and :meth:`introduce`.
        """
        session = await self.connect(uri)
        try:
            return await self.introduce(session)
        finally:
            await session.close()

    def learn(self, peer: Identity, *, presented_by: str | None) -> None:
        """Trust ``peer``'s key. ``presented_by`` is the certificate name of the TLS client
        that presented it (None: this daemon connected to the peer, or the unix socket).

        Raises:
            RequestError: (``invalid-argument``) a malformed UUID or key; (``trust-refused``)
                this host's own UUID, or a UUID learned from another certificate before.
        """
        try:
            peer_uuid = str(uuidlib.UUID(peer.uuid))
        except ValueError:
            raise RequestError(f"invalid host UUID '{peer.uuid}'", code=INVALID_ARGUMENT) from None
        if peer_uuid == self.host.uuid:
            raise RequestError(
                f"Attempt to migrate guest to the same host {peer_uuid}",
                code=TRUST_REFUSED,
                details={"uuid": peer_uuid},
            )
        try:
            key = load_public_key(peer.key)
        except CookieError as exc:
            raise RequestError(
                f"invalid cookie-signing key: {exc}", code=INVALID_ARGUMENT
            ) from None
        if presented_by is not None:
            earlier = self._presented_by.setdefault(peer_uuid, presented_by)
            if earlier != presented_by:
                raise RequestError(
                    f"host {peer_uuid} was introduced by certificate '{earlier}',"
                    f" not '{presented_by}'",
                    code=TRUST_REFUSED,
                    details={"uuid": peer_uuid},
                )
        self.host.trusted_keys[peer_uuid] = key
        log.info("trusting the cookies of %s (%s)", peer.name, peer_uuid)


def _bad_peer(message: str) -> ClientError:
    return ClientError(f"the peer daemon answered badly: {message}", code="bad-answer")
