"""One job per domain: a request that would change a domain while another job runs on it is
refused at once with ``busy`` ("domain 'X' is busy with <job>"), never queued.

A job is either a claim this daemon holds for the length of a request (start, destroy, a
peer-to-peer migration from its first step) or a migration job of the runtime (which lasts
from Begin or Prepare until its side ends, across requests). Queries never claim.
"""

from __future__ import annotations

from types import TracebackType

from cookies import JobOperation
from migrator.client.errors import BUSY
from migrator.client.types import operation_label
from migrator.daemon.errors import RequestError
from migrator.runtime.destination import DestinationSide
from migrator.runtime.host import HostError
from migrator.runtime.source import SourceSide


class Claim:
    """A domain held for one operation until :meth:`release` (or the end of a ``with``)."""

    def __init__(self, jobs: DomainJobs, name: str, operation: JobOperation, label: str) -> None:
        self.name = name
        self.operation = operation
        self.label = label
        self._jobs = jobs
        self._held = True

    def release(self) -> None:
        """Let the domain go (again: nothing happens)."""
        if self._held:
            self._held = False
            self._jobs._release(self)

    def __enter__(self) -> Claim:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class DomainJobs:
    """Which domain runs which job on this host."""

    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}
        self._source: SourceSide | None = None
        self._destination: DestinationSide | None = None

    def follow(self, source: SourceSide, destination: DestinationSide) -> None:
        """Count the migration jobs of these sides as jobs."""
        self._source = source
        self._destination = destination

    def claim(
        self, name: str, operation: JobOperation = JobOperation.UNKNOWN, *, label: str = ""
    ) -> Claim:
        """Hold ``name`` for ``operation``; ``label`` names it in a busy error (default:
        the operation's label).

        Raises:
            RequestError: (``busy``) a job runs on ``name``.
        """
        current = self._current(name)
        if current is not None:
            _, running = current
            raise RequestError(
                f"domain '{name}' is busy with {running}",
                code=BUSY,
                details={"domain": name, "job": running},
            )
        claim = Claim(self, name, operation, label or operation_label(operation))
        self._claims[name] = claim
        return claim

    def operation(self, name: str) -> JobOperation | None:
        """The operation of the job running on ``name``, if any."""
        current = self._current(name)
        return None if current is None else current[0]

    def _current(self, name: str) -> tuple[JobOperation, str] | None:
        claim = self._claims.get(name)
        if claim is not None:
            return claim.operation, claim.label
        for side, operation in (
            (self._source, JobOperation.MIGRATION_OUT),
            (self._destination, JobOperation.MIGRATION_IN),
        ):
            if self._runs(side, name):
                return operation, operation_label(operation)
        return None

    def busy(self, name: str) -> bool:
        """Whether a job runs on ``name``."""
        return self.operation(name) is not None

    def _release(self, claim: Claim) -> None:
        if self._claims.get(claim.name) is claim:
            del self._claims[claim.name]

    @staticmethod
    def _runs(side: SourceSide | DestinationSide | None, name: str) -> bool:
        if side is None:
            return False
        try:
            return not side.job(name).done
        except HostError:
            return False
