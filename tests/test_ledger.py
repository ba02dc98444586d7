"""The ledger: every delivery's state, a refused address suppressed and lifted, retry and replay.

The real ``smart-agent`` runs as a child process against a CKAN fake with the
recorded tenders and a real aiosmtpd server that refuses one address for good.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import databases
from tests.conftest import serve
from tests.fakes import ckan
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.user import User, config_text

REFUSED = "gone@ngo.example"


@dataclass
class Site:
    """The user's folder and the mail server."""

    user: User
    mail: Mailbox

    def ledger(self, *args: str) -> list[str]:
        """``deliveries list`` lines: status, channel and subscription of each."""
        out = self.user.run("deliveries", "list", "--limit", "500", *args).stdout
        return sorted(" ".join(line.split()[1:4]) for line in out.splitlines())


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with serve(ckan.build_app()) as source, smtp_in_thread() as mail:
        mail.refuse.add(REFUSED)
        sources = f"""
[notifiers.email]
host = "127.0.0.1"
port = {mail.port}

[sources.tenders]
kind = "ckan"
base_url = "{source}"
alert_on_first_poll = true
"""
        (tmp_path / "config.toml").write_text(
            config_text(databases.url(tmp_path), sources), encoding="utf-8"
        )
        user = User(tmp_path)
        for name, address in (("kept", "team@ngo.example"), ("gone", REFUSED)):
            user.run("subscriptions", "add", name, "-q", '"כוח אדם"', "--channel", "email",
                     "--email", address)  # fmt: skip
        yield Site(user, mail)


def test_a_refused_address_is_suppressed_held_and_released_by_an_admin(site: Site) -> None:
    first = site.user.run("run-once", code=1)
    assert "refused by 127.0.0.1" in first.stderr
    assert [str(m["To"]) for m in site.mail.messages] == ["team@ngo.example"]
    assert set(site.ledger()) == {"sent email kept", "suppressed email gone"}
    listed = site.user.run("suppressions", "list").stdout
    assert REFUSED in listed
    assert "550" in listed

    # Nothing more is tried at a suppressed address; the ledger shows why.
    site.user.run("run-once")
    assert len(site.mail.messages) == 1
    line = site.user.run("deliveries", "list", "--status", "suppressed").stdout.splitlines()[0]
    held = json.loads(site.user.run("deliveries", "show", line.split()[0]).stdout)
    assert (held["status"], held["subscription"]) == ("suppressed", "gone")
    assert "550" in held["last_error"]

    # The address works again: an admin lifts it and replays what was held.
    site.mail.refuse.clear()
    site.user.run("suppressions", "lift", "email", REFUSED)
    assert site.user.run("suppressions", "list").stdout == ""
    site.user.run("deliveries", "replay", "--status", "suppressed")
    site.user.run("run-once")
    assert sorted(str(m["To"]) for m in site.mail.messages) == [REFUSED, "team@ngo.example"]
    assert set(site.ledger()) == {"sent email kept", "sent email gone"}


def test_the_ledger_filters_by_status_channel_and_time(site: Site) -> None:
    site.user.run("run-once", code=1)
    assert site.ledger("--status", "sent") == site.ledger("--channel", "email", "--status", "sent")
    assert site.ledger("--since", "1d")
    assert site.ledger("--since", "2000-01-01") == site.ledger()
    assert site.ledger("--channel", "telegram") == []
    bad = site.user.run("deliveries", "list", "--since", "soon", code=2)
    assert "give 30m, 6h, 2d or an ISO date" in bad.stderr


def test_retry_makes_a_waiting_failure_due_now(site: Site) -> None:
    site.mail.refuse.clear()
    site.user.run("run-once")
    nothing = site.user.run("deliveries", "retry", code=1)
    assert "nothing to retry" in nothing.stderr
