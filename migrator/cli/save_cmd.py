"""Save commands with virsh's names: ``save``, ``restore``, ``managedsave``,
``managedsave-remove``, ``managedsave-dumpxml``, ``managedsave-define``, ``managedsave-edit``,
``save-image-dumpxml``, ``save-image-define``, ``save-image-edit``.

Image paths are made absolute here: they name files on the daemon's host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from cookies import JobStatistics
from migrator.cli.connection import run_with_client
from migrator.cli.option_errors import OptionError
from migrator.cli.output import echo_json
from migrator.client import Client, ClientError, JobInfo
from migrator.client.types import JobType

#: Seconds between two progress lines of ``save --verbose``.
PROGRESS_INTERVAL_S = 0.5

_FILE = click.Path(dir_okay=False, path_type=Path)


def _state_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option("--paused", is_flag=True, help="The guest is paused once restored.")(
        command
    )
    return click.option("--running", is_flag=True, help="The guest runs once restored.")(command)


def _after(running: bool, paused: bool) -> bool | None:
    """The state a restore brings the guest into: None follows the image.

    Raises:
        OptionError: both options were given.
    """
    if running and paused:
        raise OptionError("Options --running and --paused are mutually exclusive", option="running")
    return True if running else False if paused else None


def _xml_of(file: Path | None) -> str | None:
    return None if file is None else file.read_text(encoding="utf-8")


def _image(file: Path) -> Path:
    return file.absolute()


# -- save and restore --------------------------------------------------------------------------


@click.command("save")
@click.argument("domain")
@click.argument("file", type=_FILE)
@_state_options
@click.option("--xml", "xml_file", type=_FILE, help="A definition to store instead.")
@click.option("--bypass-cache", is_flag=True, help="Write the image without the page cache.")
@click.option("--verbose", is_flag=True, help="Show the save's progress.")
@click.option("--json", "as_json", is_flag=True, help="Print the completed job as JSON.")
def save_command(
    *,
    domain: str,
    file: Path,
    running: bool,
    paused: bool,
    xml_file: Path | None,
    bypass_cache: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Save running DOMAIN's state into FILE and stop it."""
    after, xml, image = _after(running, paused), _xml_of(xml_file), _image(file)

    async def save(client: Client) -> JobInfo:
        call = client.save(domain, image, running=after, xml=xml, bypass_cache=bypass_cache)
        return await (_with_progress(client, domain, call) if verbose else call)

    job = run_with_client(save)
    if as_json:
        echo_json(job.to_json())
    else:
        click.echo(f"Domain '{domain}' saved to {image}")


@click.command("restore")
@click.argument("file", type=_FILE)
@_state_options
@click.option("--xml", "xml_file", type=_FILE, help="A definition to use instead.")
def restore_command(file: Path, running: bool, paused: bool, xml_file: Path | None) -> None:
    """Start the guest saved in FILE."""
    after, xml, image = _after(running, paused), _xml_of(xml_file), _image(file)
    run_with_client(lambda client: client.restore(image, running=after, xml=xml))
    click.echo(f"Domain restored from {image}")


async def _with_progress(client: Client, domain: str, call: Awaitable[JobInfo]) -> JobInfo:
    """Run ``call`` (a save) and print virsh's ``Save: [ NN %]`` lines while it runs."""

    async def report() -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            with contextlib.suppress(ClientError):
                job = await client.domjobinfo(domain)
                if job.job_type is JobType.UNBOUNDED:
                    _echo_progress(job.statistics)

    reporter = asyncio.create_task(report())
    try:
        job = await call
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
    click.echo("Save: [100 %]", err=True)
    return job


def _echo_progress(statistics: JobStatistics) -> None:
    total, remaining = statistics.memory_total, statistics.memory_remaining
    if total and remaining is not None:
        click.echo(f"Save: [{100 * (total - remaining) // total:3d} %]", err=True)


# -- managed save ------------------------------------------------------------------------------


@click.command("managedsave")
@click.argument("domain")
@_state_options
@click.option("--bypass-cache", is_flag=True, help="Write the image without the page cache.")
def managedsave_command(domain: str, running: bool, paused: bool, bypass_cache: bool) -> None:
    """Save running DOMAIN's state so that its next start restores it."""
    after = _after(running, paused)
    run_with_client(
        lambda client: client.managed_save(domain, running=after, bypass_cache=bypass_cache)
    )
    click.echo(f"Domain '{domain}' state saved by libvirt")


