"""The qemu driver's own error: a definition it cannot run on this host.

Failures of QEMU itself are the driver errors of :mod:`migrator.drivers.base`
(``DriverError``, ``CommandFailed`` with QMP's error class, ``InstanceGone`` with QEMU's last
stderr lines in ``detail``).
"""

from __future__ import annotations

from migrator.drivers.base import DriverError


class UnsupportedConfig(DriverError):
    """The definition asks for something this driver cannot run here; nothing was started.

    Attributes:
        item: the part of the definition at fault, as ``interface[0]`` or ``cpu``.
    """

    code = "qemu-unsupported"

    def __init__(self, message: str, *, item: str, instance: str | None = None) -> None:
        super().__init__(f"{item}: {message}", instance=instance)
        self.item = item
