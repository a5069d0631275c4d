"""Which errors the CLI reports as one line, and the exit codes it uses."""

from __future__ import annotations

from cookies.errors import CookieError
from migrator.errors import MigratorError
from params.errors import ParamsError
from transport.errors import TransportError
from xmlsafe import UnsafeXMLError

#: Exit code for an expected failure (bad input, refused operation, unreachable daemon).
EXIT_FAILURE = 1

#: The root errors of every package the CLI drives. Anything else is a bug and keeps its
#: traceback.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    MigratorError,
    ParamsError,
    TransportError,
    CookieError,
    UnsafeXMLError,
    OSError,
)
