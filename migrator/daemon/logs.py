"""The daemon's log lines on stderr: one line per record, the structured fields a record
carries (domain, job id, side, elapsed milliseconds) appended as ``key=value``.

A phase transition looks like::

    2025-01-01T12:00:00.123 INFO migrator.job phase perform3 -> perform3_done domain=vm
    job_id=5b0e… side=source elapsed_ms=812.4

(on one line).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

#: The structured fields a record may carry, in the order they are written.
FIELDS = ("domain", "job_id", "side", "elapsed_ms")


class StructuredFormatter(logging.Formatter):
    """``time level logger message key=value...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d %(levelname)s %(name)s %(message)s")
        self.default_time_format = "%Y-%m-%dT%H:%M:%S"
        self.default_msec_format = ""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{key}={getattr(record, key)}" for key in FIELDS if hasattr(record, key)]
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback after the fields
        return f"{head} {' '.join(fields)}{newline}{rest}"


def configure(*, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send the ``migrator`` and ``transport`` loggers to ``stream`` (stderr), one line each."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(StructuredFormatter())
    for name in ("migrator", "transport"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
