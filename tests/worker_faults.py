"""What the multi-worker fault tests count, and the hooks that strike in the middle of a send.

``Tally`` compares the alerts that reached a channel with those expected:
delivered, lost, duplicates, and how many duplicates a reader could not
recognise as resends (an e-mail repeating an earlier Message-ID, a Telegram
message repeating an earlier reference hashtag in the same chat, are recognisable).
``KillMidSend`` is an ``on_accept`` hook for ``tests.smtp_switch``: it finds
the worker whose SMTP connection is handing over the message (its client
port, through psutil) and SIGKILLs it right there, before the message is
accepted, so the send went out and was never recorded. ``StopWhenSending``
stops the database server at that moment instead.
"""

from __future__ import annotations

import email.utils
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import psutil
import psycopg

from tests.workers import MARK, Cluster, marked, titles

#: An alert as the tests see it: (recipient, new tender title).
Pair = tuple[str, str]


def tender_titles(first: int, count: int) -> list[str]:
    """The titles ``tests.workers.new_tenders(first, count)`` publishes."""
    return [f"{MARK} {n:05d}" for n in range(first, first + count)]


def email_pairs(subscribers: int, published: Iterable[str]) -> set[Pair]:
    """Every e-mail alert expected: each subscriber gets each published tender."""
    shown = list(published)
    return {(f"s{n}@ngo.example", title) for n in range(subscribers) for title in shown}


def telegram_pairs(subscribers: int, published: Iterable[str], every: int = 4) -> set[Pair]:
    """Every Telegram alert expected: every ``every``-th subscriber's chat gets each tender."""
    shown = list(published)
    chats = [f"-100{n:06d}" for n in range(0, subscribers, every)]
    return {(chat, title) for chat in chats for title in shown}


@dataclass(frozen=True)
class Tally:
    """What reached one channel, against what was expected."""

    expected: int
    delivered: int
    lost: int
    #: Alerts that arrived more than once (each extra arrival counted).
    duplicates: int
    #: Of those, the ones in a message a reader could not tell for a resend.
    unrecognised: int

    @classmethod
    def of(cls, expected: set[Pair], messages: list[tuple[str, list[Pair]]]) -> Tally:
        """Count ``messages`` (each an identity and the alerts it carried) against ``expected``."""
        arrived = Counter(pair for _, pairs in messages for pair in pairs)
        seen: set[str] = set()
        first_copies: Counter[Pair] = Counter()
        for identity, pairs in messages:
            if identity not in seen:
                first_copies.update(pairs)
            seen.add(identity)
        delivered = len(expected & set(arrived))
        return cls(
            expected=len(expected),
            delivered=delivered,
            lost=len(expected) - delivered,
            duplicates=sum(arrived.values()) - len(arrived),
            unrecognised=sum(first_copies.values()) - len(first_copies),
        )


def email_tally(found: Cluster, expected: set[Pair]) -> Tally:
    """The e-mail alerts; a resend is recognised by its repeated Message-ID."""
    messages = [
        (email.utils.unquote(str(m["Message-ID"])), [(str(m["To"]), t) for t in titles(m)])
        for m in list(found.mail.messages)
    ]
    return Tally.of(expected, messages)


def telegram_tally(found: Cluster, expected: set[Pair]) -> Tally:
    """The Telegram alerts; a resend is recognised by its repeated reference hashtag."""
    sent = list(found.bot.state.sent)
    messages = [(_reference(s), [(str(s["chat_id"]), t) for t in marked(s["text"])]) for s in sent]
    return Tally.of(expected, messages)


def _reference(sent: dict[str, Any]) -> str:
    # Every message from the outbox ends with "#sa" and 8 hex digits (agent.rendering.reference).
    [found] = re.findall(r"#sa[0-9a-f]{8}", sent["text"])
    return f"{sent['chat_id']} {found}"


def figure(title: str, values: dict[str, object]) -> None:
    """Print a test's figure, one value a line (shown with ``pytest -s`` or ``-rP``)."""
    width = max(len(name) for name in values)
    lines = [f"  {name:<{width}}  {value}" for name, value in values.items()]
    print(f"\n{title}", *lines, sep="\n")  # noqa: T201


def sqlalchemy_to_libpq(url: str) -> str:
    """A ``postgresql+psycopg://`` URL as psycopg itself takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass
class KillMidSend:
    """``on_accept``: SIGKILL the sending worker once ``wanted(message)``, if it is not polling.

    A worker killed mid-poll would keep the source's lease for two minutes
    (``agent.scheduler.POLL_HOLD``); the victim is one that holds none.
    """

    found: Cluster
    wanted: Callable[[EmailMessage], bool]
    armed: bool = False
    killed: threading.Event = field(default_factory=threading.Event)
    victim: int | None = None
    at: float = 0.0
    message_id: str = ""

    def __call__(self, message: EmailMessage) -> None:
        """Runs in the SMTP server's thread, before the message is accepted."""
        if not self.armed or self.killed.is_set() or not self.wanted(message):
            return
        port = self.found.smtp.client_port
        pid = None if port is None else self._sender(port)
        if pid is None or self._polling(pid):
            return
        os.kill(pid, signal.SIGKILL)
        self.at = time.monotonic()
        self.victim = self.found.pids().index(pid)
        self.message_id = email.utils.unquote(str(message["Message-ID"]))
        self.killed.set()

    def _sender(self, client_port: int) -> int | None:
        for pid in self.found.pids():
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.laddr and c.laddr.port == client_port for c in connections):
                return pid
        return None

    def _polling(self, pid: int) -> bool:
        query = "SELECT count(*) FROM lease WHERE name LIKE 'poll:%%' AND owner LIKE %s"
        with psycopg.connect(sqlalchemy_to_libpq(self.found.database_url)) as connection:
            row = connection.execute(query, (f"%:{pid}:%",)).fetchone()
        return bool(row and row[0])


@dataclass
class StopWhenSending:
    """``on_accept``: call ``stop`` (the database server's) once, when ``wanted(message)``.

    Runs before the message is accepted, so its sender learns of the
    acceptance only once the server is gone, and must wait to record it.
    """

    stop: Callable[[], None]
    wanted: Callable[[EmailMessage], bool]
    armed: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    at: float = 0.0

    def __call__(self, message: EmailMessage) -> None:
        """Runs in the SMTP server's thread."""
        if self.armed and not self.done.is_set() and self.wanted(message):
            self.at = time.monotonic()
            self.stop()
            self.done.set()


def deadlocks(found: Cluster) -> int:
    """How many times the workers logged PostgreSQL's "deadlock detected" (claims racing)."""
    return sum(found.log(n).count("deadlock detected") for n in range(len(found.workers)))
