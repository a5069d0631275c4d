"""What the daemon's API returns, as frozen records.

Each record has ``to_json()``, a plain dict that is both the ``--json`` output and what
crosses the wire, and ``from_wire(dict)``, which reads that dict back and raises
:class:`~migrator.client.errors.ClientError` (``bad-answer``) when it is malformed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

from cookies import CookieError, JobOperation, JobStatistics
from cookies.plain import record_from_plain, record_to_plain
from migrator.client.errors import ClientError
from migrator.client.fields import Fields

#: The code of the error raised for an answer that does not have the expected shape.
BAD_ANSWER = "bad-answer"


class DomainState(enum.Enum):
    """A domain's state, with the words virsh prints."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shut off"
    SHUTDOWN = "in shutdown"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"


class JobType(enum.Enum):
    """What a job info describes (libvirt's ``virDomainJobType``, without BOUNDED)."""

    NONE = "none"
    UNBOUNDED = "unbounded"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class LifecycleKind(enum.Enum):
    """What happened to a domain (libvirt's lifecycle event types, with migration split
    into its two ends)."""

    DEFINED = "defined"
    UNDEFINED = "undefined"
    STARTED = "started"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    STOPPED = "stopped"
    SHUTDOWN = "shutdown"
    CRASHED = "crashed"
    MIGRATED_IN = "migrated-in"
    MIGRATED_OUT = "migrated-out"


def operation_label(operation: JobOperation) -> str:
    """A job operation as text: ``MIGRATION_OUT`` is ``migration-out``."""
    return str(operation.name).lower().replace("_", "-")


def operation_from_label(label: str) -> JobOperation:
    """The job operation named ``label`` (see :func:`operation_label`).

    Raises:
        ClientError: no operation has that label.
    """
    member = JobOperation.__members__.get(label.upper().replace("-", "_"))
    if member is None:
        raise bad_answer(f"unknown job operation {label!r}")
    return member


def statistics_to_json(statistics: JobStatistics) -> dict[str, Any]:
    """Job statistics as a plain dict: the fields that are reported, by libvirt's names."""
    return record_to_plain(statistics)


@dataclass(frozen=True)
class HostInfo:
    """The daemon's host: its name and UUID, its hypervisor driver (``qemu`` or ``sim``),
    and the TLS URI it listens on (None without a TLS listener)."""

    name: str
    uuid: str
    driver: str
    uri: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid, "driver": self.driver, "uri": self.uri}

    @classmethod
    def from_wire(cls, data: object) -> HostInfo:
        d = _fields(data)
        return cls(
            name=d.text("name"),
            uuid=d.text("uuid"),
            driver=d.text("driver"),
            uri=d.optional_text("uri"),
        )


@dataclass(frozen=True)
class DomainSummary:
    """One line of ``list``; ``managed_save``: the domain has a managed-save image (its
    next ``start`` restores it)."""

    name: str
    uuid: str
    state: DomainState
    persistent: bool
    managed_save: bool = field(default=False, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "state": self.state.value,
            "persistent": self.persistent,
            "managed_save": self.managed_save,
        }

    @classmethod
    def from_wire(cls, data: object) -> DomainSummary:
        return cls(**cls._summary(_fields(data)))

    @staticmethod
    def _summary(d: Fields) -> dict[str, Any]:
        return {
            "name": d.text("name"),
            "uuid": d.text("uuid"),
            "state": d.choice("state", DomainState),
            "persistent": d.flag("persistent"),
            "managed_save": d.flag("managed_save", False),
        }


@dataclass(frozen=True)
class DomainInfo(DomainSummary):
    """``dominfo``: the summary plus memory, vCPUs and the job in progress, if any."""

    memory_kib: int
    vcpus: int
    job: JobOperation | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "memory_kib": self.memory_kib,
            "vcpus": self.vcpus,
            "job": None if self.job is None else operation_label(self.job),
        }

    @classmethod
    def from_wire(cls, data: object) -> DomainInfo:
        d = _fields(data)
        job = d.optional_text("job")
        return cls(
            **cls._summary(d),
            memory_kib=d.integer("memory_kib"),
            vcpus=d.integer("vcpus"),
            job=None if job is None else operation_from_label(job),
        )


@dataclass(frozen=True)
class JobInfo:
    """``domjobinfo``: the job in progress (``UNBOUNDED``), the last one that ended
    (``COMPLETED``, ``FAILED``, ``CANCELLED``), or none (``NONE``).

    ``operation`` is the job's operation (``migration-out``), ``phase`` the protocol phase
    it is in or ended in, ``error`` why a failed job failed.
    """

    job_type: JobType
    operation: str | None = None
    phase: str | None = None
    statistics: JobStatistics = field(default_factory=JobStatistics)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_type": self.job_type.value,
            "operation": self.operation,
            "phase": self.phase,
            "statistics": statistics_to_json(self.statistics),
            "error": self.error,
        }

    @classmethod
    def from_wire(cls, data: object) -> JobInfo:
        d = _fields(data)
        return cls(
            job_type=d.choice("job_type", JobType),
            operation=d.optional_text("operation"),
            phase=d.optional_text("phase"),
            statistics=_statistics(d),
            error=d.optional_text("error"),
        )


@dataclass(frozen=True)
class LifecycleEvent:
    """Something happened to ``domain``; ``detail`` says more (``booted``, ``migrated``,
    ``destroyed``, ``shutdown``, ``crashed``, ...)."""

    domain: str
    event: LifecycleKind
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "event": self.event.value, "detail": self.detail}

    @classmethod
    def from_wire(cls, data: object) -> LifecycleEvent:
        d = _fields(data)
        return cls(
            domain=d.text("domain"), event=d.choice("event", LifecycleKind), detail=d.text("detail")
        )


@dataclass(frozen=True)
class JobEvent:
    """Progress of job ``job_id`` of ``domain``: sent at every phase transition and about
    every 250 ms while QEMU migrates; the last one has ``done`` (and ``error`` if it
    failed)."""

    domain: str
    job_id: str
    phase: str
    statistics: JobStatistics = field(default_factory=JobStatistics)
    done: bool = False
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "job_id": self.job_id,
            "phase": self.phase,
            "statistics": statistics_to_json(self.statistics),
            "done": self.done,
            "error": self.error,
        }

    @classmethod
    def from_wire(cls, data: object) -> JobEvent:
        d = _fields(data)
        return cls(
            domain=d.text("domain"),
            job_id=d.text("job_id"),
            phase=d.text("phase"),
            statistics=_statistics(d),
            done=d.flag("done"),
            error=d.optional_text("error"),
        )


#: What :meth:`migrator.client.Client.events` yields, in the order things happened.
Event = Union[LifecycleEvent, JobEvent]  # noqa: UP007  (a runtime alias; isinstance works)


# ------------------------------------------------------------------------------ reading


def _fields(data: object) -> Fields:
    return Fields(data, what="the daemon's answer", error=bad_answer)


def _statistics(fields: Fields) -> JobStatistics:
    try:
        return record_from_plain(JobStatistics, fields.mapping("statistics", {}))
    except CookieError as exc:
        raise bad_answer(f"invalid statistics: {exc}") from None


def bad_answer(message: str) -> ClientError:
    return ClientError(f"unexpected answer from the daemon: {message}", code=BAD_ANSWER)
