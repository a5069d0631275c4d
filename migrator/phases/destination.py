"""The destination side of a migration: libvirt's Prepare and Finish (and their post-copy
resume variants) as one transition table."""

from __future__ import annotations

import enum

from transitions import EventData

from cookies import CookiePhase
from migrator.phases.actions import (
    EmitCookie,
    KillGuest,
    PersistDefinition,
    RecoverPostcopy,
    ResumeGuest,
    StartIncoming,
    reset_steps,
    setup_steps,
)
from migrator.phases.events import Finish
from migrator.phases.machine import BROKEN, PhaseJob, Row, row
from migrator.status import MigrationStatus
from params import MigrationFlag


class DestinationPhase(enum.Enum):
    """Where an incoming migration stands (libvirt's job-phase names where they exist)."""

    NONE = "none"
    PREPARE = "prepare"
    #: Finish was asked for; waiting for the incoming stream to complete.
    FINISH3 = "finish3"
    #: The guest runs here in post-copy; waiting for the last pages.
    FINISH3_POSTCOPY = "finish3_postcopy"
    POSTCOPY_FAILED = "postcopy_failed"
    PREPARE_RESUME = "prepare_resume"
    FINISH_RESUME = "finish_resume"
    #: The guest arrived and runs (or stays paused, as asked) here.
    COMPLETED = "completed"
    #: The incoming guest was killed: the migration was cancelled or failed.
    CANCELLED = "cancelled"
    #: This side's QEMU died.
    GUEST_LOST = "guest_lost"
    #: Internal error; sticky.
    FAILED = "failed"


D = DestinationPhase
_WAITING = (D.PREPARE, D.FINISH3)
_RESUME_PHASES = (D.PREPARE_RESUME, D.FINISH_RESUME)
_LIVE_PHASES = (*_WAITING, D.FINISH3_POSTCOPY, D.POSTCOPY_FAILED, *_RESUME_PHASES)

DESTINATION_TABLE: tuple[Row, ...] = (
    # Prepare
    row("prepare", D.NONE, D.PREPARE, then="plan_prepare"),
    row("status_changed", D.PREPARE, None, then="note_status"),
    # Finish: cancelled, offline, already complete, post-copy, or wait for completion.
    # Once the guest may have run here in post-copy, only this host can finish the
    # migration: a failed or cancelled Finish keeps the guest (running) for a resume.
    row(
        "finish",
        _WAITING,
        D.POSTCOPY_FAILED,
        when="in_postcopy",
        unless="postcopy_moving",
        then="plan_keep_postcopy",
    ),
    row("finish", _WAITING, D.CANCELLED, when="cancelled", then="plan_kill"),
    row("finish", D.PREPARE, D.COMPLETED, when="offline", then="plan_offline"),
    row("finish", D.PREPARE, D.CANCELLED, when="incoming_failed", then="plan_kill"),
    row("finish", D.PREPARE, D.COMPLETED, when="incoming_completed", then="plan_arrived"),
    row("finish", D.PREPARE, D.FINISH3_POSTCOPY, when="in_postcopy", then="plan_run_postcopy"),
    row("finish", D.PREPARE, D.FINISH3),
    row("status_changed", D.FINISH3, D.COMPLETED, when="completed", then="plan_arrived"),
    row(
        "status_changed",
        D.FINISH3,
        D.CANCELLED,
        when="broken",
        unless="in_postcopy",
        then="plan_kill",
    ),
    row(
        "status_changed",
        D.FINISH3,
        D.FINISH3_POSTCOPY,
        when="postcopy_active",
        then="plan_run_postcopy",
    ),
    row("status_changed", D.FINISH3, None, then="note_status"),
    row("status_changed", D.FINISH3_POSTCOPY, D.COMPLETED, when="completed", then="plan_complete"),
    row("status_changed", D.FINISH3_POSTCOPY, D.POSTCOPY_FAILED, when="broken"),
    row("status_changed", D.FINISH3_POSTCOPY, None),
    # The source or the controlling client went away: auto-destroy, unless in post-copy
    row("peer_lost", _WAITING, D.POSTCOPY_FAILED, when="in_postcopy"),
    row("peer_lost", _WAITING, D.CANCELLED, then="plan_kill"),
    row("peer_lost", D.FINISH3_POSTCOPY, D.POSTCOPY_FAILED),
    row("action_failed", _WAITING, D.POSTCOPY_FAILED, when="in_postcopy"),
    row("action_failed", _WAITING, D.CANCELLED, then="plan_kill"),
    row("action_failed", D.FINISH3_POSTCOPY, D.POSTCOPY_FAILED),
    row("cancel", _WAITING, D.CANCELLED, unless="in_postcopy", then="plan_kill"),
    # Post-copy failure and resume
    row("status_changed", D.POSTCOPY_FAILED, D.COMPLETED, when="completed", then="plan_complete"),
    row("status_changed", D.POSTCOPY_FAILED, None),
    row("peer_lost", D.POSTCOPY_FAILED, None),
    row(
        "prepare_resume",
        (D.POSTCOPY_FAILED, D.PREPARE_RESUME),
        D.PREPARE_RESUME,
        then="plan_recover",
    ),
    row(
        "finish_resume",
        D.PREPARE_RESUME,
        D.COMPLETED,
        when="incoming_completed",
        then="plan_complete",
    ),
    row("finish_resume", D.PREPARE_RESUME, D.FINISH_RESUME),
    row("status_changed", _RESUME_PHASES, D.COMPLETED, when="completed", then="plan_complete"),
    row("status_changed", _RESUME_PHASES, D.POSTCOPY_FAILED, when="broken"),
    row("status_changed", _RESUME_PHASES, None, then="note_status"),
    row("peer_lost", _RESUME_PHASES, D.POSTCOPY_FAILED),
    row("action_failed", _RESUME_PHASES, D.POSTCOPY_FAILED),
    row("cancel", _RESUME_PHASES, D.POSTCOPY_FAILED),
    # The guest could not be started or stored here after it arrived: the source takes over
    row("action_failed", D.COMPLETED, D.CANCELLED, unless="postcopy_seen", then="plan_kill"),
    # This side's QEMU died
    row("guest_lost", _LIVE_PHASES, D.GUEST_LOST),
    # A rollback that arrives after the incoming guest is already gone
    row("finish", (D.CANCELLED, D.GUEST_LOST), None),
)


