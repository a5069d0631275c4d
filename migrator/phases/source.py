"""The source side of a migration: libvirt's Begin, Perform and Confirm (and their post-copy
resume variants) as one transition table.

Phases carry libvirt's job-phase names, because they are what a restarted daemon reads back
to decide what to do with a half-done job (see ``recovery.py``).
"""

from __future__ import annotations

import enum

from transitions import EventData

from cookies import CookiePhase
from migrator.phases.actions import (
    ApplyParams,
    CancelMigration,
    ContinueMigration,
    EmitCookie,
    KillGuest,
    PauseGuest,
    RelocateGraphics,
    ResumeGuest,
    StartMigration,
    StartPostcopy,
    UndefineDefinition,
    reset_steps,
    setup_steps,
)
from migrator.phases.errors import PhaseRefused
from migrator.phases.events import Begin, BeginResume, Confirm, Perform
from migrator.phases.machine import PhaseJob, Row, row
from migrator.status import MigrationStatus
from params import MigrationFlag


class SourcePhase(enum.Enum):
    """Where an outgoing migration stands (libvirt's ``qemuMigrationJobPhase`` names)."""

    NONE = "none"
    BEGIN3 = "begin3"
    PERFORM3 = "perform3"
    #: Perform failed; waiting for Confirm to roll back.
    PERFORM3_FAILED = "perform3_failed"
    PERFORM3_DONE = "perform3_done"
    CONFIRM3 = "confirm3"
    CONFIRM3_CANCELLED = "confirm3_cancelled"
    POSTCOPY_FAILED = "postcopy_failed"
    BEGIN_RESUME = "begin_resume"
    PERFORM_RESUME = "perform_resume"
    CONFIRM_RESUME = "confirm_resume"
    #: Ended in Begin: nothing had been changed.
    ABORTED = "aborted"
    #: This side's QEMU died.
    GUEST_LOST = "guest_lost"
    #: Internal error; sticky.
    FAILED = "failed"


S = SourcePhase
_LIVE_PHASES = (S.BEGIN3, S.PERFORM3, S.PERFORM3_FAILED, S.PERFORM3_DONE, S.POSTCOPY_FAILED)
_RESUME_PHASES = (S.BEGIN_RESUME, S.PERFORM_RESUME)

