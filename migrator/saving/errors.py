"""Errors of save, restore, managed save and image editing: one root, :class:`SaveError`.

Error tree::

    SaveError                 anything a save, restore or image edit refuses or fails with
    +-- BadImage              the file is not a usable save image: partial ("save image is
    |                         incomplete"), not one ("not a save image"), unsupported version,
    |                         bad data length, unreadable XML; ``problem`` says which
    +-- ImageIOError          the file cannot be created, read, written or synced (disk full)
    +-- BypassCacheUnsupported  the filesystem refuses O_DIRECT
    +-- UnsupportedFormat     a compression format this host cannot write or read
    +-- XmlRejected           new XML cannot replace the saved guest's (unreadable, or an ABI
    |                         field differs: ``field``)
    +-- DomainBusy            the guest already has a save or a migration in progress
    +-- DomainStateError      the guest is not in a state the request needs
    +-- NoManagedSave         the guest has no managed-save image
    +-- SaveFailed            QEMU's migration into the file did not complete; the guest runs
    |   |                     on as before and the file this save created is gone
    |   +-- SaveCancelled     the save was aborted (``domjobabort``)
    +-- HelperFailed          the compressor, decompressor or direct-I/O writer failed
    +-- RestoreFailed         QEMU could not load the saved state; no guest was left behind

Every error names the guest (``domain``) and the image (``path``) when there is one.
"""

from __future__ import annotations

from pathlib import Path

from migrator.errors import MigratorError


class SaveError(MigratorError):
    """Root of all errors raised by :mod:`migrator.saving`.

    Attributes:
        domain: the guest concerned, if any.
        path: the save image concerned, if any.
    """

    code = "save-error"

    def __init__(
        self,
        message: str,
        *,
        domain: str | None = None,
        path: Path | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.domain = domain
        self.path = path


class BadImage(SaveError):
    """The file is not a save image that can be used.

    ``code`` is the problem's own (``incomplete-image``, ``bad-magic``, ...), so that callers
    tell a partial image from a foreign file without reading the message.

    Attributes:
        problem: what the save-image codec or the domain parser found wrong.
    """

    def __init__(
        self, problem: MigratorError, *, path: Path, domain: str | None = None, what: str = ""
    ) -> None:
        super().__init__(f"{path}: {what}{problem}", domain=domain, path=path, code=problem.code)
        self.problem = problem


class ImageIOError(SaveError):
    """Reading, writing or syncing the image failed.

    Attributes:
        errno: the operating system's error number.
    """

    code = "image-io"

    def __init__(
        self, action: str, error: OSError, *, path: Path, domain: str | None = None
    ) -> None:
        super().__init__(
            f"cannot {action} save image {path}: {error.strerror or error}",
            domain=domain,
            path=path,
        )
        self.errno = error.errno


class BypassCacheUnsupported(SaveError):
    """``bypass_cache`` was asked for on a filesystem that refuses O_DIRECT."""

    code = "bypass-cache-unsupported"

    def __init__(self, *, path: Path, domain: str | None = None) -> None:
        super().__init__(
            f"cannot bypass the cache for {path}: its filesystem does not support O_DIRECT",
            domain=domain,
            path=path,
        )


class UnsupportedFormat(SaveError):
    """A compression format that this host cannot use for a save image.

    Attributes:
        format_name: the format's name (``lzop``, ``sparse``, ...).
    """

    code = "unsupported-format"

    def __init__(self, format_name: str, *, reason: str, path: Path | None = None) -> None:
        super().__init__(f"save image format '{format_name}' cannot be used: {reason}", path=path)
        self.format_name = format_name


class XmlRejected(SaveError):
    """New domain XML cannot stand for the guest in the image.

    Attributes:
        field: the ABI field that differs (``cpu.model``, ...), or ``None`` when the XML
            itself is unreadable.
    """

    code = "xml-rejected"

    def __init__(
        self,
        message: str,
        *,
        field: str | None,
        domain: str | None = None,
        path: Path | None = None,
    ) -> None:
        super().__init__(message, domain=domain, path=path)
        self.field = field


class DomainBusy(SaveError):
    """The guest already has a save or a migration in progress."""

    code = "busy"


class DomainStateError(SaveError):
    """The guest is not in the state the request needs (already running, transient, ...)."""

    code = "domain-state"


class NoManagedSave(SaveError):
    """The guest has no managed-save image."""

    code = "no-managed-save"

    def __init__(self, domain: str, *, path: Path) -> None:
        super().__init__(f"domain '{domain}' has no managed save image", domain=domain, path=path)


class SaveFailed(SaveError):
    """QEMU's migration into the image ended without completing.

    Attributes:
        detail: QEMU's error description, or how its process ended.
    """

    code = "save-failed"

    def __init__(self, message: str, *, domain: str, path: Path, detail: str = "") -> None:
        super().__init__(message, domain=domain, path=path)
        self.detail = detail


class SaveCancelled(SaveFailed):
    """The save was aborted before QEMU finished writing."""

    code = "save-cancelled"


class HelperFailed(SaveError):
    """An external program of the data path (compressor, decompressor, direct-I/O writer)
    exited with an error.

    Attributes:
        command: the program and its arguments.
        returncode: its exit status (negative: the signal that ended it; ``None``: it could
            not be started).
        stderr: the end of what it wrote to its standard error (or why it did not start).
    """

    code = "helper-failed"

    def __init__(self, command: tuple[str, ...], *, returncode: int | None, stderr: str) -> None:
        detail = f": {stderr}" if stderr else ""
        what = "could not be started" if returncode is None else f"exited with status {returncode}"
        super().__init__(f"'{' '.join(command)}' {what}{detail}")
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


class RestoreFailed(SaveError):
    """QEMU could not load the saved state (a stream cut short or damaged, or one that does
    not fit the definition); its process is gone.

    Attributes:
        detail: how QEMU ended, with its last messages.
    """

    code = "restore-failed"

    def __init__(self, *, domain: str, path: Path, detail: str) -> None:
        super().__init__(
            f"cannot restore domain '{domain}' from {path}: QEMU could not load the saved state",
            domain=domain,
            path=path,
        )
        self.detail = detail
