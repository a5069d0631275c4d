from __future__ import annotations

from pathlib import Path

import pytest

from migrator.phases import SourceJob
from migrator.phases.diagram import document
from migrator.phases.machine import row
from migrator.phases.source import SourcePhase

DIAGRAM = Path(__file__).resolve().parents[2] / "docs" / "phases.md"


def test_a_typo_in_a_table_fails_when_the_machine_is_built() -> None:
    class Typo(SourceJob):
        table = (row("begin", SourcePhase.NONE, SourcePhase.BEGIN3, then="plan_begn"),)

    with pytest.raises(TypeError, match="plan_begn"):
        Typo.build_machine()


def test_a_foreign_state_in_a_table_fails_when_the_machine_is_built() -> None:
    from migrator.phases.destination import DestinationPhase

    class Foreign(SourceJob):
        table = (row("begin", SourcePhase.NONE, DestinationPhase.PREPARE),)

    with pytest.raises(TypeError, match="foreign state"):
        Foreign.build_machine()


def test_committed_diagram_is_current() -> None:
    assert DIAGRAM.read_text() == document(), (
        "docs/phases.md is stale: run `migrator phases diagram --output docs/phases.md`"
    )


def test_diagram_shows_every_state_of_both_sides() -> None:
    text = document()
    for state in SourcePhase:
        assert state.name in text
