"""libvirt's five-phase migration protocol as two pure state machines (source, destination).

The machines take :mod:`~migrator.phases.events` and return
:mod:`~migrator.phases.actions`; they never do I/O. See ``machine.py`` for the rules.
"""

from migrator.phases.destination import DestinationJob, DestinationPhase
from migrator.phases.errors import IllegalEvent, JobFailed, PhaseError, PhaseRefused
from migrator.phases.recovery import Recovery, recover_destination, recover_source
from migrator.phases.source import SourceJob, SourcePhase

__all__ = [
    "DestinationJob",
    "DestinationPhase",
    "IllegalEvent",
    "JobFailed",
    "PhaseError",
    "PhaseRefused",
    "Recovery",
    "SourceJob",
    "SourcePhase",
    "recover_destination",
    "recover_source",
]
