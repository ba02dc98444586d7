"""Exit statuses an operator's cron can rely on: ``run-once`` and ``deliveries replay``.

(``run-once`` exiting 0 when every source answers is in ``test_cli.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import databases
from tests.conftest import serve
from tests.fakes import ckan
from tests.user import User, config_text


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    # The broken source comes first, so the good one is polled after a failure.
    with serve(ckan.build_app(fail="html")) as broken, serve(ckan.build_app()) as good:
        sources = f"""
[sources.broken]
kind = "ckan"
base_url = "{broken}"

[sources.tenders]
kind = "ckan"
base_url = "{good}"
alert_on_first_poll = true
"""
        (tmp_path / "config.toml").write_text(
            config_text(databases.url(tmp_path), sources), encoding="utf-8"
        )
        yield User(tmp_path)


def test_run_once_polls_and_sends_despite_a_failed_source_then_exits_1(user: User) -> None:
    user.run("subscriptions", "add", "staff", "-q", '"כוח אדם"', "--channel", "rss")
    result = user.run("run-once", code=1)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("broken: FAILED: ")
    assert lines[1].startswith("tenders: ok; 21 items")
    [delivered] = [line for line in lines if line.startswith("delivered:")]
    assert delivered != "delivered: 0 sent, 0 to retry, 0 dead"
    assert "error: source broken failed: " in result.stderr
    assert user.run("deliveries", "list").stdout.split()[1] == "sent"


def test_replay_with_nothing_to_replay_says_so_and_fails(user: User) -> None:
    result = user.run("deliveries", "replay", "--dead", code=1)
    assert "nothing to replay: no delivery matches" in result.stderr
    unknown = user.run("deliveries", "replay", "41", "42", code=1)
    assert "no deliveries with ids 41, 42" in unknown.stderr
    usage = user.run("deliveries", "replay", code=2)
    assert "give the ids of the deliveries to replay, --dead, or filters" in usage.stderr
