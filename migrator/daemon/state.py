"""The daemon's state directory: host identity, definitions, live status, one owner.

Layout (directories 0700, files 0600)::

    state-dir.lock        flock held by the daemon that has the directory open (its pid)
    host.toml             host_uuid = "..."
    cookie-key.pem        the Ed25519 key this host signs migration cookies with
    definitions/NAME.xml  persistent definitions (inactive form, secrets kept)
    live/NAME.xml         live definitions of the guests running here (secrets kept)
    status/NAME.msgpack   job records (see FileStatusStore)
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cookies import CookieError, dump_private_key, generate_signing_key, load_private_key
from migrator.daemon.atomic import atomic_write, remove_stale_temp_files
from migrator.daemon.definitions import DefinitionFiles
from migrator.daemon.errors import StateDirError
from migrator.daemon.lock import StateDirLock
from migrator.daemon.status_store import FileStatusStore
from migrator.domain import Domain, FormatFlag

DIR_MODE = 0o700
HOST_FILE = "host.toml"
KEY_FILE = "cookie-key.pem"
DEFINITIONS_DIR = "definitions"
LIVE_DIR = "live"
STATUS_DIR = "status"


class StateDir:
    """An open state directory, locked against other daemons until :meth:`close`.

    Opening creates what is missing, removes temporary files an interrupted write left,
    and reads (or generates once) the host UUID and cookie-signing key. An explicit
    ``host_uuid`` replaces the stored one.
    """

    def __init__(self, path: Path, *, host_uuid: str | None = None) -> None:
        """Open (and lock) the state directory at ``path``.

        Raises:
            StateDirError: another daemon has it open, ``host_uuid`` is not a UUID, or a
                file in it cannot be created, read or parsed.
        """
        self.path = path
        _make_dir(path)
        self._lock = StateDirLock(path)
        try:
            self._persistent = DefinitionFiles(
                _make_dir(path / DEFINITIONS_DIR), flags=FormatFlag.INACTIVE | FormatFlag.SECURE
            )
            self._live = DefinitionFiles(_make_dir(path / LIVE_DIR), flags=FormatFlag.SECURE)
            self.status = FileStatusStore(_make_dir(path / STATUS_DIR))
            for directory in (path, path / DEFINITIONS_DIR, path / LIVE_DIR, path / STATUS_DIR):
                remove_stale_temp_files(directory)
            self.host_uuid = self._host_uuid(host_uuid)
            self.signing_key = self._signing_key()
        except BaseException:
            self._lock.release()
            raise

    def close(self) -> None:
        """Release the directory to other daemons."""
        self._lock.release()

    def __enter__(self) -> StateDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- Definitions ---------------------------------------------------------------------

    def definitions(self) -> dict[str, Domain]:
        """The persistent definitions, by name.

        Raises:
            StateDirError: a definition file cannot be read or parsed.
        """
        return self._persistent.load()

    def save_definition(self, domain: Domain) -> None:
        """Store ``domain`` as a persistent definition.

        Raises:
            StateDirError: its name cannot name a file, or the file cannot be written.
        """
        self._persistent.save(domain)

    def remove_definition(self, name: str) -> None:
        """Forget ``name``'s persistent definition.

        Raises:
            StateDirError: the name cannot name a file, or the file cannot be removed.
        """
        self._persistent.remove(name)

    def sync_definitions(self, domains: Mapping[str, Domain]) -> None:
        """Store exactly ``domains`` as the persistent definitions (a
        ``Host.on_definitions_changed`` callback).

        Raises:
            StateDirError: a file cannot be written or removed.
        """
        self._persistent.sync(domains)

    def live_definitions(self) -> dict[str, Domain]:
        """The live definitions of the guests running here, by name.

        Raises:
            StateDirError: a definition file cannot be read or parsed.
        """
        return self._live.load()

    def save_live(self, domain: Domain) -> None:
        """Store ``domain`` as the live definition of a guest running here.

        Raises:
            StateDirError: its name cannot name a file, or the file cannot be written.
        """
        self._live.save(domain)

    def remove_live(self, name: str) -> None:
        """Forget ``name``'s live definition (the guest no longer runs here).

        Raises:
            StateDirError: the name cannot name a file, or the file cannot be removed.
        """
        self._live.remove(name)

    # -- Identity ------------------------------------------------------------------------

    def _host_uuid(self, explicit: str | None) -> str:
        path = self.path / HOST_FILE
        if explicit is not None:
            value = _parse_uuid(explicit, source="--host-uuid")
        elif (stored := _read_host_uuid(path)) is not None:
            return stored
        else:
            value = str(uuid.uuid4())
        atomic_write(path, f'host_uuid = "{value}"\n'.encode())
        return value

    def _signing_key(self) -> Ed25519PrivateKey:
        path = self.path / KEY_FILE
        try:
            return load_private_key(path.read_bytes())
        except FileNotFoundError:
            key = generate_signing_key()
            atomic_write(path, dump_private_key(key))
            return key
        except OSError as exc:
            raise StateDirError(f"cannot read {path}: {exc.strerror or exc}", path=path) from None
        except CookieError as exc:
            raise StateDirError(f"{path} is not a usable signing key: {exc}", path=path) from None


def _make_dir(path: Path) -> Path:
    try:
        path.mkdir(mode=DIR_MODE, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise StateDirError(f"{path} exists and is not a directory", path=path) from None
    except OSError as exc:
        raise StateDirError(f"cannot create {path}: {exc.strerror or exc}", path=path) from None
    else:
        # mkdir's mode is filtered by the umask; the state must stay private regardless.
        path.chmod(DIR_MODE)
    return path


def _read_host_uuid(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateDirError(f"cannot read {path}: {exc}", path=path) from None
    try:
        stored = tomllib.loads(text)["host_uuid"]
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise StateDirError(f"{path} has no valid host_uuid: {exc}", path=path) from None
    return _parse_uuid(stored, source=str(path))


def _parse_uuid(value: object, *, source: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise StateDirError(
            f"invalid host UUID {value!r} (from {source})", code="bad-uuid"
        ) from None
