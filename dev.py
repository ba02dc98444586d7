#!/usr/bin/env python3
"""Set up and run Smart Agent on a fresh machine that has only Python 3.11.

    python3 dev.py serve   # install into .venv, create the database, run the service
    python3 dev.py test    # install with test tools, then ruff, mypy and pytest

Anything after the command is passed on: to pytest (``python3 dev.py test -k
email``), or to ``smart-agent`` as its options (``python3 dev.py serve --config
my.toml -v``; relative paths are from the repository root). ``serve`` becomes
the service (``exec``), so stopping it stops the service and leaves no child
holding the port. The virtual environment is reinstalled only when
``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"


def main(argv: list[str]) -> int:
    """Run the command named by ``argv[0]``."""
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "serve":
        install("")
        if code := run(BIN / "smart-agent", *rest, "init"):
            return code
        serve(*rest)
    if command == "test":
        install("[test]")
        system_tools()
        for check in (["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]):
            if code := run(BIN / check[0], *check[1:]):
                return code
        return run(BIN / "pytest", *rest)
    print(__doc__)
    return 2


def install(extras: str) -> None:
    """Create ``.venv`` and install the project, unless already done for this pyproject."""
    if installed(extras):
        return
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "--editable", f"{ROOT}{extras}"], check=True)
    (VENV / f".installed{extras}").write_text(_digest())


#: Debian packages some tests drive: Chromium (the web pages, e-mail layout and
#: accessibility tests), the openssl command (certificates for SMTP over TLS) and
#: PostgreSQL (the tests on a real server start their own), by command name.
SYSTEM_TOOLS = {"chromium": "chromium", "openssl": "openssl", "pg_ctlcluster": "postgresql"}


def system_tools() -> None:
    """Install the missing ``SYSTEM_TOOLS`` with apt-get where we may; else say what is skipped."""
    missing = [package for command, package in SYSTEM_TOOLS.items() if not shutil.which(command)]
    if not missing:
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        print(f"not installed: {', '.join(missing)}; the tests that need them are skipped")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for apt in (["update", "-qq"], ["install", "-y", "-qq", *missing]):
        subprocess.run(["apt-get", *apt], stdout=subprocess.DEVNULL, env=env, check=True)


def installed(extras: str) -> bool:
    """Whether ``.venv`` holds the project with ``extras`` for the current pyproject."""
    # An install with extras includes the plain one, so `test` also satisfies `serve`.
    stamps = [VENV / f".installed{extras}"] if extras else sorted(VENV.glob(".installed*"))
    digest = _digest()
    return (BIN / "python").exists() and any(
        stamp.is_file() and stamp.read_text() == digest for stamp in stamps
    )


def _digest() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def serve(*options: str) -> NoReturn:
    """Replace this process with ``smart-agent [options] serve``, in the project folder."""
    program = str(BIN / "smart-agent")
    sys.stdout.flush()
    os.chdir(ROOT)
    os.execv(program, [program, *options, "serve"])


def run(program: Path, *args: str) -> int:
    """Run a program from the virtual environment in the project folder."""
    return subprocess.run([str(program), *args], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
