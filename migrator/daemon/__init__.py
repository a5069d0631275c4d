"""The host daemon: its state directory (definitions, live status, identity, lock), and the
daemon itself (:class:`Daemon`, run by ``migrator daemon`` or in-process)."""

from migrator.daemon.atomic import atomic_write, remove_file, remove_stale_temp_files
from migrator.daemon.config import DaemonConfig, DriverKind, build_config, load_file
from migrator.daemon.definitions import DefinitionFiles
from migrator.daemon.errors import DaemonConfigError, DaemonError, RequestError, StateDirError
from migrator.daemon.lock import StateDirLock
from migrator.daemon.names import MAX_NAME_BYTES, check_name
from migrator.daemon.service import Daemon
from migrator.daemon.state import StateDir
from migrator.daemon.status_store import FileStatusStore

__all__ = [
    "MAX_NAME_BYTES",
    "Daemon",
    "DaemonConfig",
    "DaemonConfigError",
    "DaemonError",
    "DefinitionFiles",
    "DriverKind",
    "FileStatusStore",
    "RequestError",
    "StateDir",
    "StateDirError",
    "StateDirLock",
    "atomic_write",
    "build_config",
    "check_name",
    "load_file",
    "remove_file",
    "remove_stale_temp_files",
]
