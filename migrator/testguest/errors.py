"""Errors of the ``migrator.testguest`` package.

Error tree::

    GuestHarnessError              root; every error below carries its own fields
    +-- AssemblerError             an instruction cannot be encoded or a label is misused
    +-- KernelConfigError          a build_kernel() argument is out of range
    |                              (``parameter``, ``value``)
    +-- MemoryDumpError            a memory dump is too short or holds no status record
    +-- QemuProcessError           QEMU failed to start, exited, or refused a command
    |                              (``returncode``, ``stderr_tail``)
    +-- RawMigrationError          QEMU reported a raw QMP migration failed (``state``)
    +-- SerialSourceError          a serial socket could not be attached (``path``), a source
                                   name is unknown or taken, or every attached source has
                                   closed while a caller waits for output
"""

from __future__ import annotations

from migrator.errors import MigratorError


class GuestHarnessError(MigratorError):
    """Root of all errors raised on purpose by the test guest and its host-side tools."""

    code = "testguest"


class AssemblerError(GuestHarnessError):
    """An instruction cannot be encoded (operand out of range), or a label is misused."""

    code = "testguest-asm"


class KernelConfigError(GuestHarnessError):
    """A guest kernel parameter is out of range.

    Attributes:
        parameter: the keyword argument at fault.
        value: the value that was given.
    """

    code = "testguest-config"

    def __init__(self, message: str, *, parameter: str, value: int) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.value = value


class MemoryDumpError(GuestHarnessError):
    """A guest memory dump cannot be checked: it is too short or holds no status record.

    Attributes:
        size: the size of the dump in bytes.
    """

    code = "testguest-dump"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class QemuProcessError(GuestHarnessError):
    """QEMU failed to start, exited early, or refused a command.

    Attributes:
        returncode: QEMU's exit status, or None while it still runs.
        stderr_tail: QEMU's last lines on stderr, oldest first.
    """

    code = "testguest-qemu"

    def __init__(
        self, message: str, *, returncode: int | None, stderr_tail: tuple[str, ...]
    ) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail

    def __str__(self) -> str:
        text = self.message
        if self.returncode is not None:
            text += f" (QEMU exit status {self.returncode})"
        if self.stderr_tail:
            text += f"; QEMU said: {' | '.join(self.stderr_tail)}"
        return text


class RawMigrationError(GuestHarnessError):
    """QEMU reported that a raw QMP migration did not complete.

    Attributes:
        state: QEMU's final migration state (``failed`` or ``cancelled``).
    """

    code = "testguest-migration"

    def __init__(self, message: str, *, state: str) -> None:
        super().__init__(message)
        self.state = state


class SerialSourceError(GuestHarnessError):
    """A serial socket could not be attached, or no attached source can produce output.

    Attributes:
        path: the socket at fault (a file path, or ``host:port``), or None when the error
            concerns a source name or every source.
    """

    code = "testguest-serial"

    def __init__(self, message: str, *, path: str | None) -> None:
        super().__init__(message)
        self.path = path
