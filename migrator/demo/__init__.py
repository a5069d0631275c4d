"""``migrator demo``: two hosts on this machine, a guest migrating live between them.

- :mod:`~migrator.demo.certificates`: a throwaway CA, host and client certificates;
- :mod:`~migrator.demo.daemons`: ``migrator daemon`` subprocesses, started and stopped;
- :mod:`~migrator.demo.simulated`: two in-process daemons on one simulated world, for
  machines without QEMU;
- :mod:`~migrator.demo.guest`: the test-guest definition and kernel;
- :mod:`~migrator.demo.heartbeats`: the guest's heartbeat, followed from host to host;
- :mod:`~migrator.demo.flow`: the demo from start to end;
- :mod:`~migrator.demo.summary`: what each migration cost, as a table.

Errors are :class:`~migrator.demo.errors.DemoError`.
"""

from migrator.demo.errors import DemoError
from migrator.demo.flow import DemoOptions, run_demo
from migrator.demo.guest import GuestShape
from migrator.demo.summary import MigrationSummary, summary_table

__all__ = [
    "DemoError",
    "DemoOptions",
    "GuestShape",
    "MigrationSummary",
    "run_demo",
    "summary_table",
]
