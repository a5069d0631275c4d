"""Reading scenario files (TOML) into :class:`~migrator.scenario.model.Scenario`.

Every mistake is one :class:`ScenarioFileError` naming the file and the field: an unknown
key, a value of the wrong type, a name that is not one of the allowed ones, parameters the
parameter table refuses.

A file looks like this::

    description = "The destination QEMU crashes while the memory is copied."
    drivers = ["sim", "qemu"]

    [guest]                       # all optional
    memory_mib = 1024
    working_set_mib = 64
    dirty_rate_mib_s = 20

    [migration]
    mode = "p2p"                  # or "direct"
    flags = ["live"]              # p2p adds peer2peer
    typed = { bandwidth = 100 }

    [[faults]]
    kind = "qemu-crash"
    at = "status:active@destination"

    [expect]
    result = "failed"
    error = "did not complete"
    guest = { source = "running", destination = "absent" }
    defined_on = ["source"]
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import params
from migrator.scenario.errors import ScenarioFileError
from migrator.scenario.model import (
    COMMANDS,
    DriverName,
    Expectation,
    Fault,
    FaultKind,
    GuestSpec,
    GuestStart,
    GuestState,
    HostsSpec,
    JobResult,
    KnownIssue,
    MigrationSpec,
    Mode,
    Phase,
    Point,
    PointKind,
    Role,
    Scenario,
    Step,
    StepKind,
    TimeoutAction,
)
from migrator.status import MigrationStatus
from params import MigrationFlag, ParamsError, Side

SUFFIX = ".toml"

EnumT = TypeVar("EnumT", bound=enum.Enum)
T = TypeVar("T")

#: The fields each fault kind takes besides ``kind``, ``at`` and ``host``.
_FAULT_FIELDS: dict[FaultKind, frozenset[str]] = {
    FaultKind.DAEMON_KILLED: frozenset({"restart"}),
    FaultKind.PARTITION: frozenset({"seconds"}),
    FaultKind.SLOW_LINK: frozenset({"rate_mib_s", "delay_ms"}),
    FaultKind.TIMEOUT: frozenset({"seconds", "action"}),
}

#: The fields each step kind takes besides ``do``.
_STEP_FIELDS: dict[StepKind, frozenset[str]] = {
    StepKind.WAIT: frozenset({"seconds"}),
    StepKind.MIGRATE: frozenset({"result", "error"}),
    StepKind.RESUME_POSTCOPY: frozenset({"result", "error"}),
    StepKind.RESTART_DAEMON: frozenset({"host"}),
}


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """The scenario files named by ``paths``: files as given, directories' ``*.toml``
    (sorted).

    Raises:
        ScenarioFileError: a path that does not exist, or a directory with no scenario.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            files = sorted(path.glob(f"*{SUFFIX}"))
            if not files:
                raise ScenarioFileError(f"no *{SUFFIX} scenario files in it", path=path)
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise ScenarioFileError("no such file or directory", path=path)
    return found


