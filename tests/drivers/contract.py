"""The driver contract: what every hypervisor driver (``sim`` and ``qemu``) must do.

A driver's test module subclasses :class:`DriverContract` and provides a ``hosts`` fixture
returning :class:`TwoHosts`. Everything here goes through the :class:`Driver` and
:class:`Instance` interface only, and keeps guests small and migrations short, so that a
real QEMU passes it quickly too. Drivers must turn on the ``events`` capability when a guest
starts (as libvirt does), since the MIGRATION events are what these tests watch.

Waits are guarded by a generous wall-clock limit so that a broken driver fails instead of
hanging the run; nothing here measures speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from migrator.domain import Domain
from migrator.drivers.base import (
    TLS_CREDENTIALS_ID,
    CommandFailed,
    Driver,
    DriverError,
    EventKind,
    Instance,
    InstanceEvent,
    InstanceGone,
    MigrationStatus,
    RunState,
    StartMode,
    TLSEndpoint,
)
from migrator.drivers.uri import tcp_address

MiB = 1024 * 1024

#: The longest any single wait may take before the test fails as hung.
GUARD_S = 120.0

#: ``query-migrate-capabilities`` of QEMU 7.2.
QEMU_72_CAPABILITIES = frozenset(
    {
        "xbzrle",
        "rdma-pin-all",
        "auto-converge",
        "zero-blocks",
        "compress",
        "events",
        "postcopy-ram",
        "x-colo",
        "release-ram",
        "block",
        "return-path",
        "pause-before-switchover",
        "multifd",
        "dirty-bitmaps",
        "postcopy-blocktime",
        "late-block-activate",
        "x-ignore-shared",
        "validate-uuid",
        "background-snapshot",
        "zero-copy-send",
        "postcopy-preempt",
    }
)

#: A guest that out-dirties the throttled bandwidth below: pre-copy alone never ends.
BUSY_WORKING_SET = 32 * MiB
BUSY_DIRTY_RATE = 64 * MiB
SLOW_BANDWIDTH = 16 * MiB


class SetWorkload(Protocol):
    """Make the named guest rewrite ``working_set_bytes`` of its memory at
    ``dirty_rate_bytes_s`` from now on."""

    def __call__(self, name: str, *, working_set_bytes: int, dirty_rate_bytes_s: int) -> None: ...


@dataclass
class TwoHosts:
    """Two hosts of one driver, and what the contract needs to drive guests on them.

    Attributes:
        source: the driver of the host guests migrate from.
        destination: the driver of the host they migrate to. Both have a certificate
            directory (``tls_dir``) that names them by the host of ``listen_uri``.
        make_domain: a small guest definition (64 to 128 MiB) with the given name.
        set_workload: make a guest dirty its memory (see :class:`SetWorkload`).
        listen_uri: what the destination passes to ``start_incoming`` (``tcp:HOST:0``).
    """

    source: Driver
    destination: Driver
    make_domain: Callable[[str], Domain]
    set_workload: SetWorkload
    listen_uri: str


class Launch(Protocol):
    """Start a guest for the length of a test."""

    def __call__(
        self, driver: Driver, domain: Domain, *, mode: StartMode
    ) -> Awaitable[Instance]: ...


async def next_statuses(
    events: AsyncIterator[InstanceEvent], until: Iterable[MigrationStatus]
) -> list[MigrationStatus]:
    """Read MIGRATION events up to and including one of ``until``; the statuses seen."""
    stop = frozenset(until)
    seen: list[MigrationStatus] = []
    async with asyncio.timeout(GUARD_S):
        async for event in events:
            if event.kind is EventKind.MIGRATION and event.status is not None:
                seen.append(event.status)
                if event.status in stop:
                    return seen
    raise AssertionError(f"events ended before any of {sorted(s.value for s in stop)}: {seen}")


async def next_event(events: AsyncIterator[InstanceEvent]) -> InstanceEvent:
    async with asyncio.timeout(GUARD_S):
        return await anext(events)


async def until_finished(events: AsyncIterator[InstanceEvent]) -> list[InstanceEvent]:
    """Every event up to the migration's final status."""
    seen: list[InstanceEvent] = []
    async with asyncio.timeout(GUARD_S):
        async for event in events:
            seen.append(event)
            if event.kind is EventKind.MIGRATION and event.status and event.status.finished:
                return seen
    raise AssertionError(f"events ended before the migration finished: {seen}")


async def until_gone(events: AsyncIterator[InstanceEvent]) -> list[InstanceEvent]:
    """Every event left, up to the end of the subscription (the process exited)."""
    async with asyncio.timeout(GUARD_S):
        return [event async for event in events]


