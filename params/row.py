"""The shape of one row of the parameter table, and the small enums its columns use."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from params.errors import ParamsError
from params.flags import MigrationFlag, Side


class ValueType(enum.Enum):
    """A value's type, named as libvirt names typed-parameter types."""

    INT = "int"
    ULL = "ullong"
    BOOL = "boolean"
    STRING = "string"

    @property
    def domain(self) -> tuple[int, int] | None:
        """The values the C type can hold, for the integer types."""
        match self:
            case ValueType.INT:
                return (-(1 << 31), (1 << 31) - 1)
            case ValueType.ULL:
                return (0, (1 << 64) - 1)
            case _:
                return None


class Kind(enum.Enum):
    """What happens to a row's value."""

    #: Sent to QEMU with ``migrate-set-parameters``.
    PARAMETER = "parameter"
    #: Sent to QEMU with ``migrate-set-capabilities``.
    CAPABILITY = "capability"
    #: Consumed by the engine (URIs, disks, XML, ...), never sent to QEMU.
    ENGINE = "engine"
    #: Names compression methods; each method turns on the rows that carry it.
    COMPRESSION = "compression"


class Unit(enum.Enum):
    """The unit of a value; ``scale`` relates units of one dimension."""

    NONE = ("", 1)
    BYTES = ("bytes", 1)
    BYTES_PER_SECOND = ("bytes/s", 1)
    MIB_PER_SECOND = ("MiB/s", 1 << 20)
    MILLISECONDS = ("ms", 1)
    PERCENT = ("%", 1)

    def __init__(self, label: str, scale: int) -> None:
        self.label = label
        self.scale = scale


class FlagMatch(enum.Enum):
    """Whether a capability is on when its flag is given, or when it is not."""

    REQUIRED = "required"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class FlagRule:
    """libvirt's FlagMap item: the capability is on when ``flag`` is (not) given."""

    flag: MigrationFlag
    match: FlagMatch

    def enables(self, flags: MigrationFlag) -> bool:
        """Whether ``flags`` turn the capability on."""
        given = bool(flags & self.flag)
        return given if self.match is FlagMatch.REQUIRED else not given


class CompressionMethod(enum.Enum):
    """The values of the ``compression`` typed parameter, in libvirt's order."""

    XBZRLE = "xbzrle"
    MT = "mt"
    ZLIB = "zlib"
    ZSTD = "zstd"

    @property
    def parallel(self) -> bool:
        """True for multifd methods (only with ``PARALLEL``), False for the others."""
        return self in (CompressionMethod.ZLIB, CompressionMethod.ZSTD)

    @property
    def label(self) -> str:
        """How libvirt's "Turn ... on to tune it" message names the method."""
        if self is CompressionMethod.MT:
            return "multithread compression"
        return f"{self.value} compression"


#: The method ``VIR_MIGRATE_COMPRESSED`` selects when no method is named.
DEFAULT_COMPRESSION = CompressionMethod.XBZRLE

_FLAG_LABELS = {
    MigrationFlag.AUTO_CONVERGE: "auto convergence",
    MigrationFlag.PARALLEL: "parallel migration",
}


def requirement_label(requirement: MigrationFlag | CompressionMethod) -> str:
    """The words for ``requirement`` in "Turn ... on to tune it"."""
    if isinstance(requirement, CompressionMethod):
        return requirement.label
    default = str(requirement.name).lower().replace("_", " ")
    return _FLAG_LABELS.get(requirement, default)


@dataclass(frozen=True)
class Row:
    """Everything known about one migration parameter or capability.

    Values are stored in ``unit``; typed parameters are given in ``typed_unit`` (when set) and
    multiplied by :attr:`factor` on the way in, divided on the way out.

    Raises:
        ParamsError: the columns contradict each other (a table-authoring mistake).
    """

    kind: Kind
    value_type: ValueType
    side: Side
    description: str
    qmp_name: str | None = None
    typed_name: str | None = None
    unit: Unit = Unit.NONE
    typed_unit: Unit | None = None
    value_range: tuple[int, int] | None = None
    choices: tuple[str, ...] = ()
    multi: bool = False
    #: Capabilities: the flag that turns it on (REQUIRED) or that keeps it off (FORBIDDEN).
    flag_rule: FlagRule | None = None
    #: Capabilities: turned on whenever QEMU supports it, by this party (libvirt's AlwaysOn).
    always_on: Side | None = None
    #: The compression methods that this capability realises or this parameter names.
    carries: frozenset[CompressionMethod] = frozenset()
    #: What must be on for this value to be given ("Turn ... on to tune it").
    requires: MigrationFlag | CompressionMethod | None = None
    #: Re-sent to QEMU when a failed post-copy migration is resumed.
    on_postcopy_resume: bool = False
    #: False for capabilities set once when QEMU starts and never touched by a migration.
    per_migration: bool = True

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ParamsError(f"bad parameter table row '{self.key}': {problem}", name=self.key)

    def _problem(self) -> str | None:
        sent_to_qemu = self.kind in (Kind.PARAMETER, Kind.CAPABILITY)
        if sent_to_qemu != (self.qmp_name is not None):
            return "QEMU-bound rows and only they have a QMP name"
        if not sent_to_qemu and self.typed_name is None:
            return "a row not sent to QEMU needs a typed-parameter name"
        if self.kind is Kind.CAPABILITY and (
            self.value_type is not ValueType.BOOL or self.typed_name is not None
        ):
            return "a capability is boolean and has no typed-parameter name"
        if self.kind is not Kind.CAPABILITY and (self.flag_rule or self.always_on):
            return "only capabilities are turned on by flags or always"
        if self.multi and self.value_type is not ValueType.STRING:
            return "only strings can be multi-valued"
        if self.typed_unit is not None and self.typed_name is None:
            return "a typed unit needs a typed-parameter name"
        return None

    @property
    def key(self) -> str:
        """The row's name in QMP, XML and wire forms: the QMP name, else the typed name."""
        return self.qmp_name or self.typed_name or ""

    @property
    def factor(self) -> int:
        """What a typed value is multiplied by to get the stored value."""
        if self.typed_unit is None:
            return 1
        return self.typed_unit.scale // self.unit.scale

    @property
    def bounds(self) -> tuple[int, int] | None:
        """The valid range of an integer value: ``value_range``, else the type's domain."""
        return self.value_range or self.value_type.domain
