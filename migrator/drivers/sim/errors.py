"""The simulator's own error: a world set up wrongly (bad fault, workload or link).

Errors of the simulated hypervisor itself are the driver errors of
:mod:`migrator.drivers.base` (``CommandFailed``, ``InstanceGone``), exactly as the real
driver raises them.
"""

from __future__ import annotations

from migrator.drivers.base import DriverError


class SimError(DriverError):
    """A simulated world was given something it cannot model.

    Attributes:
        field: the name of the offending setting.
    """

    code = "sim-error"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field
