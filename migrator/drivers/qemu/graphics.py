"""Displays: ``-vnc`` and ``-spice``, with passwords set over QMP (never on the command line)."""

from __future__ import annotations

from collections.abc import Sequence

from migrator.domain import Graphics, GraphicsType
from migrator.drivers.qemu.board import Board
from migrator.drivers.qemu.cmdline import Property, escape, option_string
from migrator.drivers.qemu.plan import LaunchPlan, LaunchSpec, SetupCommand

#: VNC display 0 is TCP port 5900.
VNC_BASE_PORT = 5900
#: With autoport, QEMU takes the first free display from 0 up to this one.
VNC_LAST_AUTO_DISPLAY = 99


def graphics_args(graphics: Sequence[Graphics], board: Board, spec: LaunchSpec) -> LaunchPlan:
    """The display arguments and the QMP commands that set their passwords.

    Raises:
        UnsupportedConfig: more than one display of a type, SPICE on a QEMU without it, a
            SPICE TLS port, or an autoport SPICE display with no port picked.
    """
    argv: list[str] = []
    setup: list[SetupCommand] = []
    for kind in GraphicsType:
        of_kind = [display for display in graphics if display.type is kind]
        if len(of_kind) > 1:
            raise board.refuse(f"graphics '{kind.value}'", "only one display of a type")
    for display in graphics:
        listen = display.listen or spec.graphics_listen
        if display.type is GraphicsType.VNC:
            argv += _vnc(display, listen)
            if display.passwd is not None:
                setup.append(SetupCommand("change-vnc-password", {"password": display.passwd}))
        else:
            argv += _spice(display, listen, board, spec)
            if display.passwd is not None:
                setup.append(
                    SetupCommand("set_password", {"protocol": "spice", "password": display.passwd})
                )
    return LaunchPlan(tuple(argv), tuple(setup))


def _vnc(display: Graphics, listen: str) -> list[str]:
    host = f"[{listen}]" if ":" in listen else listen
    properties: list[Property] = []
    if display.autoport or display.port is None:
        number = 0
        properties.append(("to", VNC_LAST_AUTO_DISPLAY))
    else:
        number = display.port - VNC_BASE_PORT
    if display.passwd is not None:
        properties.append(("password", True))
    argv = ["-vnc", option_string(escape(f"{host}:{number}"), properties)]
    if display.keymap is not None:
        argv += ["-k", display.keymap]
    return argv


def _spice(display: Graphics, listen: str, board: Board, spec: LaunchSpec) -> list[str]:
    item = "graphics 'spice'"
    if not spec.spice:
        raise board.refuse(item, f"{spec.binary} has no SPICE support")
    if display.tls_port is not None:
        raise board.refuse(item, "a SPICE TLS port needs TLS certificates, which are not set up")
    port = spec.spice_port if display.autoport else display.port
    if port is None:
        raise board.refuse(item, "no port")
    properties: list[Property] = [
        ("port", port),
        ("addr", listen),
        ("disable-ticketing", display.passwd is None),
    ]
    return ["-spice", option_string(None, properties)]
