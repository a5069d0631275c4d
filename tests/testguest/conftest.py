"""Fixtures that start real QEMU processes with the test guest and always kill them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from migrator.testguest.heartbeat import HeartbeatMonitor
from migrator.testguest.kernel import build_kernel
from migrator.testguest.vm import (
    GuestVm,
    GuestVmSpec,
    SerialTransport,
    default_bios,
    detect_accel,
    guest_memory_mib,
)

Launch = Callable[..., Awaitable[GuestVm]]


@pytest.fixture
async def launch(tmp_path: Path) -> AsyncIterator[Launch]:
    """Start QEMU with a freshly built guest: ``await launch(name, working_set_mib=..., ...)``.

    Keyword arguments ``dirty_rate_mib_s`` and ``verify_pages_per_ms`` go to the kernel builder,
    ``paused``, ``incoming`` and ``serial`` to the QEMU command line.
    """
    stack = contextlib.AsyncExitStack()

    async def start(
        name: str,
        *,
        working_set_mib: int,
        dirty_rate_mib_s: int = 0,
        verify_pages_per_ms: int = 16,
        paused: bool = False,
        incoming: bool = False,
        serial: SerialTransport = SerialTransport.TCP,
    ) -> GuestVm:
        kernel = tmp_path / f"{name}.kernel"
        kernel.write_bytes(
            build_kernel(
                working_set_mib=working_set_mib,
                dirty_rate_mib_s=dirty_rate_mib_s,
                verify_pages_per_ms=verify_pages_per_ms,
            )
        )
        spec = GuestVmSpec(
            kernel=kernel,
            memory_mib=guest_memory_mib(working_set_mib),
            accel=detect_accel(),
            bios=default_bios(),
            paused=paused,
            incoming=incoming,
            serial=serial,
        )
        vm = await GuestVm.launch(spec, directory=tmp_path, name=name)
        stack.push_async_callback(vm.close)
        return vm

    async with stack:  # closes every VM, even when closing one of them fails
        yield start


@pytest.fixture
async def monitor() -> AsyncIterator[HeartbeatMonitor]:
    async with HeartbeatMonitor() as heartbeat_monitor:
        yield heartbeat_monitor
