"""``sim``: a deterministic simulated hypervisor with a virtual clock.

A :class:`SimWorld` holds several simulated hosts in one event loop; a :class:`SimDriver`
is one host's driver. Guests migrate between hosts over simulated links, with QEMU 7.2's
statuses, events, parameters and statistics; a memory model (size, :class:`Workload`,
bandwidth, downtime limit, auto-converge, xbzrle, multifd, post-copy) decides how passes
converge. Guests also migrate into and out of file descriptors (save and restore), at a
disk's pace, with a short stream of their own. :class:`Fault` injects command failures,
crashes, hangs and partitions at calls or migration statuses; the world's trace records
commands, events and fired faults.
"""

from migrator.drivers.sim.driver import SimDriver
from migrator.drivers.sim.errors import SimError
from migrator.drivers.sim.faults import Fault, FaultKind, FaultPoint, Operation
from migrator.drivers.sim.instance import SimInstance
from migrator.drivers.sim.network import DEFAULT_LINK, Link
from migrator.drivers.sim.options import CAPABILITIES
from migrator.drivers.sim.trace import CommandRecord, EventRecord, FaultRecord, TraceRecord
from migrator.drivers.sim.workload import IDLE, Workload
from migrator.drivers.sim.world import SimWorld

__all__ = [
    "CAPABILITIES",
    "DEFAULT_LINK",
    "IDLE",
    "CommandRecord",
    "EventRecord",
    "Fault",
    "FaultKind",
    "FaultPoint",
    "FaultRecord",
    "Link",
    "Operation",
    "SimDriver",
    "SimError",
    "SimInstance",
    "SimWorld",
    "TraceRecord",
    "Workload",
]
