"""``python3 dev.py serve`` becomes the service: stopping it frees the port, no orphan is left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

import dev
from tests import databases
from tests.conftest import ROOT
from tests.service import free_port
from tests.user import ENV, config_text


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_answer(url: str, process: subprocess.Popen[bytes]) -> None:
    # Any answer will do: the server is up (health itself is tested elsewhere).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "dev.py serve exited before serving"
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def test_dev_serve_execs_the_service_and_sigterm_frees_the_port(tmp_path: Path) -> None:
    # Otherwise dev.py would run pip, which needs the network.
    assert dev.installed(""), "run `python3 dev.py test` once: it installs .venv"
    port = free_port()
    # No sources at all: nothing reaches the internet.
    config = tmp_path / "config.toml"
    database = databases.url(tmp_path)
    config.write_text(config_text(database, extra=f"[server]\nport = {port}"), encoding="utf-8")
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "dev.py"), "serve", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **ENV},
        )
        try:
            wait_for_answer(f"http://127.0.0.1:{port}/health", process)
            me = psutil.Process(process.pid)
            # The same process now is the service (exec), with no child holding the port.
            assert any("smart-agent" in part for part in me.cmdline()), me.cmdline()
            assert me.children(recursive=True) == []
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code in (0, -signal.SIGTERM), log.read_text()
    assert port_is_free(port)
    assert not psutil.pid_exists(process.pid)
    text = log.read_text(encoding="utf-8")
    assert "Traceback" not in text, text
    assert databases.migrated(database), "init ran on the named configuration"


@pytest.mark.parametrize(
    ("args", "parallel"),
    [
        ([], True),
        (["-k", "email"], True),
        (["-n", "2"], False),
        (["--numprocesses=8"], False),
        (["--pdb"], False),
        (["-p", "no:xdist"], False),
    ],
)
def test_dev_test_runs_pytest_in_workers_unless_told_otherwise(
    args: list[str], parallel: bool
) -> None:
    assert dev.workers(args) == (dev.PARALLEL if parallel else [])


def test_dev_test_fails_if_either_run_fails_and_postgresql_may_select_nothing() -> None:
    assert dev.outcome(0, 0) == 0
    assert dev.outcome(1, 0) == dev.outcome(0, 1) == dev.outcome(1, 1) == 1
    assert dev.outcome(0, dev.NO_TESTS) == 0  # only database-free tests were asked for
    assert dev.outcome(dev.NO_TESTS, dev.NO_TESTS) == dev.NO_TESTS
