"""The e-mail benchmark runs end to end at a tiny size (figures are not checked)."""

from __future__ import annotations

import re
import shutil

import pytest

from bench import mail as email_bench


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is missing")
def test_the_benchmark_prints_the_pool_and_the_per_message_sends_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = email_bench.main(["--messages", "12", "--pool-size", "2", "--passes", "1"])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    header = next(line for line in captured.out.splitlines() if line.startswith("| server"))
    assert "pool of 2 connections, msg/s" in header
    assert "`aiosmtplib.send`, a connection per message, msg/s" in header
    rows = [line for line in captured.out.splitlines() if line.startswith("| plain")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "2"]
    assert sum(line.startswith("| STARTTLS + login") for line in captured.out.splitlines()) == 2
    assert "(the target)" in captured.out
    # Warm-ups included: every message sent reached the server, on both servers.
    assert len(re.findall(r"the server received (\d+) of the \1 messages", captured.err)) == 2
