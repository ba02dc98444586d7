#!/usr/bin/env python3
"""Set up and run Smart Agent on a fresh machine that has only Python 3.11.

    python3 dev.py serve   # install into .venv, create the database, run the service
    python3 dev.py test    # install with test tools, then ruff, mypy and pytest

``test`` runs the suite twice, in parallel workers: on SQLite, then the tests
that use the database again on PostgreSQL (a throwaway server of Debian's,
skipped where it is not installed; ``tests/databases.py``). Anything after the
command is passed on: to both pytest runs (``python3 dev.py test -k email``),
or to ``smart-agent`` as its options (``python3 dev.py serve --config my.toml
-v``; relative paths are from the repository root). ``serve`` becomes
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
        return test(rest)
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


#: The variable that chooses the tests' database (``tests/databases.py``).
TEST_DATABASE = "SMART_AGENT_TEST_DATABASE"
#: pytest-xdist workers: most tests wait on child processes, servers and sleeps,
#: so more workers than CPUs keep both busy. A module's tests stay together on
#: one worker, so that its live site and browser start once.
PARALLEL = ["--numprocesses", "4", "--dist", "loadfile"]
#: Options after which pytest must run in this process: a debugger, or workers chosen.
_SERIAL = ("-n", "--numprocesses", "--pdb", "--trace", "no:xdist")
#: pytest's exit status when it selected no test.
NO_TESTS = 5


def test(args: list[str]) -> int:
    """pytest with ``args`` on SQLite, then on PostgreSQL; the first failure's status."""
    chosen = workers(args)
    # Hundreds of `smart-agent` child processes import the project: with its
    # bytecode cached they skip compiling it, whatever the machine's default.
    cached = {"PYTHONDONTWRITEBYTECODE": ""}
    print("pytest on SQLite", flush=True)
    code = run(BIN / "pytest", *chosen, *args, env={**cached, TEST_DATABASE: "sqlite"})
    if code not in (0, 1):  # interrupted, or a usage error: the second run would say the same
        return code
    if not any(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        print("PostgreSQL is not installed: the run on it is skipped")
        return code
    print("pytest on PostgreSQL: the tests that use the database", flush=True)
    again = run(BIN / "pytest", *chosen, *args, env={**cached, TEST_DATABASE: "postgresql"})
    return outcome(code, again)


def workers(args: list[str]) -> list[str]:
    """The xdist options to add to pytest's ``args``: none if they choose otherwise."""
    return [] if any(arg.startswith(_SERIAL) for arg in args) else PARALLEL


def outcome(sqlite: int, postgresql: int) -> int:
    """The exit status of both runs: the SQLite run's failure first."""
    # A PostgreSQL run that selected nothing is fine: only tests that use no
    # database were asked for, and they ran on SQLite.
    return sqlite or (0 if postgresql == NO_TESTS else postgresql)


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


def run(program: Path, *args: str, env: dict[str, str] | None = None) -> int:
    """Run a program from the virtual environment in the project folder, with ``env`` added."""
    return subprocess.run(
        [str(program), *args], cwd=ROOT, env={**os.environ, **(env or {})}
    ).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
