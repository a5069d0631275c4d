"""`migrator params ...`: Show and convert migration parameters (the parameter table)."""

from __future__ import annotations

import enum
import json
from typing import BinaryIO

import click
from rich.console import Console
from rich.table import Table

from params import (
    TABLE,
    FlagMatch,
    Kind,
    ParamsError,
    ParamSet,
    Row,
    Side,
    describe,
    format_flags,
    from_qmp_query,
    from_typed,
    from_xml,
    parse_flags,
    to_qmp_capabilities,
    to_qmp_parameters,
    to_typed,
    to_wire,
    to_xml,
    typed_from_text,
)
from params.listing import requirement_text, side_names


class OutputForm(enum.Enum):
    """What ``params convert`` writes."""

    QMP = "qmp"
    XML = "xml"
    TYPED = "typed"
    JSON = "json"


_SIDES = {"source": Side.SOURCE, "destination": Side.DESTINATION}

#: What ``--to qmp`` assumes QEMU supports: every capability of the table (QEMU 7.2's).
_ALL_CAPABILITIES = tuple(row.key for row in TABLE.values() if row.kind is Kind.CAPABILITY)


@click.group("params")
def params_group() -> None:
    """Show and convert migration parameters (the parameter table)."""


@params_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of row objects.")
def list_command(as_json: bool) -> None:
    """Print the parameter table: one row per migration parameter or capability."""
    if as_json:
        click.echo(json.dumps(describe(), indent=2))
        return
    table = Table(title="migration parameters and capabilities")
    table.add_column("name (typed name)", no_wrap=True)
    for header in ("kind", "value", "side", "rule"):
        table.add_column(header, overflow="fold")
    for row in TABLE.values():
        name = row.key
        if row.typed_name and row.typed_name != row.key:
            name += f"\n  ({row.typed_name})"
        table.add_row(name, row.kind.value, _value_text(row), _side_text(row.side), _rule_text(row))
    Console().print(table)


def _value_text(row: Row) -> str:
    text = row.value_type.value + ("[]" if row.multi else "")
    if row.typed_unit is not None:
        text += f" {row.typed_unit.label}->{row.unit.label}"
    elif row.unit.label:
        text += f" {row.unit.label}"
    if row.choices:
        text += " " + "|".join(row.choices)
    elif row.value_range:
        text += f" {row.value_range[0]}..{row.value_range[1]}"
    return text


def _side_text(side: Side) -> str:
    return "both" if side == Side.BOTH else "+".join(side_names(side))


def _rule_text(row: Row) -> str:
    rules: list[str] = []
    if row.flag_rule is not None:
        verb = "on with" if row.flag_rule.match is FlagMatch.REQUIRED else "off with"
        rules.append(f"{verb} {str(row.flag_rule.flag.name).lower()}")
    if row.always_on is not None:
        rules.append(f"always on ({_side_text(row.always_on)})")
    if row.carries:
        rules.append("compression=" + "|".join(sorted(method.value for method in row.carries)))
    if row.requires is not None:
        rules.append(f"needs {requirement_text(row.requires)}")
    if row.on_postcopy_resume:
        rules.append("re-applied on post-copy resume")
    if not row.per_migration:
        rules.append("set when QEMU starts")
    return "; ".join(rules)


@params_group.command("convert")
@click.option(
    "--typed",
    "typed_items",
    multiple=True,
    metavar="NAME=VALUE",
    help="A libvirt typed parameter (repeatable; multi-valued names may repeat).",
)
@click.option("--flags", "flag_list", metavar="LIST", help="Migration flags for --typed.")
@click.option("--xml", "xml_file", type=click.File("rb"), help="A <migParams> document.")
@click.option("--qmp", "qmp_file", type=click.File("rb"), help="A query-migrate-parameters reply.")
@click.option(
    "--to",
    "output",
    type=click.Choice([form.value for form in OutputForm]),
    default=OutputForm.JSON.value,
    show_default=True,
    help="Output form.",
)
@click.option(
    "--side",
    type=click.Choice(list(_SIDES)),
    default="source",
    show_default=True,
    help="The side the parameters are for.",
)
def convert_command(
    *,
    typed_items: tuple[str, ...],
    flag_list: str | None,
    xml_file: BinaryIO | None,
    qmp_file: BinaryIO | None,
    output: str,
    side: str,
) -> None:
    """Convert migration parameters between typed, <migParams> XML and QMP forms.

    Input is --typed (with --flags), --xml or --qmp; --to qmp prints the arguments of
    migrate-set-capabilities (for a QEMU that supports every capability of the table) and
    migrate-set-parameters.
    """
    pset = _read_input(
        typed_items, flag_list=flag_list, xml_file=xml_file, qmp_file=qmp_file, side=_SIDES[side]
    )
    click.echo(_render(pset, form=OutputForm(output), side=_SIDES[side]))


def _read_input(
    typed_items: tuple[str, ...],
    *,
    flag_list: str | None,
    xml_file: BinaryIO | None,
    qmp_file: BinaryIO | None,
    side: Side,
) -> ParamSet:
    given = [bool(typed_items or flag_list is not None), xml_file is not None, qmp_file is not None]
    if sum(given) != 1:
        raise ParamsError("give exactly one input: --typed (with --flags), --xml or --qmp")
    if xml_file is not None:
        return from_xml(xml_file.read())
    if qmp_file is not None:
        return from_qmp_query(_qmp_reply(qmp_file.read()))
    flags = parse_flags(flag_list or "")
    return from_typed(typed_from_text(typed_items), flags=flags, side=side)


def _qmp_reply(data: bytes) -> dict[str, object]:
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise ParamsError(f"the --qmp file is not JSON: {exc}") from None
    if isinstance(reply, dict) and isinstance(reply.get("return"), dict):
        reply = reply["return"]
    if not isinstance(reply, dict):
        raise ParamsError("the --qmp file must hold a JSON object (the reply or its 'return')")
    return reply


def _render(pset: ParamSet, *, form: OutputForm, side: Side) -> str:
    match form:
        case OutputForm.XML:
            return to_xml(pset).rstrip("\n")
        case OutputForm.QMP:
            capabilities = to_qmp_capabilities(
                pset, supported=_ALL_CAPABILITIES, remote_supported=None, side=side
            )
            document: object = {
                "migrate-set-capabilities": {"capabilities": capabilities},
                "migrate-set-parameters": to_qmp_parameters(pset),
            }
        case OutputForm.TYPED:
            typed, flags = to_typed(pset, side=side)
            document = {"params": typed, "flags": format_flags(flags)}
        case OutputForm.JSON:
            document = to_wire(pset)
    return json.dumps(document, indent=2)
