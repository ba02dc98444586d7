"""The soak benchmark's child processes: the fakes, which print their port, and the workers.

A fake (``bench.soak_source``, ``bench.soak_sinks``) prints ``PORT <n>`` once it
listens and stops when its standard input ends. A worker is the real
``smart-agent worker`` (or ``serve``, before ``worker`` existed), started as an
operator would, its log in a file of its own, stopped with SIGTERM.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.soak_setup import ROOT, environment
from tests.service import free_port

#: A log line that counts as an error.
_ERROR = re.compile(r" ERROR | CRITICAL |Traceback|\w+Warning: |never awaited")


@dataclass
class Child:
    """A child process that printed ``PORT <n>`` and stops when its standard input ends."""

    process: subprocess.Popen[str]
    port: int

    def say(self, line: str) -> None:
        """Write one line to its standard input."""
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def stop(self, timeout: float = 60) -> str:
        """Close its standard input, wait for it, and return the rest of its output."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        rest = self.process.stdout.read()
        self.process.wait(timeout=timeout)
        self.process.stdout.close()
        return rest


@contextlib.contextmanager
def child(module: str, *args: str, stderr: IO[str]) -> Iterator[Child]:
    """Run ``python -m <module> ARGS`` once it says its port; stop it (if still running) after."""
    with subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    ) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith("PORT "):
            process.kill()
            raise RuntimeError(f"{module} did not start (said {first!r})")
        running = Child(process, int(first.split()[1]))
        try:
            yield running
        finally:
            if process.poll() is None:
                running.stop()


def has_worker() -> bool:
    """Whether this ``smart-agent`` has the ``worker`` command."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", "worker", "--help"], capture_output=True, timeout=60
    )
    return result.returncode == 0


@dataclass
class Workers:
    """The worker processes, each logging to its own file."""

    config: Path
    command: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, index: int) -> subprocess.Popen[bytes]:
        """Start worker ``index`` (counting from 0), its log in ``worker-<index + 1>.log``."""
        folder = self.config.parent
        with (folder / f"worker-{index + 1}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.config), self.command],
                cwd=folder,
                env=environment(free_port()),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def pids(self) -> list[int | None]:
        """Each worker's process id, None once it has exited."""
        return [p.pid if p.poll() is None else None for p in self.processes]

    def kill(self, index: int) -> None:
        """Kill a worker outright (no chance to finish a send) and start it again."""
        self.processes[index].kill()
        self.processes[index].wait()
        self.processes[index] = self.spawn(index)

    def stop(self) -> None:
        """Stop every worker as an operator would (SIGTERM), killing any that hangs."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def workers(config: Path, command: str, count: int) -> Iterator[Workers]:
    """Run ``count`` workers with ``config`` (``smart-agent <command>``); stop them after."""
    running = Workers(config, command)
    try:
        for index in range(count):
            running.processes.append(running.spawn(index))
        yield running
    finally:
        running.stop()


def errors(logs: Iterable[Path]) -> int:
    """Error lines and tracebacks in these logs."""
    return sum(
        1
        for path in logs
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if _ERROR.search(line)
    )
