"""The client's own migration policy, as virsh applies it: ``--timeout`` (then suspend the
guest or switch to post-copy) and ``--postcopy-after-precopy``.

Pure: :class:`PolicyWatch` is told what happened (statistics arrived, the timeout passed)
and answers with what to do; the ``migrate`` command carries it out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cookies import JobStatistics

#: QEMU's pass counter once the first pass over memory has ended.
SECOND_PASS = 2


class TimeoutAction(enum.Enum):
    """What the client does to a migration still running when ``--timeout`` passes."""

    SUSPEND = "suspend"
    POSTCOPY = "postcopy"


@dataclass(frozen=True)
class MigrationPolicy:
    """The client's own policy while a migration runs (virsh's, not the daemon's)."""

    #: Seconds of migration after which :attr:`timeout_action` is taken; None: never.
    timeout_s: int | None = None
    timeout_action: TimeoutAction = TimeoutAction.SUSPEND
    #: Switch to post-copy once the first pass over memory has ended.
    postcopy_after_precopy: bool = False


class PolicyStep(enum.Enum):
    """What the client asks the source daemon to do."""

    SUSPEND = "suspend the guest"
    START_POSTCOPY = "switch to post-copy"


class PolicyWatch:
    """Decides when the client steps into a running migration: each step at most once, and
    no suspend after the switch to post-copy (the guest then runs on the destination)."""

    def __init__(self, policy: MigrationPolicy) -> None:
        self.policy = policy
        self._taken: list[PolicyStep] = []

    @property
    def taken(self) -> tuple[PolicyStep, ...]:
        """The steps decided so far, in order."""
        return tuple(self._taken)

    def on_statistics(self, statistics: JobStatistics) -> PolicyStep | None:
        """A progress report arrived: the post-copy switch, once the first pass has ended."""
        if not self.policy.postcopy_after_precopy:
            return None
        if (statistics.memory_iteration or 0) < SECOND_PASS:
            return None
        return self._take(PolicyStep.START_POSTCOPY)

    def on_timeout(self) -> PolicyStep | None:
        """``--timeout`` seconds have passed and the migration still runs."""
        if self.policy.timeout_s is None:
            return None
        if self.policy.timeout_action is TimeoutAction.POSTCOPY:
            return self._take(PolicyStep.START_POSTCOPY)
        if PolicyStep.START_POSTCOPY in self._taken:
            return None
        return self._take(PolicyStep.SUSPEND)

    def _take(self, step: PolicyStep) -> PolicyStep | None:
        if step in self._taken:
            return None
        self._taken.append(step)
        return step
