"""Starting and stopping QEMU for the test guest, and the errors on the way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from migrator.testguest.errors import GuestHarnessError, QemuProcessError
from migrator.testguest.vm import GuestVm, GuestVmSpec, default_bios, detect_accel
from tests.testguest.conftest import Launch

TIMEOUT = 30  # only stops a broken test from hanging


def spec(kernel: Path, **changes: object) -> GuestVmSpec:
    fields: dict[str, object] = {
        "kernel": kernel,
        "memory_mib": 16,
        "accel": detect_accel(),
        "bios": default_bios(),
    }
    fields.update(changes)
    return GuestVmSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.qemu
async def test_qemu_that_exits_at_start_reports_why(tmp_path: Path) -> None:
    async with asyncio.timeout(TIMEOUT):
        with pytest.raises(QemuProcessError, match="exited while starting") as failed:
            await GuestVm.launch(spec(tmp_path / "missing.bin"), directory=tmp_path, name="vm")
    assert failed.value.returncode == 1
    assert any("missing.bin" in line for line in failed.value.stderr_tail)
    assert "missing.bin" in str(failed.value)
    assert not (tmp_path / "vm.qmp").exists()


async def test_missing_binary_is_reported(tmp_path: Path) -> None:
    with pytest.raises(QemuProcessError, match="cannot run /nonexistent/qemu"):
        await GuestVm.launch(
            spec(tmp_path / "k.bin", binary=Path("/nonexistent/qemu")),
            directory=tmp_path,
            name="vm",
        )


async def test_socket_path_too_long_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    with pytest.raises(GuestHarnessError, match="too long for a unix socket"):
        await GuestVm.launch(spec(tmp_path / "k.bin"), directory=deep, name="vm")


@pytest.mark.qemu
async def test_refused_command_and_close(launch: Launch) -> None:
    async with asyncio.timeout(TIMEOUT):
        vm = await launch("vm", working_set_mib=1, paused=True)
        with pytest.raises(QemuProcessError, match="QMP no-such-command failed"):
            await vm.execute("no-such-command")
        assert vm.returncode is None
        await vm.close()
        assert vm.returncode is not None
        assert not vm.qmp_socket.exists()
        await vm.close()  # closing twice is harmless
