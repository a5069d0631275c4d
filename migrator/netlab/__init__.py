"""Two hosts on one machine with a real network between them: network namespaces joined by
a veth pair, which can be cut (a partition) and slowed (traffic shaping) while migrations run.

Needs root and iproute2 (``ip``, ``tc``, ``ss``). :func:`unavailable` says why a lab cannot
be built here, before anything is created.
"""

from migrator.netlab.errors import NetLabError, NetLabUnsupported
from migrator.netlab.lab import LabHost, NetLab, unavailable

__all__ = ["LabHost", "NetLab", "NetLabError", "NetLabUnsupported", "unavailable"]
