"""Following the guests that run on a host: a guest that powers off or whose QEMU exits by
itself is removed from the host and reported (``stopped``, detail ``shutdown`` or
``failed``), as libvirt does for a guest that shuts down (``on_poweroff`` other than
``preserve``) or whose emulator dies.

Exits this daemon causes (destroy, the end of a migration) are not reported here: whoever
caused them reports them. While a migration job runs on a guest, its job decides what an
exit means.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

from migrator.client.types import LifecycleKind
from migrator.daemon.events import EventHub
from migrator.domain import LifecycleAction
from migrator.drivers.base import DriverError, EventKind
from migrator.errors import MigratorError
from migrator.runtime.host import Guest, Host

log = logging.getLogger("migrator.daemon.guests")


class GuestWatcher:
    """One task per running guest, started and stopped as the host adds and removes it
    (the :class:`~migrator.daemon.host.HostObserver` of the host)."""

    def __init__(self, hub: EventHub, *, busy: Callable[[str], bool]) -> None:
        """``busy(name)`` tells whether a job runs on the guest (its exit is the job's)."""
        self.hub = hub
        self.host: Host | None = None
        self._busy = busy
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._expected: set[str] = set()

    # -- HostObserver ----------------------------------------------------------------------------

    def guest_added(self, name: str, guest: Guest) -> None:
        self._stop(name)
        self._tasks[name] = asyncio.create_task(self._follow(name, guest), name=f"guest {name}")

    def guest_removed(self, name: str, guest: Guest) -> None:
        self._stop(name)

    def definition_changed(self, name: str, *, defined: bool) -> None:
        kind = LifecycleKind.DEFINED if defined else LifecycleKind.UNDEFINED
        self.hub.lifecycle(name, kind, "updated" if defined else "removed")

    # -- the daemon's own exits ------------------------------------------------------------------

    @contextlib.contextmanager
    def expecting_exit(self, name: str) -> Iterator[None]:
        """Within this block an exit of ``name`` is this daemon's doing, not reported here."""
        self._expected.add(name)
        try:
            yield
        finally:
            self._expected.discard(name)

    def settle(self, name: str) -> None:
        """After a job on ``name`` ended: a guest whose QEMU died meanwhile is removed and
        reported as stopped."""
        host = self.host
        guest = None if host is None else host.guests.get(name)
        if host is not None and guest is not None and not guest.instance.alive:
            self._lost(host, name, guest, detail="failed")

    async def close(self) -> None:
        """Stop following every guest (they keep running)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- following one guest ---------------------------------------------------------------------

    def _stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _follow(self, name: str, guest: Guest) -> None:
        powered_off = False
        async with guest.instance.listen() as events:
            async for event in events:
                if event.kind is EventKind.SHUTDOWN and not self._busy(name):
                    powered_off = True
                    self.hub.lifecycle(name, LifecycleKind.SHUTDOWN, "guest")
                    await self._power_off(guest)
                elif event.kind is EventKind.EXITED:
                    break
        host = self.host
        if host is None or host.guests.get(name) is not guest:
            return
        if name in self._expected or self._busy(name):
            return
        self._lost(host, name, guest, detail="shutdown" if powered_off else "failed")

    async def _power_off(self, guest: Guest) -> None:
        # QEMU itself exits at power-off unless told to pause; a simulated QEMU stays, as
        # QEMU under libvirt (-no-shutdown) does until libvirt ends it.
        if guest.domain.on_poweroff is not LifecycleAction.PRESERVE:
            with contextlib.suppress(DriverError):
                await guest.instance.kill()

    def _lost(self, host: Host, name: str, guest: Guest, *, detail: str) -> None:
        self._tasks.pop(name, None)
        try:
            host.remove_guest(name)
        except MigratorError as exc:
            log.warning("cannot forget the live definition of %s: %s", name, exc)
        self.hub.lifecycle(name, LifecycleKind.STOPPED, detail)