class DestinationJob(PhaseJob):
    """One incoming migration, as the destination daemon sees it."""

    state: DestinationPhase

    side = "destination"
    states = DestinationPhase
    initial = DestinationPhase.NONE
    failed = DestinationPhase.FAILED
    finished = frozenset({D.COMPLETED, D.CANCELLED, D.GUEST_LOST})
    waiting = frozenset({D.POSTCOPY_FAILED})
    table = DESTINATION_TABLE

    def __init__(
        self,
        *,
        flags: MigrationFlag,
        phase: DestinationPhase | None = None,
        last_status: MigrationStatus = MigrationStatus.NONE,
        postcopy_started: bool = False,
    ) -> None:
        self.flags = flags
        self.last_status = last_status
        #: The guest ran here in post-copy: from then on it must never be killed here.
        self.postcopy_ran = postcopy_started or last_status.in_postcopy
        super().__init__(phase=phase)

    # -- conditions ----------------------------------------------------------------------

    def cancelled(self, data: EventData) -> bool:
        event = self.event_of(data)
        return isinstance(event, Finish) and event.cancelled

    def incoming_completed(self, _: EventData) -> bool:
        return self.last_status is MigrationStatus.COMPLETED

    def incoming_failed(self, _: EventData) -> bool:
        return self.last_status in BROKEN

    def in_postcopy(self, data: EventData) -> bool:
        """The migration switched to post-copy (now or earlier): the guest's only complete
        copy is being assembled here, so it must never be killed here."""
        status = self.status_in(data)
        return (
            self.postcopy_ran
            or self.last_status.in_postcopy
            or (status is not None and status.in_postcopy)
        )

    def postcopy_moving(self, data: EventData) -> bool:
        """A successful Finish whose post-copy stream still moves (or already completed)."""
        return not self.cancelled(data) and self.last_status not in BROKEN

    @property
    def postcopy_started(self) -> bool:
        """Stored with the job record, so that a restarted daemon knows it too."""
        return self.postcopy_ran

    def postcopy_seen(self, _: EventData) -> bool:
        return self.postcopy_ran

    def note_status(self, data: EventData) -> None:
        super().note_status(data)
        if self.last_status.in_postcopy:
            self.postcopy_ran = True

    def postcopy_active(self, data: EventData) -> bool:
        return self.status_in(data) is MigrationStatus.POSTCOPY_ACTIVE

    # -- planners ------------------------------------------------------------------------

    def plan_prepare(self, _: EventData) -> None:
        if MigrationFlag.OFFLINE not in self.flags:
            self.plan(StartIncoming(), *setup_steps(self.flags))
        self.plan(EmitCookie(CookiePhase.PREPARE))

    def plan_kill(self, _: EventData) -> None:
        self.plan(KillGuest())

    def plan_offline(self, _: EventData) -> None:
        self.plan(PersistDefinition())

    def plan_arrived(self, data: EventData) -> None:
        self.note_status(data)
        if MigrationFlag.PERSIST_DEST in self.flags:
            self.plan(PersistDefinition())
        if MigrationFlag.PAUSED not in self.flags:
            self.plan(ResumeGuest())
        self.plan(*reset_steps(self.flags), EmitCookie(CookiePhase.FINISH))

    def plan_run_postcopy(self, data: EventData) -> None:
        self.note_status(data)
        if MigrationFlag.PERSIST_DEST in self.flags:
            self.plan(PersistDefinition())
        self.plan(ResumeGuest())

    def plan_keep_postcopy(self, _: EventData) -> None:
        # libvirt: RUNNING/postcopy-failed, the job kept for a resume.
        self.postcopy_ran = True
        self.plan(ResumeGuest())

    def plan_complete(self, data: EventData) -> None:
        self.note_status(data)
        self.plan(*reset_steps(self.flags), EmitCookie(CookiePhase.FINISH))

    def plan_recover(self, _: EventData) -> None:
        self.last_status = MigrationStatus.POSTCOPY_RECOVER
        self.plan(RecoverPostcopy())


DestinationJob.build_machine()
