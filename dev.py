#!/usr/bin/env python3
"""Set up and run Smart Agent on a fresh machine that has only Python 3.11.

    python3 dev.py serve   # install into .venv, create the database, run the service
    python3 dev.py test    # install with test tools, then ruff, mypy and pytest

Anything after the command is passed on (``python3 dev.py test -k email``).
The virtual environment is reinstalled only when ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"


def main(argv: list[str]) -> int:
    """Run the command named by ``argv[0]``."""
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "serve":
        install("")
        run(BIN / "smart-agent", "--config", "config.toml", "init")
        return run(BIN / "smart-agent", "--config", "config.toml", "serve", *rest)
    if command == "test":
        install("[test]")
        for check in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
            if code := run(BIN / check[0], *check[1:]):
                return code
        return run(BIN / "pytest", *rest)
    print(__doc__)
    return 2


def install(extras: str) -> None:
    """Create ``.venv`` and install the project, unless already done for this pyproject."""
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    stamp = VENV / f".installed{extras}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--editable", f"{ROOT}{extras}"], check=True)
    stamp.write_text(digest)


def run(program: Path, *args: str) -> int:
    """Run a program from the virtual environment in the project folder."""
    return subprocess.run([str(program), *args], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
