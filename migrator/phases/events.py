"""What the phase machines are told: phase requests, QEMU status changes and failures.

Each event names the trigger of the transition table it fires. The runtime builds these
from RPC requests and driver events; the machines never see a socket or a QMP message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from migrator.status import MigrationStatus


@dataclass(frozen=True)
class Event:
    """Base of every phase-machine event. ``trigger`` is the transition-table trigger."""

    trigger: ClassVar[str]


# -- requests, from a client or the peer ------------------------------------------------------


@dataclass(frozen=True)
class Begin(Event):
    """Source: start an outgoing migration. ``running`` is the guest's state before it."""

    trigger: ClassVar[str] = "begin"
    running: bool


@dataclass(frozen=True)
class Prepare(Event):
    """Destination: get ready to receive the guest."""

    trigger: ClassVar[str] = "prepare"


@dataclass(frozen=True)
class Perform(Event):
    """Source: send the guest. ``graphics`` is true when the prepare cookie carried a
    display endpoint to relocate clients to."""

    trigger: ClassVar[str] = "perform"
    graphics: bool = False


@dataclass(frozen=True)
class Finish(Event):
    """Destination: the source's perform ended; ``cancelled`` when it failed."""

    trigger: ClassVar[str] = "finish"
    cancelled: bool


@dataclass(frozen=True)
class Confirm(Event):
    """Source: the destination's finish ended; ``cancelled`` when it failed."""

    trigger: ClassVar[str] = "confirm"
    cancelled: bool


@dataclass(frozen=True)
class Cancel(Event):
    """Abort the job (``domjobabort``)."""

    trigger: ClassVar[str] = "cancel"


@dataclass(frozen=True)
class SwitchToPostcopy(Event):
    """Source: switch a running pre-copy migration to post-copy."""

    trigger: ClassVar[str] = "switch_to_postcopy"


@dataclass(frozen=True)
class BeginResume(Event):
    """Source: start resuming a failed post-copy migration. ``status`` is QEMU's
    migration status as just queried: resuming needs ``postcopy-paused``."""

    trigger: ClassVar[str] = "begin_resume"
    status: MigrationStatus


@dataclass(frozen=True)
class PrepareResume(Event):
    """Destination: wait for the paused post-copy stream to reconnect."""

    trigger: ClassVar[str] = "prepare_resume"


@dataclass(frozen=True)
class PerformResume(Event):
    """Source: reconnect the paused post-copy stream."""

    trigger: ClassVar[str] = "perform_resume"


@dataclass(frozen=True)
class FinishResume(Event):
    """Destination: the resumed post-copy migration is to be completed."""

    trigger: ClassVar[str] = "finish_resume"


@dataclass(frozen=True)
class ConfirmResume(Event):
    """Source: the resumed post-copy migration completed on the destination."""

    trigger: ClassVar[str] = "confirm_resume"


# -- observations, from the driver or the link to the peer ------------------------------------


@dataclass(frozen=True)
class StatusChanged(Event):
    """QEMU reported a new migration status on this side."""

    trigger: ClassVar[str] = "status_changed"
    status: MigrationStatus


@dataclass(frozen=True)
class PeerLost(Event):
    """The connection to the peer (or to the controlling client) is gone."""

    trigger: ClassVar[str] = "peer_lost"


@dataclass(frozen=True)
class GuestLost(Event):
    """This side's QEMU exited or crashed."""

    trigger: ClassVar[str] = "guest_lost"
    detail: str = ""


@dataclass(frozen=True)
class ActionFailed(Event):
    """An action this side returned could not be carried out."""

    trigger: ClassVar[str] = "action_failed"
    action: str
    detail: str = ""


@dataclass(frozen=True)
class TimedOut(Event):
    """The job ran past its deadline (``migrate --timeout``)."""

    trigger: ClassVar[str] = "timed_out"
