"""Serial ports and consoles: a ``-chardev`` host end and the port the guest sees."""

from __future__ import annotations

from collections.abc import Sequence

from migrator.domain import (
    Arch,
    CharSource,
    CharType,
    Console,
    ConsoleTargetType,
    ControllerType,
    Serial,
    SerialTargetType,
    SourceMode,
    TcpProtocol,
)
from migrator.domain.defaults import serial_defaults
from migrator.drivers.qemu.board import Board
from migrator.drivers.qemu.cmdline import Property, option_string


def chardev(chardev_id: str, kind: CharType, source: CharSource, *, board: Board, item: str) -> str:
    """The ``-chardev`` value of a host end.

    A unix or TCP socket in ``bind`` mode listens without waiting for a client (its output
    is dropped while nobody is connected); without a mode it connects, as in libvirt.

    Raises:
        UnsupportedConfig: a file or socket without its path, host or port.
    """
    match kind:
        case CharType.PTY:
            return option_string("pty", [("id", chardev_id)])
        case CharType.FILE:
            return option_string("file", [("id", chardev_id), ("path", _path(source, board, item))])
        case CharType.UNIX:
            return option_string(
                "socket",
                [("id", chardev_id), ("path", _path(source, board, item)), *_listening(source)],
            )
        case CharType.TCP:
            if source.host is None or source.service is None:
                raise board.refuse(item, "a TCP character device needs a host and a port")
            endpoint: list[Property] = [
                ("id", chardev_id),
                ("host", source.host),
                ("port", source.service),
                *_listening(source),
            ]
            if source.protocol is TcpProtocol.TELNET:
                endpoint.append(("telnet", True))
            return option_string("socket", endpoint)


def _path(source: CharSource, board: Board, item: str) -> str:
    if source.path is None:
        raise board.refuse(item, "needs a source path")
    return source.path


def _listening(source: CharSource) -> list[Property]:
    if source.mode is SourceMode.BIND:
        return [("server", True), ("wait", False)]
    return []


def serial_args(
    serials: Sequence[Serial], consoles: Sequence[Console], board: Board, *, arch: Arch
) -> list[str]:
    """Serial ports, then consoles: a serial console names a serial port of the same number
    (which it creates if the definition has none), a virtio console sits on virtio-serial
    controller 0.

    Raises:
        UnsupportedConfig: a host end without its path or address, a port type this
            architecture has no default for, or a virtio console without its controller.
    """
    argv: list[str] = []
    ports = {serial.target_port for serial in serials}
    for position, serial in enumerate(serials):
        argv += _serial(serial, serial.alias or f"serial{position}", board)
    for position, console in enumerate(consoles):
        device_id = console.alias or f"console{position}"
        item = f"console[{position}]"
        if console.target_type is ConsoleTargetType.VIRTIO:
            board.controller(ControllerType.VIRTIO_SERIAL, 0, needed_by=item)
            argv += [
                "-chardev",
                chardev(f"char{device_id}", console.type, console.source, board=board, item=item),
                "-device",
                option_string(
                    "virtconsole",
                    [
                        ("chardev", f"char{device_id}"),
                        ("id", device_id),
                        ("bus", "virtio-serial0.0"),
                    ],
                ),
            ]
        elif console.target_port not in ports:
            port = Serial(type=console.type, source=console.source, target_port=console.target_port)
            argv += _serial(serial_defaults(port, arch), device_id, board)
            ports.add(console.target_port)
    return argv


def _serial(serial: Serial, device_id: str, board: Board) -> list[str]:
    item = f"serial '{device_id}'"
    chardev_id = f"char{device_id}"
    argv = ["-chardev", chardev(chardev_id, serial.type, serial.source, board=board, item=item)]
    device: list[Property] = [("chardev", chardev_id), ("id", device_id)]
    match serial.target_type:
        case SerialTargetType.ISA_SERIAL:
            if serial.target_port is not None:
                device.append(("index", serial.target_port))
            return [*argv, "-device", option_string("isa-serial", device)]
        case SerialTargetType.PCI_SERIAL:
            device += board.placement(serial.address, item=item)
            return [*argv, "-device", option_string("pci-serial", device)]
        case SerialTargetType.USB_SERIAL:
            device += board.usb_placement(serial.address, item=item)
            return [*argv, "-device", option_string("usb-serial", device)]
        case SerialTargetType.SYSTEM_SERIAL:
            return [*argv, "-serial", f"chardev:{chardev_id}"]
        case None:
            raise board.refuse(item, "no default port type for this architecture")
