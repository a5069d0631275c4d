"""Which domain names can name a file in the state directory, and which files those are."""

from __future__ import annotations

from pathlib import Path

from migrator.daemon.errors import StateDirError

#: Bytes (UTF-8) in a name; leaves room under the usual 255-byte file name limit for the
#: suffix and the temporary-file decoration.
MAX_NAME_BYTES = 200


def check_name(name: str) -> str:
    """Return ``name`` if it can name a state file.

    Raises:
        StateDirError: ``name`` is empty, too long, starts with a dot, or contains a path
            separator or a NUL character.
    """
    problem = _problem(name)
    if problem is not None:
        raise StateDirError(f"invalid domain name {name!r}: {problem}", code="bad-name")
    return name


def _problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    if len(encoded) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes"
    if name.startswith("."):
        return "it starts with a dot"
    if "/" in name or "\\" in name:
        return "it contains a path separator"
    if "\0" in name:
        return "it contains a NUL character"
    return None


def named_path(directory: Path, name: str, *, suffix: str) -> Path:
    """The file in ``directory`` that holds ``name``'s state.

    Raises:
        StateDirError: as :func:`check_name`.
    """
    return directory / f"{check_name(name)}{suffix}"


def named_files(directory: Path, *, suffix: str) -> dict[str, Path]:
    """The state files in ``directory`` with ``suffix``, by name (temporary files left out)."""
    return {
        path.name.removesuffix(suffix): path
        for path in directory.glob(f"*{suffix}")
        if not path.name.startswith(".")
    }
