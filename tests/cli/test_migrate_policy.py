"""The client's own migration policy: --timeout and --postcopy-after-precopy (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cookies import JobStatistics
from migrator.cli.migrate_policy import MigrationPolicy, PolicyStep, PolicyWatch, TimeoutAction

FIRST_PASS = JobStatistics(memory_iteration=1)
SECOND_PASS = JobStatistics(memory_iteration=2)


def test_no_policy_never_steps_in() -> None:
    watch = PolicyWatch(MigrationPolicy())
    assert watch.on_statistics(SECOND_PASS) is None
    assert watch.on_timeout() is None
    assert watch.taken == ()


def test_postcopy_after_the_first_pass_once() -> None:
    watch = PolicyWatch(MigrationPolicy(postcopy_after_precopy=True))
    assert watch.on_statistics(JobStatistics()) is None
    assert watch.on_statistics(FIRST_PASS) is None
    assert watch.on_statistics(SECOND_PASS) is PolicyStep.START_POSTCOPY
    assert watch.on_statistics(JobStatistics(memory_iteration=3)) is None
    assert watch.taken == (PolicyStep.START_POSTCOPY,)


def test_timeout_suspends_once() -> None:
    watch = PolicyWatch(MigrationPolicy(timeout_s=10))
    assert watch.on_timeout() is PolicyStep.SUSPEND
    assert watch.on_timeout() is None


def test_timeout_switches_to_postcopy_when_asked() -> None:
    watch = PolicyWatch(MigrationPolicy(timeout_s=10, timeout_action=TimeoutAction.POSTCOPY))
    assert watch.on_timeout() is PolicyStep.START_POSTCOPY


def test_no_suspend_once_the_guest_runs_on_the_destination() -> None:
    watch = PolicyWatch(MigrationPolicy(timeout_s=10, postcopy_after_precopy=True))
    assert watch.on_statistics(SECOND_PASS) is PolicyStep.START_POSTCOPY
    assert watch.on_timeout() is None


@given(
    st.builds(
        MigrationPolicy,
        timeout_s=st.none() | st.integers(1, 100),
        timeout_action=st.sampled_from(TimeoutAction),
        postcopy_after_precopy=st.booleans(),
    ),
    st.lists(st.none() | st.integers(0, 5), max_size=12),
)
def test_each_step_at_most_once_and_never_suspend_after_postcopy(policy, happenings) -> None:
    watch = PolicyWatch(policy)
    for iteration in happenings:
        if iteration is None:
            watch.on_timeout()
        else:
            watch.on_statistics(JobStatistics(memory_iteration=iteration))
    taken = watch.taken
    assert len(set(taken)) == len(taken)
    if PolicyStep.START_POSTCOPY in taken and PolicyStep.SUSPEND in taken:
        assert taken.index(PolicyStep.SUSPEND) < taken.index(PolicyStep.START_POSTCOPY)
    if PolicyStep.START_POSTCOPY in taken:
        assert policy.postcopy_after_precopy or policy.timeout_action is TimeoutAction.POSTCOPY