SOURCE_TABLE: tuple[Row, ...] = (
    # Begin
    row("begin", S.NONE, S.BEGIN3, then="plan_begin"),
    row("cancel", S.BEGIN3, S.ABORTED),
    row("peer_lost", S.BEGIN3, S.ABORTED),
    row("action_failed", S.BEGIN3, S.ABORTED),
    row("confirm", S.BEGIN3, S.CONFIRM3, when="offline", unless="cancelled", then="plan_offline"),
    row("confirm", S.BEGIN3, S.ABORTED, when="cancelled"),
    # Perform
    row("perform", S.BEGIN3, S.PERFORM3, unless="offline", then="plan_perform"),
    row("status_changed", S.PERFORM3, S.PERFORM3_DONE, when="performed", then="plan_performed"),
    row(
        "status_changed",
        S.PERFORM3,
        S.POSTCOPY_FAILED,
        when=("in_postcopy", "broken"),
        then="note_status",
    ),
    row("status_changed", S.PERFORM3, S.PERFORM3_FAILED, when="broken", then="note_status"),
    row("status_changed", S.PERFORM3, None, when="pre_switchover", then="plan_continue"),
    row("status_changed", S.PERFORM3, None, then="note_status"),
    row("switch_to_postcopy", S.PERFORM3, None, when="switch_allowed", then="plan_switch"),
    row("cancel", S.PERFORM3, None, when="cancel_allowed", then="plan_abort"),
    row("peer_lost", S.PERFORM3, S.POSTCOPY_FAILED, when="in_postcopy"),
    row("peer_lost", S.PERFORM3, S.PERFORM3_FAILED, then="plan_cancel"),
    row("action_failed", S.PERFORM3, S.POSTCOPY_FAILED, when="in_postcopy"),
    row("action_failed", S.PERFORM3, S.PERFORM3_FAILED, then="plan_cancel"),
    row("status_changed", S.PERFORM3_FAILED, None, then="note_status"),
    row("cancel", S.PERFORM3_FAILED, None),
    row("peer_lost", S.PERFORM3_FAILED, None),
    row("confirm", S.PERFORM3_FAILED, S.CONFIRM3_CANCELLED, then="plan_rollback"),
    # Confirm
    row("status_changed", S.PERFORM3_DONE, S.POSTCOPY_FAILED, when=("in_postcopy", "broken")),
    row("status_changed", S.PERFORM3_DONE, None, then="note_status"),
    row("confirm", S.PERFORM3_DONE, S.CONFIRM3, unless="cancelled", then="plan_migrated"),
    # libvirt: a failed Finish while QEMU reports the post-copy migration completed is a
    # success (the guest runs on the destination).
    row(
        "confirm",
        S.PERFORM3_DONE,
        S.CONFIRM3,
        when=("cancelled", "in_postcopy", "stream_completed"),
        then="plan_migrated",
    ),
    row("confirm", S.PERFORM3_DONE, S.POSTCOPY_FAILED, when=("cancelled", "in_postcopy")),
    row("confirm", S.PERFORM3_DONE, S.CONFIRM3_CANCELLED, when="cancelled", then="plan_rollback"),
    row("peer_lost", S.PERFORM3_DONE, S.POSTCOPY_FAILED, when="in_postcopy"),
    row("peer_lost", S.PERFORM3_DONE, S.CONFIRM3_CANCELLED, then="plan_left_paused"),
    row("action_failed", S.PERFORM3_DONE, S.POSTCOPY_FAILED, when="in_postcopy"),
    row("action_failed", S.PERFORM3_DONE, S.CONFIRM3_CANCELLED, then="plan_rollback"),
    # Post-copy failure and resume
    row("status_changed", S.POSTCOPY_FAILED, S.CONFIRM3, when="completed", then="plan_migrated"),
    row("status_changed", S.POSTCOPY_FAILED, None, then="note_status"),
    row("peer_lost", S.POSTCOPY_FAILED, None),
    row("confirm", S.POSTCOPY_FAILED, None),
    row("begin_resume", S.POSTCOPY_FAILED, S.BEGIN_RESUME, when="resumable", then="plan_resume"),
    row("perform_resume", S.BEGIN_RESUME, S.PERFORM_RESUME, then="plan_perform_resume"),
    row("status_changed", _RESUME_PHASES, S.POSTCOPY_FAILED, when="broken"),
    row("status_changed", _RESUME_PHASES, None, then="note_status"),
    row("cancel", _RESUME_PHASES, S.POSTCOPY_FAILED),
    row("peer_lost", _RESUME_PHASES, S.POSTCOPY_FAILED),
    row("action_failed", _RESUME_PHASES, S.POSTCOPY_FAILED),
    # The resume failed on the destination's side: back to post-copy-failed, for a retry
    row("confirm", _RESUME_PHASES, S.POSTCOPY_FAILED, when="cancelled"),
    row("confirm_resume", S.PERFORM_RESUME, S.CONFIRM_RESUME, then="plan_migrated"),
    # This side's QEMU died
    row("guest_lost", (*_LIVE_PHASES, *_RESUME_PHASES), S.GUEST_LOST),
    row("confirm", S.GUEST_LOST, None),
)