def load_scenario(path: Path) -> Scenario:
    """Read and check one scenario file.

    Raises:
        ScenarioFileError: the file cannot be read, is not TOML, or says something wrong.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioFileError(f"cannot read it: {exc.strerror or exc}", path=path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioFileError(f"not valid TOML: {exc}", path=path) from None
    return _Reader(path).scenario(document)


class _Reader:
    """Turns one parsed document into a scenario, naming the field of any mistake."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: str, message: str) -> ScenarioFileError:
        return ScenarioFileError(message, path=self.path, field=where)

    # -- the document -------------------------------------------------------------------

    def scenario(self, document: dict[str, Any]) -> Scenario:
        self.keys(
            "",
            document,
            allowed={
                "description",
                "drivers",
                "hosts",
                "guest",
                "migration",
                "faults",
                "then",
                "expect",
                "known_issue",
            },
            required={"description", "drivers", "expect"},
        )
        hosts = self.hosts(self.table("hosts", document.get("hosts", {})))
        migration = self.migration(self.table("migration", document.get("migration", {})))
        faults = tuple(
            self.fault(f"faults[{index}]", self.table(f"faults[{index}]", entry))
            for index, entry in enumerate(self.array("faults", document.get("faults", [])))
        )
        steps = tuple(
            self.step(f"then[{index}]", self.table(f"then[{index}]", entry))
            for index, entry in enumerate(self.array("then", document.get("then", [])))
        )
        known_issue = (
            self.known_issue(self.table("known_issue", document["known_issue"]))
            if "known_issue" in document
            else None
        )
        return Scenario(
            name=self.path.stem,
            path=self.path,
            description=self.text("description", document["description"]),
            drivers=frozenset(
                self.choice("drivers", DriverName, item)
                for item in self.array("drivers", document["drivers"], nonempty=True)
            ),
            hosts=hosts,
            guest=self.guest(self.table("guest", document.get("guest", {}))),
            migration=migration,
            faults=faults,
            steps=steps,
            expect=self.expectation(self.table("expect", document["expect"])),
            known_issue=known_issue,
        )

    def known_issue(self, table: dict[str, Any]) -> KnownIssue:
        self.keys(
            "known_issue",
            table,
            allowed={"reason", "differences"},
            required={"reason", "differences"},
        )
        return KnownIssue(
            reason=self.text("known_issue.reason", table["reason"]),
            differences=tuple(
                self.text("known_issue.differences", item)
                for item in self.array(
                    "known_issue.differences", table["differences"], nonempty=True
                )
            ),
        )

    def hosts(self, table: dict[str, Any]) -> HostsSpec:
        self.keys(
            "hosts", table, allowed={"source", "destination", "rate_mib_s", "delay_ms", "same_uuid"}
        )
        spec = HostsSpec(
            source=self.text("hosts.source", table.get("source", "host-a")),
            destination=self.text("hosts.destination", table.get("destination", "host-b")),
            rate_mib_s=(
                None
                if "rate_mib_s" not in table
                else self.positive("hosts.rate_mib_s", table["rate_mib_s"])
            ),
            delay_ms=self.number("hosts.delay_ms", table.get("delay_ms", 0)),
            same_uuid=self.flag("hosts.same_uuid", table.get("same_uuid", False)),
        )
        if spec.source == spec.destination:
            raise self.error("hosts", "the source and the destination must be two hosts")
        return spec

    def guest(self, table: dict[str, Any]) -> GuestSpec:
        self.keys(
            "guest",
            table,
            allowed={
                "name",
                "memory_mib",
                "working_set_mib",
                "dirty_rate_mib_s",
                "start",
                "persistent",
            },
        )
        spec = GuestSpec(
            name=self.text("guest.name", table.get("name", "vm")),
            memory_mib=self.count("guest.memory_mib", table.get("memory_mib", 1024), least=1),
            working_set_mib=self.count("guest.working_set_mib", table.get("working_set_mib", 0)),
            dirty_rate_mib_s=self.count("guest.dirty_rate_mib_s", table.get("dirty_rate_mib_s", 0)),
            start=self.choice("guest.start", GuestStart, table.get("start", "running")),
            persistent=self.flag("guest.persistent", table.get("persistent", True)),
        )
        if spec.working_set_mib > spec.memory_mib:
            raise self.error("guest.working_set_mib", "larger than the guest's memory")
        if spec.start is GuestStart.SHUTOFF and not spec.persistent:
            raise self.error("guest.start", "a shut-off guest must be persistent")
        return spec

    def migration(self, table: dict[str, Any]) -> MigrationSpec:
        self.keys("migration", table, allowed={"mode", "flags", "typed", "repeat"})
        mode = self.choice("migration.mode", Mode, table.get("mode", "p2p"))
        names = [
            self.text("migration.flags", item)
            for item in self.array("migration.flags", table.get("flags", ["live"]))
        ]
        try:
            flags = params.parse_flags(",".join(names))
        except ParamsError as exc:
            raise self.error("migration.flags", str(exc)) from None
        if mode is Mode.P2P:
            flags |= MigrationFlag.PEER2PEER
        elif MigrationFlag.PEER2PEER in flags:
            raise self.error("migration.flags", "peer2peer contradicts mode 'direct'")
        typed = self.table("migration.typed", table.get("typed", {}))
        try:
            params.from_typed(typed, flags=flags, side=Side.SOURCE)
        except ParamsError as exc:
            raise self.error("migration.typed", str(exc)) from None
        return MigrationSpec(
            mode=mode,
            flags=flags,
            typed=dict(typed),
            repeat=self.count("migration.repeat", table.get("repeat", 1), least=1),
        )

    def fault(self, where: str, table: dict[str, Any]) -> Fault:
        kind = self.choice(f"{where}.kind", FaultKind, table.get("kind"))
        extra = _FAULT_FIELDS.get(kind, frozenset())
        self.keys(where, table, allowed={"kind", "at", "host", *extra}, required={"kind", "at"})
        at = self.point(f"{where}.at", table["at"])
        target = self.choice(f"{where}.host", Role, table.get("host", at.role.value))
        fault = Fault(
            kind=kind,
            at=at,
            target=target,
            restart=self.flag(f"{where}.restart", table.get("restart", True)),
            seconds=self.number(f"{where}.seconds", table.get("seconds", 0)),
            rate_mib_s=self.number(f"{where}.rate_mib_s", table.get("rate_mib_s", 0)),
            delay_ms=self.number(f"{where}.delay_ms", table.get("delay_ms", 0)),
            action=self.choice(f"{where}.action", TimeoutAction, table.get("action", "abort")),
        )
        self.check_fault(where, fault)
        return fault

    def check_fault(self, where: str, fault: Fault) -> None:
        kind, at = fault.kind, fault.at
        if kind in (FaultKind.PARTITION, FaultKind.TIMEOUT) and not fault.seconds > 0:
            raise self.error(f"{where}.seconds", f"a {kind.value} needs a positive duration")
        if kind is FaultKind.SLOW_LINK and not fault.rate_mib_s > 0:
            raise self.error(f"{where}.rate_mib_s", "a slow link needs a positive rate")
        if kind.alters_cookie and not (
            at.kind is PointKind.AFTER and at.phase is not None and at.phase.emits_cookie
        ):
            raise self.error(
                f"{where}.at", f"a {kind.value} fault needs 'after:' a phase that emits a cookie"
            )
        if kind is FaultKind.QEMU_CRASH and at.command == "launch":
            raise self.error(
                f"{where}.at", "there is no QEMU to crash before 'launch': use status:setup"
            )

    def point(self, where: str, value: object) -> Point:
        text = self.text(where, value)
        kind_text, _, rest = text.partition(":")
        kind = self.choice(where, PointKind, kind_text)
        if kind in (PointKind.BEFORE, PointKind.AFTER):
            phase = self.choice(where, Phase, rest)
            return Point(kind, phase.role, phase=phase)
        what, at_sign, role_text = rest.partition("@")
        if not at_sign:
            raise self.error(where, f"'{text}' must name the side: '{kind.value}:{what}@source'")
        role = self.choice(where, Role, role_text)
        if kind is PointKind.STATUS:
            return Point.on_status(self.choice(where, MigrationStatus, what), role)
        if what not in COMMANDS:
            raise self.error(
                where, f"unknown command '{what}' (one of {', '.join(sorted(COMMANDS))})"
            )
        return Point.on_command(what, role)

    def step(self, where: str, table: dict[str, Any]) -> Step:
        kind = self.choice(f"{where}.do", StepKind, table.get("do"))
        self.keys(where, table, allowed={"do", *_STEP_FIELDS[kind]}, required={"do"})
        if (
            kind is StepKind.WAIT
            and not self.number(f"{where}.seconds", table.get("seconds", 0)) > 0
        ):
            raise self.error(f"{where}.seconds", "a wait needs a positive duration")
        result = table.get("result")
        error = table.get("error")
        return Step(
            kind=kind,
            seconds=self.number(f"{where}.seconds", table.get("seconds", 0)),
            host=self.choice(f"{where}.host", Role, table.get("host", "source")),
            result=None if result is None else self.choice(f"{where}.result", JobResult, result),
            error=None if error is None else self.text(f"{where}.error", error),
        )

    def expectation(self, table: dict[str, Any]) -> Expectation:
        self.keys(
            "expect",
            table,
            allowed={
                "result",
                "error",
                "guest",
                "defined_on",
                "open_jobs",
                "heartbeat",
                "memory_checksum",
            },
            required={"result", "guest", "defined_on"},
        )
        guest = self.table("expect.guest", table["guest"])
        self.keys(
            "expect.guest",
            guest,
            allowed={"source", "destination"},
            required={"source", "destination"},
        )
        error = table.get("error")
        return Expectation(
            result=self.choice("expect.result", JobResult, table["result"]),
            error=None if error is None else self.text("expect.error", error),
            guest={
                role: self.choice(f"expect.guest.{role.value}", GuestState, guest[role.value])
                for role in Role
            },
            defined_on=self.roles("expect.defined_on", table["defined_on"]),
            open_jobs=self.roles("expect.open_jobs", table.get("open_jobs", [])),
            heartbeat=self.flag("expect.heartbeat", table.get("heartbeat", False)),
            memory_checksum=self.flag(
                "expect.memory_checksum", table.get("memory_checksum", False)
            ),
        )

    # -- values -------------------------------------------------------------------------

    def keys(
        self,
        where: str,
        table: dict[str, Any],
        *,
        allowed: set[str] | frozenset[str],
        required: set[str] | frozenset[str] = frozenset(),
    ) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(
                    where, f"unknown key '{key}' (allowed: {', '.join(sorted(allowed))})"
                )
        for key in sorted(required):
            if key not in table:
                raise self.error(where, f"'{key}' is required")

    def table(self, where: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(where, "must be a table")
        return value

    def array(self, where: str, value: object, *, nonempty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(where, "must be an array")
        if nonempty and not value:
            raise self.error(where, "must not be empty")
        return value

    def text(self, where: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(where, "must be a non-empty string")
        return value

    def flag(self, where: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.error(where, "must be true or false")
        return value

    def number(self, where: str, value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.error(where, "must be a number, zero or more")
        return float(value)

    def positive(self, where: str, value: object) -> float:
        number = self.number(where, value)
        if not number > 0:
            raise self.error(where, "must be more than zero")
        return number

    def count(self, where: str, value: object, *, least: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise self.error(where, f"must be a whole number, {least} or more")
        return value

    def choice(self, where: str, kind: type[EnumT], value: object) -> EnumT:
        try:
            return kind(value)
        except ValueError:
            names = ", ".join(str(member.value) for member in kind)
            raise self.error(where, f"'{value}' is not one of: {names}") from None

    def roles(self, where: str, value: object) -> frozenset[Role]:
        return frozenset(self.choice(where, Role, item) for item in self.array(where, value))
