"""A fresh clone tests itself: the suite reads nothing from beside the repository."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import FIXTURES, OUTSIDE, OUTSIDE_READS, ROOT


def test_reading_beside_the_repository_is_refused_and_remembered() -> None:
    shared = OUTSIDE / "shared" / "fixtures" / "ckan" / "SOURCES.md"
    with pytest.raises(PermissionError, match="outside the repository"):
        shared.read_bytes()
    assert str(shared) in OUTSIDE_READS
    OUTSIDE_READS.remove(str(shared))


def test_every_recorded_folder_keeps_its_sources_note() -> None:
    folders = [path for path in FIXTURES.iterdir() if path.is_dir()]
    assert {path.name for path in folders} >= {"budgetkey", "ckan", "feeds", "ocds"}
    assert all((folder / "SOURCES.md").is_file() for folder in folders)


def test_the_recorded_data_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "tests/data"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert "tests/data/ckan/SOURCES.md" in tracked.stdout.splitlines()
