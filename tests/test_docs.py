"""The README and the shipped files tell the truth about the code."""

from __future__ import annotations

import typing

import pytest

from notifiers import Notifiers
from tests.conftest import ROOT
from watchers import Source

README = (ROOT / "README.md").read_text(encoding="utf-8")


def source_kinds() -> list[str]:
    union = typing.get_args(Source)[0]
    return [model.model_fields["kind"].annotation.__args__[0] for model in typing.get_args(union)]


@pytest.mark.parametrize("kind", source_kinds())
def test_every_source_kind_has_a_readme_subsection(kind: str) -> None:
    assert f"\n### {kind}\n" in README


@pytest.mark.parametrize("channel", list(Notifiers.model_fields))
def test_every_channel_has_a_readme_subsection_and_templates(channel: str) -> None:
    assert f"\n### {channel}\n" in README
    assert any((ROOT / "templates" / channel).iterdir())


def test_quick_start_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "python3 dev.py serve" in start
    assert "python3 dev.py test" in start
    assert "python3 dev.py test" in (ROOT / ".ci" / "run").read_text()
