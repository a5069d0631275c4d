"""The blocking client: :class:`SyncClient`, the async :class:`Client` run on a private event
loop in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Generator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from migrator.client.client import Client
from migrator.client.types import DomainInfo, DomainSummary, Event, HostInfo, JobInfo
from params import MigrationFlag

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="migrator-client", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncClient:
    """:class:`~migrator.client.Client` with the same methods, blocking.

    Use as a context manager, or call :meth:`close`. Errors are the same
    :class:`~migrator.client.ClientError`.
    """

    def __init__(self, client: Client, loop: _LoopThread) -> None:
        """Use :meth:`connect`."""
        self._client = client
        self._loop = loop

    @classmethod
    def connect(cls, uri: str | None, *, tls_dir: Path | str | None = None) -> SyncClient:
        """Connect as :meth:`Client.connect` does.

        Raises:
            ClientError: as :meth:`Client.connect`.
        """
        loop = _LoopThread()
        try:
            client = loop.run(Client.connect(uri, tls_dir=tls_dir))
        except BaseException:
            loop.stop()
            raise
        return cls(client, loop)

    @property
    def uri(self) -> str:
        return self._client.uri

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection and stop the private loop. Never raises."""
        self._loop.run(self._client.close())
        self._loop.stop()

    def host_info(self) -> HostInfo:
        return self._loop.run(self._client.host_info())

    def define(self, xml: str) -> DomainSummary:
        return self._loop.run(self._client.define(xml))

    def undefine(self, name: str) -> None:
        self._loop.run(self._client.undefine(name))

    def start(self, name: str, *, paused: bool = False) -> None:
        self._loop.run(self._client.start(name, paused=paused))

    def shutdown(self, name: str) -> None:
        self._loop.run(self._client.shutdown(name))

    def destroy(self, name: str) -> None:
        self._loop.run(self._client.destroy(name))

    def suspend(self, name: str) -> None:
        self._loop.run(self._client.suspend(name))

    def resume(self, name: str) -> None:
        self._loop.run(self._client.resume(name))

    def list_domains(self, *, include_inactive: bool = False) -> list[DomainSummary]:
        return self._loop.run(self._client.list_domains(include_inactive=include_inactive))

    def dominfo(self, name: str) -> DomainInfo:
        return self._loop.run(self._client.dominfo(name))

    def dumpxml(
        self,
        name: str,
        *,
        inactive: bool = False,
        migratable: bool = False,
        security_info: bool = False,
    ) -> str:
        return self._loop.run(
            self._client.dumpxml(
                name, inactive=inactive, migratable=migratable, security_info=security_info
            )
        )

    def save(
        self,
        name: str,
        path: Path | str,
        *,
        running: bool | None = None,
        xml: str | None = None,
        bypass_cache: bool = False,
    ) -> JobInfo:
        return self._loop.run(
            self._client.save(name, path, running=running, xml=xml, bypass_cache=bypass_cache)
        )

    def restore(
        self, path: Path | str, *, running: bool | None = None, xml: str | None = None
    ) -> DomainSummary:
        return self._loop.run(self._client.restore(path, running=running, xml=xml))

    def managed_save(
        self, name: str, *, running: bool | None = None, bypass_cache: bool = False
    ) -> JobInfo:
        return self._loop.run(
            self._client.managed_save(name, running=running, bypass_cache=bypass_cache)
        )

    def managed_save_remove(self, name: str) -> bool:
        return self._loop.run(self._client.managed_save_remove(name))

    def managed_save_dumpxml(self, name: str, *, security_info: bool = False) -> str:
        return self._loop.run(self._client.managed_save_dumpxml(name, security_info=security_info))

    def managed_save_define(self, name: str, xml: str, *, running: bool | None = None) -> bool:
        return self._loop.run(self._client.managed_save_define(name, xml, running=running))

    def save_image_dumpxml(self, path: Path | str, *, security_info: bool = False) -> str:
        return self._loop.run(self._client.save_image_dumpxml(path, security_info=security_info))

    def save_image_define(self, path: Path | str, xml: str, *, running: bool | None = None) -> bool:
        return self._loop.run(self._client.save_image_define(path, xml, running=running))

    def migrate(
        self,
        name: str,
        dest_uri: str,
        *,
        flags: MigrationFlag,
        typed: Mapping[str, object] | None = None,
        direct: bool = False,
    ) -> JobInfo:
        return self._loop.run(
            self._client.migrate(name, dest_uri, flags=flags, typed=typed, direct=direct)
        )

    def domjobinfo(self, name: str, *, completed: bool = False) -> JobInfo:
        return self._loop.run(self._client.domjobinfo(name, completed=completed))

    def domjobabort(self, name: str) -> None:
        self._loop.run(self._client.domjobabort(name))

    def migrate_setspeed(self, name: str, bandwidth_mib_s: int) -> None:
        self._loop.run(self._client.migrate_setspeed(name, bandwidth_mib_s))

    def migrate_getspeed(self, name: str) -> int:
        return self._loop.run(self._client.migrate_getspeed(name))

    def migrate_setmaxdowntime(self, name: str, downtime_ms: int) -> None:
        self._loop.run(self._client.migrate_setmaxdowntime(name, downtime_ms))

    def migrate_postcopy(self, name: str) -> None:
        self._loop.run(self._client.migrate_postcopy(name))

    def subscribe(self) -> None:
        self._loop.run(self._client.subscribe())

    def events(self) -> Generator[Event, None, None]:
        """:meth:`Client.events` as a blocking iterator."""
        stream = self._client.events()
        try:
            while True:
                try:
                    yield self._loop.run(_next(stream))
                except StopAsyncIteration:
                    return
        finally:
            self._loop.run(stream.aclose())


async def _next(stream: AsyncIterator[T]) -> T:
    return await anext(stream)
