"""One host as the runtime sees it: identity, keys, a driver, definitions, running guests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from migrator.domain import Domain
from migrator.drivers.base import Driver, Instance
from migrator.errors import MigratorError
from migrator.runtime.records import JobRecord

if TYPE_CHECKING:
    from migrator.runtime.jobs import JobRunner

RecordT = TypeVar("RecordT")


class HostError(MigratorError):
    """A request about a guest that this host cannot honour (unknown, not running, busy)."""

    code = "host-error"

    def __init__(self, message: str, *, domain: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.domain = domain


class StatusStore(Protocol):
    """Where a host keeps each guest's job record, written before every side effect."""

    def save(self, name: str, record: JobRecord) -> None: ...

    def load(self, name: str) -> JobRecord | None: ...

    def delete(self, name: str) -> None: ...

    def names(self) -> list[str]: ...


@dataclass
class MemoryRecordStore(Generic[RecordT]):
    """A store of one record per guest that lives as long as the process (in-process
    hosts, tests)."""

    records: dict[str, RecordT] = field(default_factory=dict)

    def save(self, name: str, record: RecordT) -> None:
        self.records[name] = record

    def load(self, name: str) -> RecordT | None:
        return self.records.get(name)

    def delete(self, name: str) -> None:
        self.records.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self.records)


#: A status store that lives as long as the process.
MemoryStatusStore = MemoryRecordStore[JobRecord]


@dataclass
class Guest:
    """A guest running on this host: its live definition and its hypervisor instance."""

    domain: Domain
    instance: Instance


@dataclass
class Host:
    """One host's identity and state.

    ``trusted_keys`` maps a peer's host UUID to the key its cookies are signed with.
    """

    name: str
    uuid: str
    driver: Driver
    signing_key: Ed25519PrivateKey
    trusted_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    definitions: dict[str, Domain] = field(default_factory=dict)
    #: Guests running here, with their hypervisor instances; rebuilt after a restart.
    guests: dict[str, Guest] = field(default_factory=dict)
    #: The live definition of every guest running here; kept across daemon restarts (the
    #: daemon stores it) so that transient guests are found again.
    live: dict[str, Domain] = field(default_factory=dict)
    status: StatusStore = field(default_factory=MemoryStatusStore)
    incoming_address: str = "127.0.0.1"
    #: Called after a persistent definition changes (the daemon writes it to disk).
    on_definitions_changed: Callable[[Mapping[str, Domain]], None] | None = None
    #: Awaited after a job's phase changed, before the new phase's actions run (the daemon
    #: reports progress); its failures are logged and do not affect the job.
    on_job_phase: Callable[[JobRunner], Awaitable[None]] | None = None

    def trust(self, other: Host) -> None:
        """Accept cookies signed by ``other`` (and it ours)."""
        self.trusted_keys[other.uuid] = other.signing_key.public_key()
        other.trusted_keys[self.uuid] = self.signing_key.public_key()

    def guest(self, name: str) -> Guest:
        """The running guest called ``name``.

        Raises:
            HostError: no such guest runs here.
        """
        try:
            return self.guests[name]
        except KeyError:
            raise HostError(
                f"domain '{name}' is not running on {self.name}", domain=name, code="no-domain"
            ) from None

    def add_guest(self, domain: Domain, instance: Instance) -> None:
        """Record that ``domain`` now runs here as ``instance``."""
        self.guests[domain.name] = Guest(domain, instance)
        self.live[domain.name] = domain

    def remove_guest(self, name: str) -> None:
        """Record that ``name`` no longer runs here."""
        self.guests.pop(name, None)
        self.live.pop(name, None)

    def define(self, domain: Domain) -> None:
        """Store ``domain`` as a persistent definition.

        Raises:
            OSError: writing the definitions failed; nothing changed.
        """
        self._change_definitions({**self.definitions, domain.name: domain})

    def undefine(self, name: str) -> None:
        """Remove the persistent definition of ``name``, if any.

        Raises:
            OSError: writing the definitions failed; nothing changed.
        """
        if name in self.definitions:
            self._change_definitions(
                {key: value for key, value in self.definitions.items() if key != name}
            )

    def _change_definitions(self, definitions: dict[str, Domain]) -> None:
        # Written out first: memory changes only once the write succeeded.
        if self.on_definitions_changed is not None:
            self.on_definitions_changed(definitions)
        self.definitions.clear()
        self.definitions.update(definitions)
