"""``qemu``: the driver of real QEMU processes, through the ``qemu.qmp`` library.

:class:`QEMUDriver` builds each guest's command line from its definition
(:func:`build_launch_plan`, pure: an argv list, never a shell), starts QEMU as a child in its
own process group with QMP on a unix socket in the driver's run directory, and hands out a
:class:`QEMUInstance` per guest: commands with QMP errors mapped to ``CommandFailed``,
events in order, QEMU's exit or crash noticed at any time (``InstanceGone`` with its last
stderr lines). A restarted daemon reconnects with :meth:`QEMUDriver.attach`.

A definition the driver cannot run here is refused by name with :class:`UnsupportedConfig`.
"""

from migrator.drivers.qemu.argv import build_launch_plan, effective_domain
from migrator.drivers.qemu.driver import QEMUDriver
from migrator.drivers.qemu.errors import UnsupportedConfig
from migrator.drivers.qemu.instance import Lifecycle, QEMUInstance
from migrator.drivers.qemu.options import Accel, QemuOptions
from migrator.drivers.qemu.plan import LaunchPlan, LaunchSpec, SetupCommand

__all__ = [
    "Accel",
    "LaunchPlan",
    "LaunchSpec",
    "Lifecycle",
    "QEMUDriver",
    "QEMUInstance",
    "QemuOptions",
    "SetupCommand",
    "UnsupportedConfig",
    "build_launch_plan",
    "effective_domain",
]