@click.command("managedsave-remove")
@click.argument("domain")
def managedsave_remove_command(domain: str) -> None:
    """Remove DOMAIN's managed-save image: its next start boots it fresh."""
    if run_with_client(lambda client: client.managed_save_remove(domain)):
        click.echo(f"Removed managedsave image for domain '{domain}'")
    else:
        click.echo(f"Domain '{domain}' has no manage save image; removal skipped")


@click.command("managedsave-dumpxml")
@click.argument("domain")
@click.option("--security-info", is_flag=True, help="Include secrets such as passwords.")
def managedsave_dumpxml_command(domain: str, security_info: bool) -> None:
    """Print the definition in DOMAIN's managed-save image."""
    xml = run_with_client(
        lambda client: client.managed_save_dumpxml(domain, security_info=security_info)
    )
    click.echo(xml.rstrip("\n"))


@click.command("managedsave-define")
@click.argument("domain")
@click.argument("xml_file", metavar="XML", type=_FILE)
@_state_options
def managedsave_define_command(domain: str, xml_file: Path, running: bool, paused: bool) -> None:
    """Replace the definition in DOMAIN's managed-save image with the one in XML."""
    after, xml = _after(running, paused), xml_file.read_text(encoding="utf-8")
    run_with_client(lambda client: client.managed_save_define(domain, xml, running=after))
    click.echo(f"Managed save state file of domain '{domain}' updated.")


@click.command("managedsave-edit")
@click.argument("domain")
@_state_options
def managedsave_edit_command(domain: str, running: bool, paused: bool) -> None:
    """Edit the definition in DOMAIN's managed-save image with $EDITOR."""
    after = _after(running, paused)
    changed = _edit(
        lambda client: client.managed_save_dumpxml(domain, security_info=True),
        lambda client, xml: client.managed_save_define(domain, xml, running=after),
        state_given=after is not None,
    )
    what = f"Managed save image of domain '{domain}' XML configuration"
    click.echo(f"{what} edited." if changed else f"{what} not changed.")


# -- the XML in a save image -------------------------------------------------------------------


@click.command("save-image-dumpxml")
@click.argument("file", type=_FILE)
@click.option("--security-info", is_flag=True, help="Include secrets such as passwords.")
def save_image_dumpxml_command(file: Path, security_info: bool) -> None:
    """Print the definition saved in the image FILE."""
    image = _image(file)
    xml = run_with_client(
        lambda client: client.save_image_dumpxml(image, security_info=security_info)
    )
    click.echo(xml.rstrip("\n"))


@click.command("save-image-define")
@click.argument("file", type=_FILE)
@click.argument("xml_file", metavar="XML", type=_FILE)
@_state_options
def save_image_define_command(file: Path, xml_file: Path, running: bool, paused: bool) -> None:
    """Replace the definition saved in the image FILE with the one in XML."""
    after, xml, image = _after(running, paused), xml_file.read_text(encoding="utf-8"), _image(file)
    run_with_client(lambda client: client.save_image_define(image, xml, running=after))
    click.echo(f"State file {image} updated.")


@click.command("save-image-edit")
@click.argument("file", type=_FILE)
@_state_options
def save_image_edit_command(file: Path, running: bool, paused: bool) -> None:
    """Edit the definition saved in the image FILE with $EDITOR."""
    after, image = _after(running, paused), _image(file)
    changed = _edit(
        lambda client: client.save_image_dumpxml(image, security_info=True),
        lambda client, xml: client.save_image_define(image, xml, running=after),
        state_given=after is not None,
    )
    if changed:
        click.echo(f"State file {image} edited.")
    else:
        click.echo(f"Saved image {image} XML configuration not changed.")


def _edit(
    read: Callable[[Client], Awaitable[str]],
    define: Callable[[Client, str], Awaitable[bool]],
    *,
    state_given: bool,
) -> bool:
    """Open $EDITOR on what ``read`` gives, then ``define`` the result if it differs (or a
    new run state was asked for); whether anything changed."""
    original = run_with_client(read)
    edited = click.edit(original, extension=".xml", require_save=False)
    if edited is None:
        edited = original
    if edited == original and not state_given:
        return False
    return run_with_client(lambda client: define(client, edited))


#: Every command of this module, for registration on the root group.
COMMANDS: tuple[click.Command, ...] = (
    save_command,
    restore_command,
    managedsave_command,
    managedsave_remove_command,
    managedsave_dumpxml_command,
    managedsave_define_command,
    managedsave_edit_command,
    save_image_dumpxml_command,
    save_image_define_command,
    save_image_edit_command,
)
