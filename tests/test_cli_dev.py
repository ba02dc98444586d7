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

import dev
from tests.conftest import ROOT
from tests.user import ENV, config_text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    config.write_text(config_text(extra=f"[server]\nport = {port}"), encoding="utf-8")
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
    assert (tmp_path / "var" / "agent.db").is_file(), "init ran on the named configuration"
