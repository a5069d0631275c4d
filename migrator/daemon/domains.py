"""The domain requests of the daemon's API: define, undefine, start, shutdown, destroy,
suspend, resume, list, info and XML, with libvirt's refusals.

``start`` restores a guest from its managed-save image when it has a usable one. Suspend and
resume are allowed during the guest's outgoing migration, as libvirt allows them (a client's
``--timeout`` policy suspends a migration that does not converge).

Definitions and live definitions are on disk before each side effect: ``define`` stores the
definition before it counts, ``start`` stores the live definition before QEMU starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import NoReturn

from cookies import JobOperation
from migrator.client.errors import INVALID_ARGUMENT, INVALID_STATE, NO_DOMAIN
from migrator.client.types import DomainInfo, DomainState, DomainSummary, LifecycleKind
from migrator.daemon.claims import DomainJobs
from migrator.daemon.errors import RequestError
from migrator.daemon.events import EventHub
from migrator.daemon.guests import GuestWatcher
from migrator.daemon.host import DaemonHost
from migrator.daemon.names import check_name
from migrator.daemon.saves import Saves
from migrator.domain import Domain, DomainError, FormatFlag, format_domain, parse_domain
from migrator.drivers.base import DriverError, StartMode
from migrator.errors import MigratorError
from migrator.runtime.host import Guest
from migrator.status import RunState

log = logging.getLogger("migrator.daemon.domains")

#: Seconds a run-state query may take before the guest is listed as it was last known.
STATE_TIMEOUT_S = 2.0

#: Run states that are not "paused" in libvirt's words.
_STATES = {
    RunState.RUNNING: DomainState.RUNNING,
    RunState.SHUTDOWN: DomainState.SHUTDOWN,
    RunState.GUEST_PANICKED: DomainState.CRASHED,
    RunState.SUSPENDED: DomainState.PMSUSPENDED,
}


class Domains:
    """Domain requests on one host."""

    def __init__(
        self,
        host: DaemonHost,
        *,
        jobs: DomainJobs,
        watcher: GuestWatcher,
        hub: EventHub,
        saves: Saves,
        incoming: Callable[[], Mapping[str, str]],
    ) -> None:
        """``incoming()`` gives the definitions (XML) of the guests migrating in."""
        self.host = host
        self.jobs = jobs
        self.watcher = watcher
        self.hub = hub
        self.saves = saves
        self._incoming = incoming

    # -- definitions ---------------------------------------------------------------------------

    def define(self, xml: str) -> DomainSummary:
        """Define ``xml`` persistently (replacing the definition of the same domain).

        Raises:
            RequestError: invalid XML or name, a name or UUID that another domain has, or
                a job on the domain.
        """
        try:
            domain = parse_domain(xml)
            check_name(domain.name)
        except (DomainError, MigratorError) as exc:
            raise RequestError(str(exc), code=INVALID_ARGUMENT) from None
        self._check_identity(domain)
        with self.jobs.claim(domain.name, label="define"):
            self.host.define(domain)
        guest = self.host.guests.get(domain.name)
        state = DomainState.RUNNING if guest is not None else DomainState.SHUTOFF
        return DomainSummary(domain.name, str(domain.uuid), state, persistent=True)

    def undefine(self, name: str) -> None:
        """Forget ``name``'s persistent definition (a running guest becomes transient).

        Raises:
            RequestError: no such persistent domain, a managed-save image of it, or a job
                on it.
        """
        if name not in self.host.definitions:
            self._missing(name, running_ok=False)
        if self.saves.has_managed_save(name):
            raise RequestError(
                "Refusing to undefine while domain managed save image exists",
                code=INVALID_STATE,
            )
        with self.jobs.claim(name, label="undefine"):
            self.host.undefine(name)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, name: str, *, paused: bool) -> None:
        """Start the defined domain ``name`` (its CPUs stopped with ``paused``): from its
        managed-save image if it has a usable one (the image is removed once the guest runs
        from it; a broken one is discarded and the guest boots fresh), else fresh.

        Raises:
            RequestError: no such domain, already running, a job on it, or QEMU could not
                be started (``start-failed``).
        """
        domain = self.host.definitions.get(name)
        if domain is None:
            self._missing(name, running_ok=False)
        if name in self.host.guests:
            raise RequestError(f"domain '{name}' is already running", code=INVALID_STATE)
        with self.jobs.claim(name, JobOperation.START):
            if await self.saves.start_from_managed_save(name, paused=paused):
                self.hub.lifecycle(name, LifecycleKind.STARTED, "restored")
                return
            self.host.record_live(domain)
            try:
                instance = await self.host.driver.start(
                    domain, mode=StartMode.PAUSED if paused else StartMode.RUNNING
                )
            except DriverError as exc:
                self._forget_live(name)
                message = f"cannot start domain '{name}': {exc}"
                if exc.detail:
                    message = f"{message}\n{exc.detail}"
                raise RequestError(message, code="start-failed") from None
            self.host.add_guest(domain, instance)
        self.hub.lifecycle(name, LifecycleKind.STARTED, "booted")
        if paused:
            self.hub.lifecycle(name, LifecycleKind.SUSPENDED, "paused")

    async def shutdown(self, name: str) -> None:
        """Ask the guest to power off (ACPI); returns at once."""
        with self.jobs.claim(name, label="shutdown"):
            await self._guest(name).instance.shutdown()

    async def destroy(self, name: str) -> None:
        """Stop the guest now (its QEMU is killed)."""
        with self.jobs.claim(name, label="destroy"), self.watcher.expecting_exit(name):
            await self._guest(name).instance.kill()
            self.host.remove_guest(name)
        self.hub.lifecycle(name, LifecycleKind.STOPPED, "destroyed")

    async def suspend(self, name: str) -> None:
        """Pause the guest's CPUs (also during its outgoing migration)."""
        with self._beside_migration_out(name, label="suspend"):
            await self._guest(name).instance.pause()
        self.hub.lifecycle(name, LifecycleKind.SUSPENDED, "paused")

    async def resume(self, name: str) -> None:
        """Run the guest's CPUs again (also during its outgoing migration)."""
        with self._beside_migration_out(name, label="resume"):
            await self._guest(name).instance.resume()
        self.hub.lifecycle(name, LifecycleKind.RESUMED, "unpaused")

    # -- queries -------------------------------------------------------------------------------

    async def list(self, *, include_inactive: bool) -> list[DomainSummary]:
        """The running domains (and those migrating in), with ``include_inactive`` also the
        defined ones that do not run; by name."""
        summaries = [await self._summary(name) for name in self._active_names()]
        if include_inactive:
            summaries += [
                self._summary_of(domain, DomainState.SHUTOFF)
                for name, domain in self.host.definitions.items()
                if name not in self.host.guests and name not in self._incoming()
            ]
        return sorted(summaries, key=lambda summary: summary.name)

    async def info(self, name: str) -> DomainInfo:
        summary = await self._summary(name)
        domain = self._live_or_defined(name)
        return DomainInfo(
            name=summary.name,
            uuid=summary.uuid,
            state=summary.state,
            persistent=summary.persistent,
            memory_kib=domain.memory_kib,
            vcpus=domain.vcpus,
            job=self.jobs.operation(name),
            managed_save=summary.managed_save,
        )

    def xml(self, name: str, *, inactive: bool, migratable: bool, security_info: bool) -> str:
        """The domain's XML: its live definition while it runs unless ``inactive``; else its
        persistent one; ``migratable`` gives the canonical form, ``security_info`` keeps
        passwords.

        Raises:
            RequestError: no such domain.
        """
        defined = self.host.definitions.get(name)
        domain = self._live_or_defined(name)
        if inactive and defined is not None:
            domain = defined
        flags = FormatFlag(0)
        if inactive:
            flags |= FormatFlag.INACTIVE
        if migratable:
            flags |= FormatFlag.MIGRATABLE
        if security_info:
            flags |= FormatFlag.SECURE
        return format_domain(domain, flags=flags)

    # -- helpers -------------------------------------------------------------------------------

    def _beside_migration_out(
        self, name: str, *, label: str
    ) -> contextlib.AbstractContextManager[object]:
        """Hold ``name`` for ``label``, unless its outgoing migration holds it: libvirt lets
        that job share the guest with a suspend or a resume.

        Raises:
            RequestError: (``busy``) another job runs on ``name``.
        """
        if self.jobs.operation(name) is JobOperation.MIGRATION_OUT:
            return contextlib.nullcontext()
        return self.jobs.claim(name, label=label)

    def _active_names(self) -> set[str]:
        return set(self.host.guests) | set(self._incoming())

    async def _summary(self, name: str) -> DomainSummary:
        guest = self.host.guests.get(name)
        if guest is not None:
            return self._summary_of(guest.domain, await self._state(guest))
        if name in self._incoming():
            return self._summary_of(self._live_or_defined(name), DomainState.PAUSED)
        domain = self.host.definitions.get(name)
        if domain is None:
            self._missing(name, running_ok=True)
        return self._summary_of(domain, DomainState.SHUTOFF)

    def _summary_of(self, domain: Domain, state: DomainState) -> DomainSummary:
        name = domain.name
        persistent = name in self.host.definitions
        managed_save = self.saves.has_managed_save(name)
        return DomainSummary(name, str(domain.uuid), state, persistent, managed_save=managed_save)

    @staticmethod
    async def _state(guest: Guest) -> DomainState:
        if not guest.instance.alive:
            return DomainState.SHUTOFF
        run_state = RunState.PAUSED
        with contextlib.suppress(DriverError, TimeoutError):
            async with asyncio.timeout(STATE_TIMEOUT_S):
                run_state = await guest.instance.run_state()
        return _STATES.get(run_state, DomainState.PAUSED)

    def _live_or_defined(self, name: str) -> Domain:
        guest = self.host.guests.get(name)
        if guest is not None:
            return guest.domain
        xml = self._incoming().get(name)
        if xml is not None:
            return parse_domain(xml)
        domain = self.host.definitions.get(name)
        if domain is None:
            self._missing(name, running_ok=True)
        return domain

    def _guest(self, name: str) -> Guest:
        guest = self.host.guests.get(name)
        if guest is None:
            if name in self.host.definitions:
                raise RequestError(f"domain '{name}' is not running", code=INVALID_STATE)
            self._missing(name, running_ok=True)
        return guest

    def _missing(self, name: str, *, running_ok: bool) -> NoReturn:
        if not running_ok and name in self.host.guests:
            raise RequestError(f"domain '{name}' is not persistent", code=INVALID_STATE)
        raise RequestError(
            f"failed to get domain '{name}'", code=NO_DOMAIN, details={"domain": name}
        )

    def _check_identity(self, domain: Domain) -> None:
        known = {**self.host.definitions, **self.host.live}
        same_name = known.get(domain.name)
        if same_name is not None and same_name.uuid != domain.uuid:
            raise RequestError(
                f"domain '{domain.name}' already exists with uuid {same_name.uuid}",
                code=INVALID_ARGUMENT,
            )
        for other in known.values():
            if other.uuid == domain.uuid and other.name != domain.name:
                raise RequestError(
                    f"domain '{other.name}' already exists with uuid {domain.uuid}",
                    code=INVALID_ARGUMENT,
                )

    def _forget_live(self, name: str) -> None:
        try:
            self.host.live.pop(name, None)
            self.host.state.remove_live(name)
        except MigratorError as exc:
            log.warning("cannot remove the live definition of %s: %s", name, exc)
