"""Domain commands with virsh's names: ``define``, ``undefine``, ``start``, ``shutdown``,
``destroy``, ``suspend``, ``resume``, ``list``, ``dominfo``, ``dumpxml``.

A shut-off domain with a managed-save image is listed as ``saved`` (as ``virsh list
--managed-save`` shows it); ``dominfo`` says ``Managed save: yes``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from migrator.cli.connection import run_with_client
from migrator.cli.domain_action import domain_action
from migrator.cli.output import echo_fields, echo_json
from migrator.client import Client
from migrator.client.types import DomainInfo, DomainState, DomainSummary, operation_label

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.command("define")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def define_command(file: Path) -> None:
    """Define (but do not start) a domain from the XML in FILE."""
    xml = file.read_text(encoding="utf-8")
    summary = run_with_client(lambda client: client.define(xml))
    click.echo(f"Domain '{summary.name}' defined from {file}")


@click.command("start")
@click.argument("domain")
@click.option("--paused", is_flag=True, help="Leave the guest paused after starting it.")
def start_command(domain: str, paused: bool) -> None:
    """Start the defined DOMAIN."""
    run_with_client(lambda client: client.start(domain, paused=paused))
    click.echo(f"Domain '{domain}' started")


@click.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Also list inactive domains.")
@click.option("--name", "names_only", is_flag=True, help="Print only the names, one a line.")
@_JSON
def list_command(include_inactive: bool, names_only: bool, as_json: bool) -> None:
    """List the running domains (with --all, the defined ones too)."""
    domains = run_with_client(lambda client: client.list_domains(include_inactive=include_inactive))
    if as_json:
        echo_json([domain.to_json() for domain in domains])
    elif names_only:
        for domain in domains:
            click.echo(domain.name)
    else:
        for line in domain_table(domains):
            click.echo(line)


def domain_table(domains: Sequence[DomainSummary]) -> list[str]:
    """``virsh list``'s layout: a header, a rule, one line per domain."""
    rows = [("Name", "State", "Persistent")] + [
        (domain.name, _state_word(domain), _yes_no(domain.persistent)) for domain in domains
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [
        f" {name:<{widths[0]}}   {state:<{widths[1]}}   {persistent}".rstrip()
        for name, state, persistent in rows
    ]
    lines.insert(1, "-" * (max(len(line) for line in lines) + 1))
    return lines


@click.command("dominfo")
@click.argument("domain")
@_JSON
def dominfo_command(domain: str, as_json: bool) -> None:
    """Print basic information about DOMAIN."""
    info = run_with_client(lambda client: client.dominfo(domain))
    if as_json:
        echo_json(info.to_json())
    else:
        echo_fields(dominfo_rows(info))


def dominfo_rows(info: DomainInfo) -> list[tuple[str, str]]:
    """The lines of ``dominfo``, with virsh's labels."""
    return [
        ("Name", info.name),
        ("UUID", info.uuid),
        ("State", info.state.value),
        ("CPU(s)", str(info.vcpus)),
        ("Max memory", f"{info.memory_kib} KiB"),
        ("Persistent", _yes_no(info.persistent)),
        ("Managed save", _yes_no(info.managed_save)),
        ("Job", "none" if info.job is None else operation_label(info.job)),
    ]


@click.command("dumpxml")
@click.argument("domain")
@click.option("--inactive", is_flag=True, help="The definition for the next boot.")
@click.option("--migratable", is_flag=True, help="The definition that migration sends.")
@click.option("--security-info", is_flag=True, help="Include secrets such as passwords.")
@_JSON
def dumpxml_command(
    domain: str, inactive: bool, migratable: bool, security_info: bool, as_json: bool
) -> None:
    """Print DOMAIN's XML definition."""

    async def dump(client: Client) -> str:
        return await client.dumpxml(
            domain, inactive=inactive, migratable=migratable, security_info=security_info
        )

    xml = run_with_client(dump)
    if as_json:
        echo_json({"name": domain, "xml": xml})
    else:
        click.echo(xml.rstrip("\n"))


def _state_word(domain: DomainSummary) -> str:
    if domain.managed_save and domain.state is DomainState.SHUTOFF:
        return "saved"
    return domain.state.value


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


undefine_command = domain_action(
    "undefine",
    summary="Undefine DOMAIN (a running domain keeps running, as a transient one).",
    call=Client.undefine,
    done="Domain '{domain}' has been undefined",
)
shutdown_command = domain_action(
    "shutdown",
    summary="Ask DOMAIN's guest to shut down.",
    call=Client.shutdown,
    done="Domain '{domain}' is being shutdown",
)
destroy_command = domain_action(
    "destroy",
    summary="Stop DOMAIN at once (its QEMU is killed).",
    call=Client.destroy,
    done="Domain '{domain}' destroyed",
)
suspend_command = domain_action(
    "suspend",
    summary="Pause DOMAIN's virtual CPUs.",
    call=Client.suspend,
    done="Domain '{domain}' suspended",
)
resume_command = domain_action(
    "resume",
    summary="Run DOMAIN's paused virtual CPUs again.",
    call=Client.resume,
    done="Domain '{domain}' resumed",
)

#: Every command of this module, for registration on the root group.
COMMANDS: tuple[click.Command, ...] = (
    define_command,
    undefine_command,
    start_command,
    shutdown_command,
    destroy_command,
    suspend_command,
    resume_command,
    list_command,
    dominfo_command,
    dumpxml_command,
)
