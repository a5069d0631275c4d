"""What the phase machines ask the runtime to do, in order.

The runtime carries out each action on the driver, the state directory or the peer, and
reports a failure back as an :class:`~migrator.phases.events.ActionFailed` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from cookies import CookiePhase
from params import MigrationFlag


@dataclass(frozen=True)
class Action:
    """Base of every action."""

    @property
    def name(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class StartIncoming(Action):
    """Start the guest paused, waiting for the incoming stream, and listen for it."""


@dataclass(frozen=True)
class SaveOriginalParams(Action):
    """Read QEMU's current migration parameters and persist them before changing any."""


@dataclass(frozen=True)
class CreateTLSCredentials(Action):
    """Create this side's TLS credentials in QEMU, from the host's certificate directory
    (libvirt's ``qemuMigrationParamsEnableTLS``)."""


@dataclass(frozen=True)
class ApplyParams(Action):
    """Apply the job's capabilities and parameters. With ``tls`` the parameters name this
    side's TLS credentials (and, on the source, the host name the destination's certificate
    must carry); without, they turn TLS off explicitly, so that nothing left from an earlier
    job applies. With ``postcopy_resume`` only the parameters re-applied on post-copy
    resume, and no capabilities."""

    tls: bool = False
    postcopy_resume: bool = False


@dataclass(frozen=True)
class RestoreParams(Action):
    """Turn every capability off and put the saved original parameters back."""


@dataclass(frozen=True)
class DeleteTLSCredentials(Action):
    """Delete this side's TLS credentials from QEMU (one already gone is fine)."""


@dataclass(frozen=True)
class RelocateGraphics(Action):
    """Point connected display clients at the destination (SPICE)."""


@dataclass(frozen=True)
class PauseGuest(Action):
    """Stop the guest's CPUs."""


@dataclass(frozen=True)
class ResumeGuest(Action):
    """Start the guest's CPUs."""


@dataclass(frozen=True)
class StartMigration(Action):
    """Start sending the guest; with ``resume`` reconnect a paused post-copy migration.

    With ``own_connection`` this host opens the stream's connection and hands it to QEMU
    (libvirt's "connect host" destination), so that it can tune the socket; QEMU connects
    by itself where it opens more than one channel or must reconnect (multifd, post-copy).
    """

    resume: bool = False
    own_connection: bool = False


@dataclass(frozen=True)
class ContinueMigration(Action):
    """Let a migration waiting at ``pre-switchover`` switch over (``migrate-continue``)."""


@dataclass(frozen=True)
class CancelMigration(Action):
    """Cancel the outgoing migration and wait until QEMU says it is cancelled."""


@dataclass(frozen=True)
class StartPostcopy(Action):
    """Switch the running migration to post-copy."""


@dataclass(frozen=True)
class RecoverPostcopy(Action):
    """Destination: listen for the paused post-copy stream to reconnect."""


@dataclass(frozen=True)
class KillGuest(Action):
    """End this side's QEMU. ``migrated`` when the guest now runs on the other host."""

    migrated: bool = False


@dataclass(frozen=True)
class PersistDefinition(Action):
    """Destination: store the persistent definition that came in the cookie."""


@dataclass(frozen=True)
class UndefineDefinition(Action):
    """Source: remove the persistent definition (``--undefinesource``)."""


@dataclass(frozen=True)
class EmitCookie(Action):
    """Build this phase's outgoing cookie."""

    phase: CookiePhase


def setup_steps(flags: MigrationFlag) -> tuple[Action, ...]:
    """Set QEMU up for a migration with ``flags``: save its parameters, create the TLS
    credentials if the stream is to be encrypted, apply the job's settings."""
    tls = MigrationFlag.TLS in flags
    create = (CreateTLSCredentials(),) if tls else ()
    return (SaveOriginalParams(), *create, ApplyParams(tls=tls))


def reset_steps(flags: MigrationFlag) -> tuple[Action, ...]:
    """Put QEMU back as it was before a migration with ``flags`` (libvirt's
    ``qemuMigrationParamsReset``): its parameters, then no TLS credentials left."""
    delete = (DeleteTLSCredentials(),) if MigrationFlag.TLS in flags else ()
    return (RestoreParams(), *delete)
