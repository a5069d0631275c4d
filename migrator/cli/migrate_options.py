"""What ``migrator migrate``'s switches and options mean: migration flags, typed parameters
and the client's own policy, with virsh's names and virsh's checks.

Each switch names one :class:`params.MigrationFlag`; each option names one row of the
parameter table, from which it takes its typed-parameter name, its value type and its help.
Values go through :func:`params.typed_from_text` and the whole request through
:func:`params.from_typed`, so that a bad value or combination gets libvirt's message before
anything is sent. Pure: no I/O beyond reading the files that ``--xml`` and
``--persistent-xml`` name.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from migrator.cli.migrate_policy import MigrationPolicy, TimeoutAction
from migrator.cli.option_errors import OptionError
from params import TABLE, MigrationFlag, Param, Row, Side, from_typed, typed_from_text


@dataclass(frozen=True)
class FlagSwitch:
    """A ``migrate`` switch that sets one migration flag."""

    name: str
    flag: MigrationFlag
    help: str


class ValueForm(enum.Enum):
    """How an option's text becomes the typed parameter's value."""

    #: The text is the value.
    TEXT = "text"
    #: A comma-separated list, one value per item (multi-valued parameters).
    LIST = "list"
    #: The text names a file whose contents are the value.
    FILE = "file"


_UNIT_METAVARS = {"%": "PERCENT"}


@dataclass(frozen=True)
class TypedOption:
    """A ``migrate`` option that gives one typed parameter (the row of ``param``)."""

    name: str
    param: Param
    form: ValueForm = ValueForm.TEXT

    @property
    def row(self) -> Row:
        return TABLE[self.param]

    @property
    def typed_name(self) -> str:
        typed_name = self.row.typed_name
        assert typed_name is not None, f"row {self.param} has no typed-parameter name"
        return typed_name

    @property
    def metavar(self) -> str:
        if self.form is ValueForm.FILE:
            return "FILE"
        if self.form is ValueForm.LIST:
            return "LIST"
        unit = (self.row.typed_unit or self.row.unit).label
        return (
            _UNIT_METAVARS.get(unit, unit.upper().replace("/", "_"))
            or self.row.value_type.value.upper()
        )

    @property
    def help(self) -> str:
        text = f"{self.row.description} (typed parameter {self.typed_name})"
        if self.form is ValueForm.LIST:
            text = f"comma-separated {text}"
        return text[0].upper() + text[1:]


#: virsh's switches, in virsh's order.
FLAG_SWITCHES: tuple[FlagSwitch, ...] = (
    FlagSwitch("live", MigrationFlag.LIVE, "Live migration"),
    FlagSwitch("offline", MigrationFlag.OFFLINE, "Offline migration: only the definition"),
    FlagSwitch("p2p", MigrationFlag.PEER2PEER, "Peer-2-peer migration: the source daemon drives"),
    FlagSwitch("persistent", MigrationFlag.PERSIST_DEST, "Persist the domain on the destination"),
    FlagSwitch(
        "undefinesource", MigrationFlag.UNDEFINE_SOURCE, "Undefine the domain on the source"
    ),
    FlagSwitch("suspend", MigrationFlag.PAUSED, "Leave the domain paused on the destination"),
    FlagSwitch("change-protection", MigrationFlag.CHANGE_PROTECTION, "No change to the domain"),
    FlagSwitch("unsafe", MigrationFlag.UNSAFE, "Force the migration even if it may be unsafe"),
    FlagSwitch("compressed", MigrationFlag.COMPRESSED, "Compress repeated pages"),
    FlagSwitch("auto-converge", MigrationFlag.AUTO_CONVERGE, "Throttle the guest to converge"),
    FlagSwitch("rdma-pin-all", MigrationFlag.RDMA_PIN_ALL, "Pin all memory for RDMA"),
    FlagSwitch("abort-on-error", MigrationFlag.ABORT_ON_ERROR, "Abort on a guest I/O error"),
    FlagSwitch("postcopy", MigrationFlag.POSTCOPY, "Allow switching to post-copy"),
    FlagSwitch("tls", MigrationFlag.TLS, "Encrypt the migration stream with TLS"),
    FlagSwitch("parallel", MigrationFlag.PARALLEL, "Parallel migration (multifd)"),
    FlagSwitch("zerocopy", MigrationFlag.ZEROCOPY, "Zero-copy send of parallel migration"),
)

#: virsh's options that give typed parameters, in virsh's order.
TYPED_OPTIONS: tuple[TypedOption, ...] = (
    TypedOption("migrateuri", Param.MIGRATE_URI),
    TypedOption("graphicsuri", Param.GRAPHICS_URI),
    TypedOption("listen-address", Param.LISTEN_ADDRESS),
    TypedOption("dname", Param.DESTINATION_NAME),
    TypedOption("xml", Param.DESTINATION_XML, ValueForm.FILE),
    TypedOption("persistent-xml", Param.PERSISTENT_XML, ValueForm.FILE),
    TypedOption("migrate-disks", Param.MIGRATE_DISKS, ValueForm.LIST),
    TypedOption("disks-port", Param.DISKS_PORT),
    TypedOption("disks-uri", Param.DISKS_URI),
    TypedOption("comp-methods", Param.COMPRESSION, ValueForm.LIST),
    TypedOption("comp-mt-level", Param.COMPRESS_LEVEL),
    TypedOption("comp-mt-threads", Param.COMPRESS_THREADS),
    TypedOption("comp-mt-dthreads", Param.DECOMPRESS_THREADS),
    TypedOption("comp-xbzrle-cache", Param.XBZRLE_CACHE_SIZE),
    TypedOption("comp-zlib-level", Param.MULTIFD_ZLIB_LEVEL),
    TypedOption("comp-zstd-level", Param.MULTIFD_ZSTD_LEVEL),
    TypedOption("auto-converge-initial", Param.CPU_THROTTLE_INITIAL),
    TypedOption("auto-converge-increment", Param.CPU_THROTTLE_INCREMENT),
    TypedOption("bandwidth", Param.MAX_BANDWIDTH),
    TypedOption("postcopy-bandwidth", Param.MAX_POSTCOPY_BANDWIDTH),
    TypedOption("parallel-connections", Param.MULTIFD_CHANNELS),
    TypedOption("tls-destination", Param.TLS_HOSTNAME),
)

#: Options that need another one (virsh's VSH_REQUIRE_OPTION): (option, what it needs).
REQUIRES: tuple[tuple[str, str], ...] = (
    ("postcopy-after-precopy", "postcopy"),
    ("timeout-suspend", "timeout"),
    ("timeout-postcopy", "postcopy"),
    ("timeout-postcopy", "timeout"),
    ("persistent-xml", "persistent"),
    ("tls-destination", "tls"),
)

#: Options that exclude each other (virsh's VSH_EXCLUSIVE_OPTIONS).
EXCLUSIVE: tuple[tuple[str, str], ...] = (
    ("live", "offline"),
    ("p2p", "direct"),
    ("timeout-suspend", "timeout-postcopy"),
)


@dataclass(frozen=True)
class MigrationRequest:
    """Everything ``migrate`` asks of the daemon and of itself."""

    flags: MigrationFlag
    typed: Mapping[str, object]
    #: Managed-direct: the client drives each phase on each daemon.
    direct: bool
    policy: MigrationPolicy


@dataclass(frozen=True)
class MigrateArguments:
    """``migrate``'s parsed command line, before interpretation.

    ``switches`` holds the names of the switches given (flag switches and ``direct``,
    ``timeout-suspend``, ``timeout-postcopy``, ``postcopy-after-precopy``); ``options`` the
    typed options given, by name; ``params`` the ``--param NAME=VALUE`` items.
    """

    switches: frozenset[str]
    options: Mapping[str, str]
    params: tuple[str, ...] = ()
    timeout_s: int | None = None


def build_request(arguments: MigrateArguments) -> MigrationRequest:
    """Interpret ``migrate``'s command line.

    Raises:
        OptionError: options that exclude or need each other, a timeout on an offline
            migration, an unknown switch or option name.
        ParamsError: a bad typed value or combination (libvirt's messages).
        OSError: a file named by ``--xml`` or ``--persistent-xml`` cannot be read.
    """
    given = arguments.switches | set(arguments.options)
    if arguments.timeout_s is not None:
        given |= {"timeout"}
    _check_relations(given)
    flags = flags_of(arguments.switches)
    if arguments.timeout_s is not None and arguments.timeout_s < 1:
        raise OptionError("migrate: Invalid timeout", option="timeout")
    if arguments.timeout_s is not None and not flags & MigrationFlag.LIVE:
        raise OptionError("migrate: Unexpected timeout for offline migration", option="timeout")
    typed = typed_from_text([*typed_items(arguments.options), *arguments.params])
    from_typed(typed, flags=flags, side=Side.SOURCE)
    action = (
        TimeoutAction.POSTCOPY
        if "timeout-postcopy" in arguments.switches
        else TimeoutAction.SUSPEND
    )
    policy = MigrationPolicy(
        timeout_s=arguments.timeout_s,
        timeout_action=action,
        postcopy_after_precopy="postcopy-after-precopy" in arguments.switches,
    )
    return MigrationRequest(
        flags=flags,
        typed=typed,
        direct=not flags & MigrationFlag.PEER2PEER,
        policy=policy,
    )


def _check_relations(given: set[str] | frozenset[str]) -> None:
    for first, second in EXCLUSIVE:
        if first in given and second in given:
            raise OptionError(
                f"Options --{first} and --{second} are mutually exclusive", option=first
            )
    for option, needed in REQUIRES:
        if option in given and needed not in given:
            raise OptionError(f"Option --{needed} is required by option --{option}", option=option)


_SWITCHES = {switch.name: switch for switch in FLAG_SWITCHES}
_OPTIONS = {option.name: option for option in TYPED_OPTIONS}
#: Switches that are not flags: client policy and the managed-direct mode.
POLICY_SWITCHES = frozenset(
    {"direct", "timeout-suspend", "timeout-postcopy", "postcopy-after-precopy"}
)


def flags_of(switches: Iterable[str]) -> MigrationFlag:
    """The migration flags that the flag switches among ``switches`` set.

    Raises:
        OptionError: a name that is neither a flag switch nor a policy switch.
    """
    flags = MigrationFlag(0)
    for name in switches:
        switch = _SWITCHES.get(name)
        if switch is not None:
            flags |= switch.flag
        elif name not in POLICY_SWITCHES:
            raise OptionError(f"unknown migrate switch --{name}", option=name)
    return flags


def typed_items(options: Mapping[str, str]) -> list[str]:
    """``NAME=VALUE`` items (what ``--param`` takes) for the typed options given.

    Raises:
        OptionError: an unknown option name.
        OSError: a FILE option's file cannot be read.
    """
    items: list[str] = []
    for name, text in options.items():
        option = _OPTIONS.get(name)
        if option is None:
            raise OptionError(f"unknown migrate option --{name}", option=name)
        match option.form:
            case ValueForm.TEXT:
                values = [text]
            case ValueForm.LIST:
                values = [item.strip() for item in text.split(",") if item.strip()]
            case ValueForm.FILE:
                values = [Path(text).read_text(encoding="utf-8")]
        items.extend(f"{option.typed_name}={value}" for value in values)
    return items
