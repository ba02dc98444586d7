"""A fresh clone tests itself: the suite reads nothing from beside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist workers"])
def test_a_read_beside_the_repository_fails_the_run_even_if_caught(
    tmp_path: Path, workers: list[str]
) -> None:
    (tmp_path / "test_peek.py").write_text(
        "import contextlib\nfrom pathlib import Path\n\n\ndef test_peek() -> None:\n"
        "    with contextlib.suppress(PermissionError):\n"
        f"        Path({str(OUTSIDE / 'shared' / 'notes.md')!r}).read_bytes()\n",
        encoding="utf-8",
    )
    options = ["-p", "tests.conftest", "-c", "pyproject.toml", "--rootdir", str(ROOT), "-q"]
    test = str(tmp_path / "test_peek.py")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *options, *workers, "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},  # not a worker
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert f"the tests read outside the repository:\n  {OUTSIDE}/shared/notes.md" in run.stdout
