"""The soak benchmark runs end to end at a tiny size: a table, nothing lost, nothing doubled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import postgres
from tests.conftest import ROOT
from tests.service import assert_clean

pytestmark = pytest.mark.skipif(postgres.BIN is None, reason=postgres.REASON)


def _row(table: str, figure: str) -> list[str]:
    """The cells of the row whose first cell starts with ``figure``."""
    line = next(line for line in table.splitlines() if line.startswith(f"| {figure}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.mark.timeout(600)
def test_a_short_soak_prints_its_table_with_no_alert_lost_or_duplicated(tmp_path: Path) -> None:
    markdown = tmp_path / "soak.md"

    result = subprocess.run(
        [
            *(sys.executable, "-m", "bench.soak", "--subscriptions", "1000", "--minutes", "0.5"),
            *("--poll", "5", "--drain", "60", "--markdown", str(markdown)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )

    assert_clean(result.stderr)
    table = result.stdout
    assert "| figure | measured | target | |" in table, result.stderr
    lost, duplicated = _row(table, "alerts lost"), _row(table, "alerts duplicated")
    assert re.fullmatch(r"0 of [1-9][\d,]* owed", lost[1]), table
    assert duplicated[1].startswith("0 "), table
    assert _row(table, "alerts still queued")[1].startswith("0 "), table
    assert _row(table, "deliveries made")[3] == "✅ pass", table
    latencies = ("e-mail latency", "Telegram latency")
    for figure in (*latencies, "worker 1 RSS", "worker 2 RSS", "DB size"):
        assert _row(table, figure)[1], f"{figure} missing:\n{table}"
    assert markdown.read_text(encoding="utf-8").strip() == table.strip()
