"""The QEMU command line and the small decisions made before starting QEMU."""

from __future__ import annotations

from pathlib import Path

from migrator.drivers.qemu.options import Accel
from migrator.testguest.protocol import WORKING_SET_ADDR
from migrator.testguest.vm import (
    GuestVmSpec,
    SerialTransport,
    detect_accel,
    guest_memory_mib,
    qemu_argv,
)


def spec(**changes: object) -> GuestVmSpec:
    fields: dict[str, object] = {
        "kernel": Path("/images/guest.bin"),
        "memory_mib": 34,
        "accel": Accel.KVM,
        "bios": Path("/fw/qboot.rom"),
    }
    fields.update(changes)
    return GuestVmSpec(**fields)  # type: ignore[arg-type]


def option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == name]


def test_running_guest_command_line() -> None:
    argv = qemu_argv(spec(), qmp_fd=5, serial_fd=6)
    assert argv[0] == "/usr/bin/qemu-system-x86_64"
    assert {"-nodefaults", "-no-user-config"} <= set(argv)
    assert option(argv, "-display") == ["none"]
    assert option(argv, "-accel") == ["kvm"]
    assert option(argv, "-m") == ["34"]
    assert option(argv, "-kernel") == ["/images/guest.bin"]
    assert option(argv, "-bios") == ["/fw/qboot.rom"]
    assert option(argv, "-chardev") == [
        "socket,id=qmp,fd=5,server=on,wait=off",
        "socket,id=serial,fd=6,server=on,wait=off,nodelay=on",
    ]
    assert option(argv, "-mon") == ["chardev=qmp,mode=control"]
    assert option(argv, "-serial") == ["chardev:serial"]
    assert "-S" not in argv
    assert "-incoming" not in argv
    assert "-daemonize" not in argv


def test_paused_incoming_tcg_guest_with_default_firmware() -> None:
    argv = qemu_argv(
        spec(accel=Accel.TCG, bios=None, paused=True, incoming=True), qmp_fd=3, serial_fd=4
    )
    assert option(argv, "-accel") == ["tcg"]
    assert "-bios" not in argv
    assert "-S" in argv
    assert option(argv, "-incoming") == ["defer"]


def test_unix_serial_socket_has_no_tcp_option() -> None:
    argv = qemu_argv(spec(serial=SerialTransport.UNIX), qmp_fd=3, serial_fd=4)
    assert option(argv, "-chardev")[1] == "socket,id=serial,fd=4,server=on,wait=off"


def test_paths_with_commas_stay_single_arguments() -> None:
    argv = qemu_argv(spec(kernel=Path("/a,b/k.bin")), qmp_fd=3, serial_fd=4)
    assert option(argv, "-kernel") == ["/a,b/k.bin"]


def test_accel_follows_whether_the_device_opens(tmp_path: Path) -> None:
    assert detect_accel(tmp_path / "missing") is Accel.TCG
    openable = tmp_path / "kvm"
    openable.write_bytes(b"")
    assert detect_accel(openable) is Accel.KVM


def test_memory_covers_the_working_set() -> None:
    assert guest_memory_mib(0) * 2**20 == WORKING_SET_ADDR
    assert guest_memory_mib(64) * 2**20 == WORKING_SET_ADDR + 64 * 2**20
