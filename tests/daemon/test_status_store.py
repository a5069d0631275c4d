"""FileStatusStore: job records on disk, alone and as a host's status store in a migration."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import msgpack
import pytest

from migrator.daemon import FileStatusStore, StateDir, StateDirError
from migrator.domain import inactive
from migrator.runtime.host import StatusStore
from migrator.runtime.records import JobRecord, JobSide
from migrator.status import MigrationStatus
from params import MigrationFlag
from tests.runtime.cluster import LIVE_P2P, Cluster, make_domain

from .conftest import temp_files


def record(domain: str = "vm", *, phase: str = "perform3") -> JobRecord:
    return JobRecord(
        job_id="5d7c0c5e-0000-4000-8000-000000000001",
        side=JobSide.SOURCE,
        domain=domain,
        phase=phase,
        flags=int(LIVE_P2P),
        params={"bandwidth": 100, "compression.method": "zstd"},
        originals={"downtime-limit": 300, "multifd-channels": 2},
        cookies_seen=("begin3", "prepare3"),
        journal=("applied-params",),
        was_running=True,
        postcopy_started=False,
        last_status=MigrationStatus.ACTIVE,
        peer="host-b",
        definition="<domain type='kvm'><name>vm</name></domain>",
    )


def test_records_round_trip_and_are_listed(state: StateDir) -> None:
    store: StatusStore = state.status
    store.save("vm", record("vm"))
    store.save("db", record("db", phase="begin3"))
    assert store.load("vm") == record("vm")
    assert store.load("db") == record("db", phase="begin3")
    assert store.names() == ["db", "vm"]
    assert stat.S_IMODE((state.path / "status" / "vm.msgpack").stat().st_mode) == 0o600


def test_a_save_replaces_the_record_and_delete_removes_it(state: StateDir) -> None:
    store = state.status
    store.save("vm", record(phase="begin3"))
    store.save("vm", record(phase="confirm3"))
    assert store.load("vm") == record(phase="confirm3")
    store.delete("vm")
    store.delete("vm")
    assert store.load("vm") is None
    assert store.names() == []
    assert temp_files(state.path) == []


def test_records_survive_a_reopen(tmp_path: Path) -> None:
    root = tmp_path / "state"
    with StateDir(root) as state:
        state.status.save("vm", record())
    with StateDir(root) as state:
        assert state.status.load("vm") == record()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x93\x01", "not a valid job record"),
        (b"\xc1", "not a valid job record"),
        (msgpack.packb([1, 2, 3]), "job record is not a mapping"),
        (msgpack.packb({"job_id": "x"}), "field is missing or invalid"),
    ],
)
def test_a_corrupt_record_is_refused_naming_the_file(
    state: StateDir, content: bytes, message: str
) -> None:
    bad = state.path / "status" / "vm.msgpack"
    bad.write_bytes(content)
    with pytest.raises(StateDirError, match=message) as info:
        state.status.load("vm")
    assert str(bad) in str(info.value)
    assert info.value.path == bad


def test_an_unreadable_record_is_refused_naming_the_file(state: StateDir) -> None:
    (state.path / "status" / "vm.msgpack").mkdir()
    with pytest.raises(StateDirError, match=r"cannot read .*vm\.msgpack"):
        state.status.load("vm")


def test_record_names_are_validated(tmp_path: Path) -> None:
    store = FileStatusStore(tmp_path)
    for call in (
        lambda: store.save("../vm", record()),
        lambda: store.load("../vm"),
        lambda: store.delete("../vm"),
    ):
        with pytest.raises(StateDirError, match=re.escape("invalid domain name '../vm'")):
            call()
    assert list(tmp_path.iterdir()) == []


# -- As the runtime's status store ------------------------------------------------------


def on_disk(cluster: Cluster, tmp_path: Path) -> tuple[StateDir, StateDir]:
    """Give both hosts of ``cluster`` a state directory for their status and definitions."""
    states = (StateDir(tmp_path / "a"), StateDir(tmp_path / "b"))
    for host, state in zip((cluster.a, cluster.b), states, strict=True):
        host.status = state.status
        host.on_definitions_changed = state.sync_definitions
    return states


async def test_a_migration_leaves_no_records_and_moves_the_definition(tmp_path: Path) -> None:
    cluster = Cluster()
    state_a, state_b = on_disk(cluster, tmp_path)
    with state_a, state_b:
        await cluster.start(make_domain())
        assert list(state_a.definitions()) == ["vm"]
        await cluster.migrate(
            "vm", flags=LIVE_P2P | MigrationFlag.PERSIST_DEST | MigrationFlag.UNDEFINE_SOURCE
        )
        assert await cluster.running_on("vm") == ["host-b"]
        assert list((tmp_path / "a" / "status").iterdir()) == []
        assert list((tmp_path / "b" / "status").iterdir()) == []
        assert state_a.definitions() == {}
        assert state_b.definitions() == {"vm": inactive(cluster.b.definitions["vm"])}
        await cluster.migrate("vm", source=cluster.b)
        assert await cluster.running_on("vm") == ["host-a"]
        assert state_a.status.names() == [] and state_b.status.names() == []


async def test_a_record_is_on_disk_while_the_job_runs(tmp_path: Path) -> None:
    cluster = Cluster()
    state_a, state_b = on_disk(cluster, tmp_path)
    with state_a, state_b:
        await cluster.start(make_domain())
        source = cluster.source(cluster.a)
        await source.begin("vm", flags=LIVE_P2P, typed={"bandwidth": 64})
        assert state_a.status.names() == ["vm"]
        stored = FileStatusStore(tmp_path / "a" / "status").load("vm")
        assert stored is not None
        assert stored.side is JobSide.SOURCE
        assert stored.phase == source.job("vm").phase
        assert stored.flags == int(LIVE_P2P)
        assert "<name>vm</name>" in stored.definition
        await source.confirm("vm", cookie=None, cancelled=True)
        assert state_a.status.names() == []
        assert await cluster.running_on("vm") == ["host-a"]
