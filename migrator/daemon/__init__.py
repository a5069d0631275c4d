"""The host daemon: its state directory (definitions, live status, identity, lock)."""

from migrator.daemon.atomic import atomic_write, remove_file, remove_stale_temp_files
from migrator.daemon.definitions import DefinitionFiles
from migrator.daemon.errors import StateDirError
from migrator.daemon.lock import StateDirLock
from migrator.daemon.names import MAX_NAME_BYTES, check_name
from migrator.daemon.state import StateDir
from migrator.daemon.status_store import FileStatusStore

__all__ = [
    "MAX_NAME_BYTES",
    "DefinitionFiles",
    "FileStatusStore",
    "StateDir",
    "StateDirError",
    "StateDirLock",
    "atomic_write",
    "check_name",
    "remove_file",
    "remove_stale_temp_files",
]
