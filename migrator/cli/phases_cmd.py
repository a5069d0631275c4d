"""`migrator phases ...`: the migration phase machines."""

from __future__ import annotations

from pathlib import Path

import click

from migrator.phases.diagram import document


@click.group("phases")
def phases_group() -> None:
    """The migration phase machines."""


@phases_group.command("diagram")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the markdown here instead of standard output.",
)
def diagram(output: Path | None) -> None:
    """Render both phase tables as mermaid state diagrams."""
    text = document()
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