class DriverContract:
    """The shared driver suite; subclasses provide the ``hosts`` fixture."""

    @pytest.fixture
    async def launch(self, hosts: TwoHosts) -> AsyncIterator[Launch]:
        """Start guests for a test and kill whatever is left at the end."""
        started: list[Instance] = []

        async def launch(driver: Driver, domain: Domain, *, mode: StartMode) -> Instance:
            instance = await driver.start(domain, mode=mode)
            started.append(instance)
            return instance

        yield launch
        for instance in started:
            await instance.kill()

    async def _pair(
        self, hosts: TwoHosts, launch: Launch, *, name: str, busy: bool = False
    ) -> tuple[Instance, Instance, str]:
        """A running source and a listening destination of guest ``name``; the URI.

        A ``busy`` guest dirties memory faster than its migration may send it, so that the
        migration stays active until the test acts (the workload is set before the guest
        boots: a real guest's workload is part of what it runs).
        """
        if busy:
            hosts.set_workload(
                name, working_set_bytes=BUSY_WORKING_SET, dirty_rate_bytes_s=BUSY_DIRTY_RATE
            )
        domain = hosts.make_domain(name)
        source = await launch(hosts.source, domain, mode=StartMode.RUNNING)
        destination = await launch(hosts.destination, domain, mode=StartMode.INCOMING)
        uri = await destination.start_incoming(hosts.listen_uri)
        if busy:
            await source.set_parameters({"max-bandwidth": SLOW_BANDWIDTH})
        return source, destination, uri

    # -- starting and stopping -------------------------------------------------------------

    async def test_started_running_guest_runs(self, hosts: TwoHosts, launch: Launch) -> None:
        instance = await launch(hosts.source, hosts.make_domain("run"), mode=StartMode.RUNNING)
        assert instance.alive
        assert instance.name == "run"
        assert await instance.run_state() is RunState.RUNNING

    async def test_started_paused_guest_waits_for_resume(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        instance = await launch(hosts.source, hosts.make_domain("held"), mode=StartMode.PAUSED)
        assert not (await instance.run_state()).cpus_running
        async with instance.listen() as events:
            await instance.resume()
            assert (await next_event(events)).kind is EventKind.RESUMED
        assert await instance.run_state() is RunState.RUNNING

    async def test_incoming_guest_waits_for_its_migration(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        instance = await launch(hosts.destination, hosts.make_domain("in"), mode=StartMode.INCOMING)
        assert await instance.run_state() is RunState.INMIGRATE
        assert (await instance.query_migration()).status is MigrationStatus.NONE
        uri = await instance.start_incoming(hosts.listen_uri)
        assert uri.startswith("tcp:")
        assert int(uri.rsplit(":", 1)[1]) > 0
        with pytest.raises(CommandFailed):
            await instance.start_incoming(hosts.listen_uri)

    async def test_pause_and_resume_emit_stop_and_resume(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        instance = await launch(hosts.source, hosts.make_domain("toggle"), mode=StartMode.RUNNING)
        async with instance.listen() as events:
            await instance.pause()
            assert (await next_event(events)).kind is EventKind.STOPPED
            assert await instance.run_state() is RunState.PAUSED
            await instance.resume()
            assert (await next_event(events)).kind is EventKind.RESUMED
        assert await instance.run_state() is RunState.RUNNING

    async def test_kill_ends_the_process_once(self, hosts: TwoHosts, launch: Launch) -> None:
        instance = await launch(hosts.source, hosts.make_domain("doomed"), mode=StartMode.RUNNING)
        async with instance.listen() as events:
            await instance.kill()
            rest = await until_gone(events)
        assert [event.kind for event in rest] == [EventKind.EXITED]
        assert not instance.alive
        await instance.kill()
        with pytest.raises(InstanceGone):
            await instance.run_state()
        async with instance.listen() as events:
            assert await until_gone(events) == []

    async def test_starting_a_running_domain_again_is_refused(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        domain = hosts.make_domain("twice")
        await launch(hosts.source, domain, mode=StartMode.RUNNING)
        with pytest.raises(DriverError):
            await launch(hosts.source, domain, mode=StartMode.RUNNING)

    # -- capabilities and parameters -------------------------------------------------------

    async def test_capabilities_include_qemu_72s(self, hosts: TwoHosts, launch: Launch) -> None:
        instance = await launch(hosts.source, hosts.make_domain("caps"), mode=StartMode.PAUSED)
        assert await instance.supported_capabilities() >= QEMU_72_CAPABILITIES

    async def test_parameters_read_back_as_set(self, hosts: TwoHosts, launch: Launch) -> None:
        instance = await launch(hosts.source, hosts.make_domain("params"), mode=StartMode.PAUSED)
        before = await instance.query_parameters()
        assert {"max-bandwidth", "downtime-limit", "multifd-channels"} <= set(before)
        wanted = {"max-bandwidth": 32 * MiB, "downtime-limit": 500, "multifd-channels": 4}
        await instance.set_parameters(wanted)
        after = await instance.query_parameters()
        assert {name: after[name] for name in wanted} == wanted
        untouched = set(before) - set(wanted)
        assert {name: after[name] for name in untouched} == {
            name: before[name] for name in untouched
        }

    @pytest.mark.parametrize(
        "bad",
        [
            {"downtime-limit": "fast"},
            {"cpu-throttle-initial": 0},
            {"cpu-throttle-increment": 100},
            {"xbzrle-cache-size": 1000},
            {"multifd-channels": 0},
            {"compress-level": 10},
            {"no-such-parameter": 1},
        ],
    )
    async def test_bad_parameters_are_refused(
        self, hosts: TwoHosts, launch: Launch, bad: dict[str, object]
    ) -> None:
        instance = await launch(hosts.source, hosts.make_domain("bad"), mode=StartMode.PAUSED)
        before = await instance.query_parameters()
        with pytest.raises(CommandFailed):
            await instance.set_parameters(bad)
        assert await instance.query_parameters() == before

    async def test_unknown_capability_is_refused(self, hosts: TwoHosts, launch: Launch) -> None:
        instance = await launch(hosts.source, hosts.make_domain("nocap"), mode=StartMode.PAUSED)
        with pytest.raises(CommandFailed):
            await instance.set_capabilities([{"capability": "warp-drive", "state": True}])

    # -- migration -------------------------------------------------------------------------

    async def test_live_migration_completes(self, hosts: TwoHosts, launch: Launch) -> None:
        source, destination, uri = await self._pair(hosts, launch, name="live")
        async with source.listen() as out, destination.listen() as into:
            await source.migrate(uri)
            source_events = [
                event.status if event.kind is EventKind.MIGRATION else event.kind
                for event in await until_finished(out)
            ]
            dest_statuses = await next_statuses(into, {MigrationStatus.COMPLETED})
        assert source_events == [
            MigrationStatus.SETUP,
            MigrationStatus.ACTIVE,
            EventKind.STOPPED,
            MigrationStatus.COMPLETED,
        ]
        assert dest_statuses == [MigrationStatus.ACTIVE, MigrationStatus.COMPLETED]
        assert await source.run_state() is RunState.POSTMIGRATE
        assert await destination.run_state() is RunState.PAUSED
        progress = await source.query_migration()
        assert progress.status is MigrationStatus.COMPLETED
        assert progress.total >= 64 * MiB
        assert progress.transferred > 0
        assert progress.downtime is not None
        assert progress.dirty_sync_count >= 1
        await destination.resume()
        assert await destination.run_state() is RunState.RUNNING

    async def test_live_migration_over_its_own_connection_completes(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        source, destination, uri = await self._pair(hosts, launch, name="connected")
        await destination.resume()
        async with destination.listen() as into:
            await source.migrate(uri, own_connection=True)
            await next_statuses(into, {MigrationStatus.COMPLETED})
        assert (await source.query_migration()).status is MigrationStatus.COMPLETED
        assert await destination.run_state() is RunState.RUNNING

    async def test_paused_guest_migrates_and_stays_paused(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        source, destination, uri = await self._pair(hosts, launch, name="offline")
        await source.pause()
        async with source.listen() as out:
            await source.migrate(uri)
            assert (await next_statuses(out, {MigrationStatus.COMPLETED}))[-1] is (
                MigrationStatus.COMPLETED
            )
        assert await source.run_state() is RunState.POSTMIGRATE
        assert not (await destination.run_state()).cpus_running

    async def test_cont_while_incoming_starts_the_guest_after_migration(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        source, destination, uri = await self._pair(hosts, launch, name="autostart")
        await destination.resume()
        assert await destination.run_state() is RunState.INMIGRATE
        async with destination.listen() as into:
            await source.migrate(uri)
            await next_statuses(into, {MigrationStatus.COMPLETED})
        assert await destination.run_state() is RunState.RUNNING

    async def test_migrating_to_nobody_fails_and_the_source_runs(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        source = await launch(hosts.source, hosts.make_domain("lost"), mode=StartMode.RUNNING)
        refused = hosts.listen_uri.rsplit(":", 1)[0] + ":1"
        async with source.listen() as out:
            await source.migrate(refused)
            assert await next_statuses(out, {MigrationStatus.FAILED}) == [
                MigrationStatus.SETUP,
                MigrationStatus.FAILED,
            ]
        progress = await source.query_migration()
        assert progress.status is MigrationStatus.FAILED
        assert progress.error_desc
        assert await source.run_state() is RunState.RUNNING

    async def test_cancel_keeps_the_source_running(self, hosts: TwoHosts, launch: Launch) -> None:
        source, _destination, uri = await self._pair(hosts, launch, name="cancelled", busy=True)
        async with source.listen() as out:
            await source.migrate(uri)
            await next_statuses(out, {MigrationStatus.ACTIVE})
            with pytest.raises(CommandFailed):
                await source.set_capabilities([{"capability": "xbzrle", "state": True}])
            await source.cancel_migration()
            assert await next_statuses(out, {MigrationStatus.CANCELLED}) == [
                MigrationStatus.CANCELLING,
                MigrationStatus.CANCELLED,
            ]
        assert (await source.query_migration()).status is MigrationStatus.CANCELLED
        assert await source.run_state() is RunState.RUNNING

    async def test_losing_the_destination_fails_the_migration(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        source, destination, uri = await self._pair(hosts, launch, name="orphan", busy=True)
        async with source.listen() as out:
            await source.migrate(uri)
            await next_statuses(out, {MigrationStatus.ACTIVE})
            await destination.kill()
            assert (await next_statuses(out, {MigrationStatus.FAILED}))[-1] is (
                MigrationStatus.FAILED
            )
        assert (await source.query_migration()).status is MigrationStatus.FAILED
        assert await source.run_state() is RunState.RUNNING

    async def test_postcopy_switch_completes(self, hosts: TwoHosts, launch: Launch) -> None:
        source, destination, uri = await self._pair(hosts, launch, name="postcopy", busy=True)
        postcopy = [{"capability": "postcopy-ram", "state": True}]
        await source.set_capabilities(postcopy)
        await destination.set_capabilities(postcopy)
        async with source.listen() as out, destination.listen() as into:
            await source.migrate(uri)
            await next_statuses(out, {MigrationStatus.ACTIVE})
            await source.start_postcopy()
            assert (await next_statuses(out, {MigrationStatus.POSTCOPY_ACTIVE}))[-1] is (
                MigrationStatus.POSTCOPY_ACTIVE
            )
            await next_statuses(into, {MigrationStatus.POSTCOPY_ACTIVE})
            assert not (await source.run_state()).cpus_running
            await destination.resume()
            assert await next_statuses(out, {MigrationStatus.COMPLETED}) == [
                MigrationStatus.COMPLETED
            ]
            await next_statuses(into, {MigrationStatus.COMPLETED})
        assert await source.run_state() is RunState.POSTMIGRATE
        assert await destination.run_state() is RunState.RUNNING

    async def test_pause_before_switchover_waits_for_continue(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        source, _destination, uri = await self._pair(hosts, launch, name="switchover")
        await source.set_capabilities([{"capability": "pause-before-switchover", "state": True}])
        async with source.listen() as out:
            await source.migrate(uri)
            assert (await next_statuses(out, {MigrationStatus.PRE_SWITCHOVER}))[-1] is (
                MigrationStatus.PRE_SWITCHOVER
            )
            assert (await source.query_migration()).status is MigrationStatus.PRE_SWITCHOVER
            await source.continue_migration()
            assert await next_statuses(out, {MigrationStatus.COMPLETED}) == [
                MigrationStatus.DEVICE,
                MigrationStatus.COMPLETED,
            ]

    async def test_continue_without_a_pause_is_refused(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        instance = await launch(hosts.source, hosts.make_domain("nopause"), mode=StartMode.RUNNING)
        with pytest.raises(CommandFailed):
            await instance.continue_migration()

    async def test_postcopy_needs_the_capability(self, hosts: TwoHosts, launch: Launch) -> None:
        source, _destination, _uri = await self._pair(hosts, launch, name="precopy")
        with pytest.raises(CommandFailed):
            await source.start_postcopy()

    # -- into a file and back (save and restore) -------------------------------------------

    async def _save(self, instance: Instance, path: Path) -> list[MigrationStatus | EventKind]:
        """Migrate ``instance`` into the file at ``path``; the events up to the end."""
        with path.open("wb") as file:
            async with instance.listen() as events:
                await instance.migrate_to_fd(file.fileno())
                return [
                    event.status if event.status is not None else event.kind
                    for event in await until_finished(events)
                ]

    async def test_a_guest_saved_into_a_file_loads_from_it(
        self, hosts: TwoHosts, launch: Launch, tmp_path: Path
    ) -> None:
        domain = hosts.make_domain("saved")
        source = await launch(hosts.source, domain, mode=StartMode.RUNNING)
        image = tmp_path / "saved.stream"
        assert await self._save(source, image) == [
            MigrationStatus.SETUP,
            MigrationStatus.ACTIVE,
            EventKind.STOPPED,
            MigrationStatus.COMPLETED,
        ]
        assert await source.run_state() is RunState.POSTMIGRATE
        assert (await source.query_migration()).total >= 64 * MiB
        assert image.read_bytes()[:4] == b"QEVM"
        await source.kill()
        restored = await launch(hosts.destination, domain, mode=StartMode.INCOMING)
        with image.open("rb") as file:
            async with restored.listen() as events:
                await restored.start_incoming_from_fd(file.fileno())
                statuses = await next_statuses(
                    events, {MigrationStatus.COMPLETED, MigrationStatus.FAILED}
                )
        assert statuses[-1] is MigrationStatus.COMPLETED
        assert await restored.run_state() is RunState.PAUSED
        await restored.resume()
        assert await restored.run_state() is RunState.RUNNING

    async def test_a_stream_cut_short_fails_to_load_and_ends_the_process(
        self, hosts: TwoHosts, launch: Launch, tmp_path: Path
    ) -> None:
        domain = hosts.make_domain("cut")
        source = await launch(hosts.source, domain, mode=StartMode.PAUSED)
        image = tmp_path / "cut.stream"
        assert (await self._save(source, image))[-1] is MigrationStatus.COMPLETED
        stream = image.read_bytes()
        image.write_bytes(stream[: len(stream) // 2])
        restored = await launch(hosts.destination, domain, mode=StartMode.INCOMING)
        with image.open("rb") as file:
            async with restored.listen() as events:
                await restored.start_incoming_from_fd(file.fileno())
                rest = await until_gone(events)
        assert rest[-1].kind is EventKind.EXITED
        assert not restored.alive

    # -- encrypted streams ---------------------------------------------------------------

    async def test_tls_credentials_are_created_once_and_deleted(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        instance = await launch(hosts.source, hosts.make_domain("creds"), mode=StartMode.PAUSED)
        await instance.add_tls_credentials(TLSEndpoint.CLIENT)
        with pytest.raises(CommandFailed):
            await instance.add_tls_credentials(TLSEndpoint.CLIENT)
        await instance.delete_tls_credentials()
        await instance.delete_tls_credentials()
        await instance.add_tls_credentials(TLSEndpoint.SERVER)
        await instance.delete_tls_credentials()

    async def test_migration_with_tls_on_both_sides_completes(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        source, destination, uri = await self._pair(hosts, launch, name="sealed")
        address = tcp_address(uri)
        assert address is not None
        await source.add_tls_credentials(TLSEndpoint.CLIENT)
        await destination.add_tls_credentials(TLSEndpoint.SERVER)
        await destination.set_parameters({"tls-creds": TLS_CREDENTIALS_ID})
        await source.set_parameters({"tls-creds": TLS_CREDENTIALS_ID, "tls-hostname": address[0]})
        assert (await source.query_parameters())["tls-creds"] == TLS_CREDENTIALS_ID
        async with destination.listen() as into:
            await source.migrate(uri, own_connection=True)
            statuses = await next_statuses(
                into, {MigrationStatus.COMPLETED, MigrationStatus.FAILED}
            )
        assert statuses[-1] is MigrationStatus.COMPLETED, await source.query_migration()
        assert (await source.query_migration()).status is MigrationStatus.COMPLETED
        await destination.resume()
        assert await destination.run_state() is RunState.RUNNING

    async def test_tls_creds_naming_no_credentials_fail_the_migration(
        self, hosts: TwoHosts, launch: Launch
    ) -> None:
        """QEMU takes any id for ``tls-creds`` and looks it up as the stream connects."""
        source, _destination, uri = await self._pair(hosts, launch, name="unsealed")
        address = tcp_address(uri)
        assert address is not None
        await source.set_parameters({"tls-creds": TLS_CREDENTIALS_ID, "tls-hostname": address[0]})
        async with source.listen() as out:
            await source.migrate(uri, own_connection=True)
            assert (await next_statuses(out, {MigrationStatus.FAILED}))[-1] is (
                MigrationStatus.FAILED
            )
        progress = await source.query_migration()
        assert progress.error_desc == f"No TLS credentials with id '{TLS_CREDENTIALS_ID}'"
        assert await source.run_state() is RunState.RUNNING
