"""The API's result records: ``to_json()`` and ``from_wire()`` are inverses, and a malformed
answer is one clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cookies import JobOperation, JobStatistics
from migrator.client import (
    ClientError,
    DomainInfo,
    DomainState,
    DomainSummary,
    HostInfo,
    JobEvent,
    JobInfo,
    JobType,
    LifecycleEvent,
    LifecycleKind,
)

text = st.text(max_size=20)
counters = st.one_of(st.none(), st.integers(min_value=0, max_value=2**63 - 1))
statistics = st.builds(
    JobStatistics,
    time_elapsed=counters,
    downtime=counters,
    data_total=counters,
    data_processed=counters,
    data_remaining=counters,
    memory_iteration=counters,
    errmsg=st.one_of(st.none(), st.text(alphabet=st.characters(codec="ascii", min_codepoint=32))),
)
records = st.one_of(
    st.builds(HostInfo, name=text, uuid=text, driver=text, uri=st.one_of(st.none(), text)),
    st.builds(
        DomainSummary,
        name=text,
        uuid=text,
        state=st.sampled_from(DomainState),
        persistent=st.booleans(),
    ),
    st.builds(
        DomainInfo,
        name=text,
        uuid=text,
        state=st.sampled_from(DomainState),
        persistent=st.booleans(),
        memory_kib=st.integers(min_value=0),
        vcpus=st.integers(min_value=1),
        job=st.one_of(st.none(), st.sampled_from(JobOperation)),
    ),
    st.builds(
        JobInfo,
        job_type=st.sampled_from(JobType),
        operation=st.one_of(st.none(), text),
        phase=st.one_of(st.none(), text),
        statistics=statistics,
        error=st.one_of(st.none(), text),
    ),
    st.builds(LifecycleEvent, domain=text, event=st.sampled_from(LifecycleKind), detail=text),
    st.builds(
        JobEvent,
        domain=text,
        job_id=text,
        phase=text,
        statistics=statistics,
        done=st.booleans(),
        error=st.one_of(st.none(), text),
    ),
)


@given(records)
def test_json_form_round_trips(record: Any) -> None:
    plain = record.to_json()
    assert type(record).from_wire(json.loads(json.dumps(plain))) == record


@pytest.mark.parametrize(
    ("kind", "data", "words"),
    [
        (HostInfo, [], "must be a map"),
        (HostInfo, {"name": "a", "uuid": "u", "uri": None}, "field 'driver' is missing"),
        (DomainSummary, {"name": "a", "uuid": "u", "state": "on", "persistent": True}, "unknown"),
        (
            DomainInfo,
            {
                "name": "a",
                "uuid": "u",
                "state": "running",
                "persistent": True,
                "memory_kib": "1",
                "vcpus": 1,
                "job": None,
            },
            "must be an integer",
        ),
        (
            DomainInfo,
            {
                "name": "a",
                "uuid": "u",
                "state": "running",
                "persistent": True,
                "memory_kib": 1,
                "vcpus": 1,
                "job": "napping",
            },
            "unknown job operation",
        ),
        (JobInfo, {"job_type": "none", "statistics": {"downtime": "x"}}, "invalid statistics"),
    ],
)
def test_malformed_answers_are_named(kind: Any, data: object, words: str) -> None:
    with pytest.raises(ClientError) as bad:
        kind.from_wire(data)
    assert bad.value.code == "bad-answer"
    assert words in bad.value.message


def test_json_names_are_libvirts() -> None:
    info = DomainInfo("vm", "u", DomainState.SHUTOFF, False, 1024, 2, JobOperation.MIGRATION_IN)
    assert info.to_json()["state"] == "shut off"
    assert info.to_json()["job"] == "migration-in"
    job = JobInfo(JobType.UNBOUNDED, "migration-out", "perform3", JobStatistics(downtime=5))
    assert job.to_json()["statistics"] == {"downtime": 5}
