"""The runtime's :class:`~migrator.runtime.host.Host` with the daemon's state directory
behind it: a running guest's live definition is written when it starts running here and
removed when it stops, and every change is reported to an observer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from migrator.daemon.state import StateDir
from migrator.domain import Domain
from migrator.drivers.base import Instance
from migrator.runtime.host import Guest, Host


class HostObserver(Protocol):
    """Told about every guest that starts or stops running here and every definition that
    is added or removed, whoever caused it (a request, a migration, a restart)."""

    def guest_added(self, name: str, guest: Guest) -> None: ...

    def guest_removed(self, name: str, guest: Guest) -> None: ...

    def definition_changed(self, name: str, *, defined: bool) -> None: ...


@dataclass(kw_only=True, eq=False)
class DaemonHost(Host):
    """A host whose guests and definitions live in ``state``; ``observer`` hears of them."""

    state: StateDir
    observer: HostObserver

    def record_live(self, domain: Domain) -> None:
        """Store ``domain`` as the live definition of a guest about to run here.

        Raises:
            StateDirError: it cannot be written.
        """
        if self.live.get(domain.name) != domain:
            self.state.save_live(domain)
            self.live[domain.name] = domain

    def add_guest(self, domain: Domain, instance: Instance) -> None:
        """Record that ``domain`` runs here as ``instance``, its live definition first
        (unless it is stored already).

        Raises:
            StateDirError: the live definition cannot be written.
        """
        self.record_live(domain)
        known = self.guests.get(domain.name)
        super().add_guest(domain, instance)
        if known is None or known.instance is not instance:
            self.observer.guest_added(domain.name, self.guests[domain.name])

    def remove_guest(self, name: str) -> None:
        """Record that ``name`` no longer runs here, and forget its live definition.

        Raises:
            StateDirError: the live definition cannot be removed.
        """
        guest = self.guests.get(name)
        super().remove_guest(name)
        self.state.remove_live(name)
        if guest is not None:
            self.observer.guest_removed(name, guest)

    def define(self, domain: Domain) -> None:
        super().define(domain)
        self.observer.definition_changed(domain.name, defined=True)

    def undefine(self, name: str) -> None:
        defined = name in self.definitions
        super().undefine(name)
        if defined:
            self.observer.definition_changed(name, defined=False)
