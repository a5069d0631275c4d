"""Migration scenarios: declarative files of hosts, a guest, a migration, the faults injected
along the way and the outcome expected, replayed on a cluster of two hosts.

:func:`~migrator.scenario.loading.load_scenario` reads a file,
:func:`~migrator.scenario.runner.run_scenario` replays it against its golden trace, and a
:class:`~migrator.scenario.cluster.Cluster` is what it runs on: in-process hosts on the
simulator (:class:`~migrator.scenario.simcluster.SimCluster`) today.
"""

from migrator.scenario.cluster import Check, Cluster, PointHandler
from migrator.scenario.errors import (
    ConnectionLost,
    DriverUnavailable,
    ScenarioError,
    ScenarioFileError,
)
from migrator.scenario.loading import load_scenario, scenario_files
from migrator.scenario.model import DriverName, FaultKind, Scenario
from migrator.scenario.runner import ScenarioResult, Verdict, replay, run_scenario
from migrator.scenario.simcluster import SimCluster

__all__ = [
    "Check",
    "Cluster",
    "ConnectionLost",
    "DriverName",
    "DriverUnavailable",
    "FaultKind",
    "PointHandler",
    "Scenario",
    "ScenarioError",
    "ScenarioFileError",
    "ScenarioResult",
    "SimCluster",
    "Verdict",
    "load_scenario",
    "replay",
    "run_scenario",
    "scenario_files",
]
