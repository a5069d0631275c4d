"""Render the phase tables as mermaid state diagrams, from the same rows the machines run."""

from __future__ import annotations

from transitions.extensions import GraphMachine

from migrator.phases.destination import DestinationJob
from migrator.phases.machine import PhaseJob
from migrator.phases.source import SourceJob

HEADER = """# Migration phase machines

Generated from the transition tables in `migrator/phases/` by
`migrator phases diagram --output docs/phases.md`; a test fails when this file is stale.
Labels read `trigger [conditions]`; `!name` is an `unless` condition.
"""


def mermaid(job: type[PhaseJob]) -> str:
    """The mermaid ``stateDiagram-v2`` source of one side's table."""
    graph = GraphMachine(
        states=job.states,
        transitions=[entry.as_transition() for entry in job.table],
        initial=job.initial,
        auto_transitions=False,
        graph_engine="mermaid",
        show_conditions=True,
        title=f"{job.side} side",
    )
    return str(graph.get_graph().draw(None)).rstrip() + "\n"


def document() -> str:
    """The whole generated markdown document (both sides)."""
    parts = [HEADER]
    for job in (SourceJob, DestinationJob):
        parts.append(f"\n## {job.side.capitalize()}\n\n```mermaid\n{mermaid(job)}```\n")
    return "".join(parts)
