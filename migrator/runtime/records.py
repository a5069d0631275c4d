"""The persisted record of one side's migration job: enough to rebuild its phase machine
and resolve the job after a restart (phase, flags, parameters, original parameters,
cookies seen, rollback journal)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from migrator.errors import MigratorError
from migrator.status import MigrationStatus


class JobSide(enum.Enum):
    SOURCE = "source"
    DESTINATION = "destination"


class RecordError(MigratorError):
    """A stored job record cannot be read back."""

    code = "bad-record"


@dataclass(frozen=True)
class JobRecord:
    """One side's job, as written before every side effect."""

    job_id: str
    side: JobSide
    domain: str
    phase: str
    flags: int
    params: dict[str, object] = field(default_factory=dict)
    originals: dict[str, object] | None = None
    cookies_seen: tuple[str, ...] = ()
    journal: tuple[str, ...] = ()
    was_running: bool = True
    postcopy_started: bool = False
    last_status: MigrationStatus = MigrationStatus.NONE
    peer: str = ""
    #: The guest's definition (domain XML) as this side knew it when the job began.
    definition: str = ""

    def to_wire(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "side": self.side.value,
            "domain": self.domain,
            "phase": self.phase,
            "flags": self.flags,
            "params": self.params,
            "originals": self.originals,
            "cookies_seen": list(self.cookies_seen),
            "journal": list(self.journal),
            "was_running": self.was_running,
            "postcopy_started": self.postcopy_started,
            "last_status": self.last_status.value,
            "peer": self.peer,
            "definition": self.definition,
        }

    @classmethod
    def from_wire(cls, data: object) -> JobRecord:
        """Rebuild a record from :meth:`to_wire` output.

        Raises:
            RecordError: a field is missing or has the wrong type.
        """
        if not isinstance(data, dict):
            raise RecordError("job record is not a mapping")
        try:
            originals = data["originals"]
            params = data["params"]
            if not isinstance(params, dict) or not (
                originals is None or isinstance(originals, dict)
            ):
                raise TypeError("params")
            return cls(
                job_id=str(data["job_id"]),
                side=JobSide(data["side"]),
                domain=str(data["domain"]),
                phase=str(data["phase"]),
                flags=int(data["flags"]),
                params=params,
                originals=originals,
                cookies_seen=tuple(str(name) for name in data["cookies_seen"]),
                journal=tuple(str(name) for name in data["journal"]),
                was_running=bool(data["was_running"]),
                postcopy_started=bool(data["postcopy_started"]),
                last_status=MigrationStatus(data["last_status"]),
                peer=str(data["peer"]),
                definition=str(data["definition"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"job record field is missing or invalid: {exc}") from None
