"""Parameter sets <-> QMP: ``migrate-set-capabilities``, ``migrate-set-parameters`` and
``query-migrate-parameters``, as libvirt's ``qemuMigrationParamsApply/Check/Fetch/Reset`` do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from params.errors import ParamsError
from params.flags import Side
from params.lookup import index_of
from params.paramset import ParamSet
from params.row import Kind, Row
from params.table import TABLE, Param

#: One item of ``migrate-set-capabilities``'s ``capabilities`` list.
CapabilityState = dict[str, object]


def capability_changes(
    capabilities: Iterable[CapabilityState], *, current: Mapping[str, bool]
) -> list[CapabilityState]:
    """The items of ``capabilities`` whose state differs from ``current`` (QEMU's, from
    ``query-migrate-capabilities``). Setting only those leaves QEMU as setting them all
    would, and QEMU 7.2 spends about half a millisecond on each item, in the guest's pause
    when Finish restores the destination's."""
    return [
        item for item in capabilities if current.get(str(item["capability"])) is not item["state"]
    ]


def to_qmp_capabilities(
    pset: ParamSet,
    *,
    supported: Iterable[str],
    remote_supported: Iterable[str] | None,
    side: Side,
    in_migration_job: bool = True,
    table: Mapping[Param, Row] = TABLE,
) -> list[CapabilityState]:
    """The ``capabilities`` argument of ``migrate-set-capabilities`` for ``pset``.

    Every capability of ``table`` that QEMU supports (``supported``: the names from
    ``query-migrate-capabilities``) is listed, on or off, so nothing stays on from an earlier
    job. Capabilities that are always on join when QEMU supports them and their party is
    ``side``; one whose party names both sides joins only when the other side supports it
    too (``remote_supported``, from the peer's cookie; None when unknown). Capabilities set
    when QEMU starts (``events``) are never listed. Outside a migration job nothing may be
    turned on and the list is empty.

    Raises:
        ParamsError: a capability of ``pset`` is not in ``supported`` ("Migration option '%s'
            is not supported by QEMU binary"), or capabilities are requested outside a
            migration job.
    """
    if not in_migration_job:
        if pset.capabilities:
            raise ParamsError("Migration capabilities can only be set by a migration job")
        return []
    local = frozenset(supported)
    for param in pset.capabilities:
        name = table[param].key
        if name not in local:
            raise ParamsError(
                f"Migration option '{name}' is not supported by QEMU binary", name=name
            )
    remote = frozenset(remote_supported or ())
    enabled = pset.capabilities
    states: list[CapabilityState] = []
    for param, name, party in index_of(table).capabilities:
        if name not in local:
            continue
        state = param in enabled or (
            party is not None and bool(party & side) and (party == side or name in remote)
        )
        states.append({"capability": name, "state": state})
    return states


def reset_capabilities(
    *, supported: Iterable[str], table: Mapping[Param, Row] = TABLE
) -> list[CapabilityState]:
    """``migrate-set-capabilities`` with every supported capability off, to end a job.

    Restoring after a job is this, then :func:`to_qmp_parameters` of the original values.
    """
    local = frozenset(supported)
    return [
        {"capability": name, "state": False}
        for _param, name, _party in index_of(table).capabilities
        if name in local
    ]


def startup_capabilities(
    *, supported: Iterable[str], table: Mapping[Param, Row] = TABLE
) -> list[CapabilityState]:
    """``migrate-set-capabilities`` for a newly started QEMU: the capabilities that stay on
    for its whole life (``events``), those of them it supports.
    """
    local = frozenset(supported)
    return [
        {"capability": row.key, "state": True}
        for row in table.values()
        if row.kind is Kind.CAPABILITY and not row.per_migration and row.key in local
    ]


def to_qmp_parameters(
    pset: ParamSet, *, postcopy_resume: bool = False, table: Mapping[Param, Row] = TABLE
) -> dict[str, object]:
    """The arguments of ``migrate-set-parameters``: every parameter ``pset`` sets.

    With ``postcopy_resume`` only the parameters re-applied when post-copy resumes.
    """
    values = pset.values
    return {
        name: values[param]
        for param, name, on_resume in index_of(table).parameters
        if param in values and (on_resume or not postcopy_resume)
    }


def from_qmp_query(reply: Mapping[str, object], *, table: Mapping[Param, Row] = TABLE) -> ParamSet:
    """The parameter set of a ``query-migrate-parameters`` reply (the values to restore).

    Names this table does not know (newer QEMUs, ``block-bitmap-mapping``) are ignored.

    Raises:
        ParamsError: a known parameter has a value of the wrong type or out of range.
    """
    values = {
        param: reply[name]
        for param, name, _on_resume in index_of(table).parameters
        if name in reply
    }
    return ParamSet.validated(values, table=table)