class SourceJob(PhaseJob):
    """One outgoing migration, as the source daemon sees it."""

    state: SourcePhase

    side = "source"
    states = SourcePhase
    initial = SourcePhase.NONE
    failed = SourcePhase.FAILED
    finished = frozenset(
        {S.CONFIRM3, S.CONFIRM3_CANCELLED, S.CONFIRM_RESUME, S.ABORTED, S.GUEST_LOST}
    )
    waiting = frozenset({S.POSTCOPY_FAILED})
    table = SOURCE_TABLE

    def __init__(
        self,
        *,
        flags: MigrationFlag,
        phase: SourcePhase | None = None,
        was_running: bool = True,
        postcopy_started: bool = False,
        last_status: MigrationStatus = MigrationStatus.NONE,
    ) -> None:
        self.flags = flags
        self.was_running = was_running
        self.postcopy_started = postcopy_started
        self.switch_requested = postcopy_started
        self.last_status = last_status
        super().__init__(phase=phase)

    # -- conditions ----------------------------------------------------------------------

    def cancelled(self, data: EventData) -> bool:
        event = self.event_of(data)
        return isinstance(event, Confirm) and event.cancelled

    def in_postcopy(self, data: EventData) -> bool:
        status = self.status_in(data)
        return self.postcopy_started or (status is not None and status.in_postcopy)

    def stream_completed(self, _: EventData) -> bool:
        return self.last_status is MigrationStatus.COMPLETED

    def cancel_allowed(self, _: EventData) -> bool:
        if self.postcopy_started or self.switch_requested:
            raise self._refuse("cannot abort migration in post-copy mode")
        return True

    def performed(self, data: EventData) -> bool:
        status = self.status_in(data)
        if status is MigrationStatus.COMPLETED:
            return True
        return status is MigrationStatus.POSTCOPY_ACTIVE and MigrationFlag.POSTCOPY in self.flags

    def switch_allowed(self, _: EventData) -> bool:
        if MigrationFlag.POSTCOPY not in self.flags:
            raise self._refuse("switching to post-copy needs a migration started with postcopy")
        if self.postcopy_started or self.switch_requested:
            raise self._refuse("the migration is already in post-copy")
        return True

    def resumable(self, data: EventData) -> bool:
        event = self.event_of(data)
        assert isinstance(event, BeginResume)
        if event.status is not MigrationStatus.POSTCOPY_PAUSED:
            raise self._refuse(
                f"QEMU reports migration is still running (status {event.status.value})"
            )
        return True

    # -- planners ------------------------------------------------------------------------

    def plan_begin(self, data: EventData) -> None:
        event = self.event_of(data)
        assert isinstance(event, Begin)
        self.was_running = event.running
        self.plan(EmitCookie(CookiePhase.BEGIN))

    def plan_offline(self, _: EventData) -> None:
        if MigrationFlag.UNDEFINE_SOURCE in self.flags:
            self.plan(UndefineDefinition())

    def plan_perform(self, data: EventData) -> None:
        event = self.event_of(data)
        assert isinstance(event, Perform)
        self.plan(*setup_steps(self.flags))
        if event.graphics:
            self.plan(RelocateGraphics())
        if MigrationFlag.LIVE not in self.flags and self.was_running:
            self.plan(PauseGuest())
        qemu_connects = MigrationFlag.PARALLEL | MigrationFlag.POSTCOPY
        self.plan(StartMigration(own_connection=not self.flags & qemu_connects))

    def plan_performed(self, data: EventData) -> None:
        self.note_status(data)
        self.plan(EmitCookie(CookiePhase.PERFORM))

    def note_status(self, data: EventData) -> None:
        super().note_status(data)
        if self.last_status.in_postcopy:
            self.postcopy_started = True

    def pre_switchover(self, data: EventData) -> bool:
        return self.status_in(data) is MigrationStatus.PRE_SWITCHOVER

    def plan_continue(self, data: EventData) -> None:
        self.note_status(data)
        self.plan(ContinueMigration())

    def plan_switch(self, _: EventData) -> None:
        self.switch_requested = True
        self.plan(StartPostcopy())

    def plan_abort(self, data: EventData) -> None:
        self.abort_requested = True
        self.plan_cancel(data)

    def plan_cancel(self, _: EventData) -> None:
        if not self.last_status.finished:
            self.plan(CancelMigration())

    def plan_rollback(self, _: EventData) -> None:
        self.plan(*reset_steps(self.flags))
        if self.was_running:
            self.plan(ResumeGuest())

    def plan_left_paused(self, _: EventData) -> None:
        # libvirt: "finished but we don't know if the domain was successfully started on
        # destination" -- the guest stays paused here and a third party decides.
        self.plan(*reset_steps(self.flags))

    def plan_migrated(self, data: EventData) -> None:
        self.note_status(data)
        self.plan(KillGuest(migrated=True))
        if MigrationFlag.UNDEFINE_SOURCE in self.flags:
            self.plan(UndefineDefinition())

    def plan_resume(self, data: EventData) -> None:
        event = self.event_of(data)
        assert isinstance(event, BeginResume)
        self.last_status = event.status
        self.plan(EmitCookie(CookiePhase.BEGIN_RESUME))

    def plan_perform_resume(self, _: EventData) -> None:
        self.plan(ApplyParams(postcopy_resume=True), StartMigration(resume=True))

    def _refuse(self, message: str) -> PhaseRefused:
        return PhaseRefused(message, side=self.side, state=self.phase)


SourceJob.build_machine()
