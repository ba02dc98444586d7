"""A user at a terminal: runs ``smart-agent`` as a child process in a folder of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.service import assert_clean

#: The secrets a user exports; they stay out of the configuration file.
ENV = {"SMART_AGENT_AGENT__SIGNING_KEY": "k"}


def config_text(database: str, sources: str = "", *, extra: str = "") -> str:
    """A configuration with ``database`` (a ``tests.databases`` URL), templates and ``sources``."""
    return f"""
[agent]
database_url = "{database}"
templates_dir = "{ROOT / "templates"}"
{extra}
{sources}
"""


class User:
    """Runs ``smart-agent`` in ``folder``, checking the exit status and that nothing crashed."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.env = {**os.environ, **ENV, **(env or {})}

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        """Run ``smart-agent ARGS``; assert it exits with ``code`` and prints no traceback."""
        result = subprocess.run(
            [sys.executable, "-m", "agent", *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
        )
        assert result.returncode == code, result.stdout + result.stderr
        assert_clean(result.stderr)
        return result
