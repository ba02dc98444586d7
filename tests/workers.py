"""Several real ``smart-agent worker`` processes over one database, against the local fakes.

``cluster(folder, database_url)`` writes a config (a CKAN fake publishing
tenders, aiosmtpd on a fixed port, the Telegram Bot API fake), imports
subscribers, and starts the workers as child processes, each with its own log.
A test changes what the source publishes (``Cluster.publish``), kills a worker
(``Cluster.kill``), takes the SMTP server away and back (``Cluster.smtp``,
``tests.smtp_switch``), and reads what reached the channels. ``Cluster.stop``
stops the live workers with SIGTERM: each must exit 0, and every worker's
stderr, a killed one's too, must be clean.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from tests.conftest import ROOT, serve
from tests.fakes import ckan, telegram
from tests.fakes.smtp import Mailbox
from tests.service import TELEGRAM_TOKEN, Counted, Switch, assert_clean, smart_agent, user_env
from tests.smtp_switch import SmtpSwitch, smtp_switch

#: Every new tender's title carries this word; every subscriber asks for it.
MARK = "העתק"

CONFIG = """
[agent]
database_url = "{database}"
templates_dir = "{templates}"
dispatch_every = 2
retry_first = 1
retry_cap = 1
hourly_cap = 0
{agent_extra}

[server]
port = 0

[notifiers.email]
host = "127.0.0.1"
port = {smtp_port}
from_address = "Smart Agent <alerts@example.org>"
timeout = 5

[notifiers.telegram]
base_url = "{bot}/bot"

[sources.datagov-tenders]
kind = "ckan"
base_url = "{source}"
dataset = "tenders"
every = 1
"""


def subscribers(count: int, *, telegram_every: int = 4) -> str:
    """``count`` subscribers by e-mail (every ``telegram_every``-th by Telegram too), as TOML."""
    blocks = []
    for n in range(count):
        chat = f'\ntelegram_chat_id = "-100{n:06d}"' if n % telegram_every == 0 else ""
        channels = '["email", "telegram"]' if chat else '["email"]'
        blocks.append(
            f'[[subscriptions]]\nname = "subscriber {n}"\nquery = "{MARK}"\n'
            f'kinds = ["tender"]\nchannels = {channels}\nemail = "s{n}@ngo.example"{chat}\n'
            f'language = "{("he", "ar", "en")[n % 3]}"\n'
        )
    return "\n".join(blocks)


def new_tenders(first: int, count: int) -> list[dict[str, Any]]:
    """``count`` recorded tenders published again under new numbers from ``first``, titled so."""
    tenders = [r for r in ckan.real_records() if r["סוג הליך"] == "מכרז פומבי"]
    return [
        {**tenders[n % len(tenders)], "מספר פרסום": f"9{n:05d}", "שם הליך": f"{MARK} {n:05d}"}
        for n in range(first, first + count)
    ]


@dataclass
class Cluster:
    """The workers, the fakes they talk to, and the user's folder."""

    folder: Path
    database_url: str
    source: Switch
    requests: Counted
    smtp: SmtpSwitch
    bot: Starlette
    records: list[dict[str, Any]] = field(default_factory=ckan.real_records)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, count: int) -> None:
        """Start ``count`` more workers."""
        for _ in range(count):
            n = len(self.workers)
            log = (self.folder / f"worker-{n}.log").open("w", encoding="utf-8")
            self.workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "agent", "worker"],
                    cwd=self.folder,
                    env=user_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
            log.close()  # the child has its own copy

    @property
    def mail(self) -> Mailbox:
        """What the SMTP server received."""
        return self.smtp.mailbox

    def pids(self) -> list[int]:
        """Every worker's process id, in start order (a killed one's too)."""
        return [w.pid for w in self.workers]

    def log(self, n: int) -> str:
        """Worker ``n``'s stderr so far."""
        return (self.folder / f"worker-{n}.log").read_text(encoding="utf-8")

    def publish(self, rows: list[dict[str, Any]]) -> None:
        """Add ``rows`` to what the source publishes."""
        self.records = [*self.records, *rows]
        self.source.app = ckan.build_app(self.records)

    def kill(self, n: int) -> None:
        """Kill worker ``n`` with SIGKILL, as a machine lost would."""
        self.workers[n].send_signal(signal.SIGKILL)
        self.workers[n].wait(timeout=10)

    def alive(self) -> list[int]:
        """The workers still running."""
        return [n for n, w in enumerate(self.workers) if w.poll() is None]

    def stop(self) -> None:
        """Stop the live workers with SIGTERM; each must exit 0; every stderr must be clean."""
        running = self.alive()
        for n in running:
            self.workers[n].send_signal(signal.SIGTERM)
        for n in running:
            assert self.workers[n].wait(timeout=30) == 0, self.log(n)
        for n in range(len(self.workers)):
            # A worker killed with SIGKILL wrote nothing more: its log is checked too.
            assert_clean(self.log(n))

    def mailed(self) -> list[tuple[str, str]]:
        """(recipient, new tender title) for every alert e-mailed, in the order received."""
        return [(str(m["To"]), t) for m in list(self.mail.messages) for t in titles(m)]

    def telegrammed(self) -> list[tuple[str, str]]:
        """(chat, new tender title) for every alert sent by Telegram, in the order received."""
        sent = list(self.bot.state.sent)
        return [(str(s["chat_id"]), t) for s in sent for t in marked(s["text"])]


def titles(message: EmailMessage) -> list[str]:
    """The new tenders an alert e-mail names, in its order."""
    body = message.get_body(("plain",))
    return marked(body.get_content() if body is not None else "")


def marked(text: str) -> list[str]:
    """The new tenders a message's text names, in its order, each once."""
    return list(dict.fromkeys(re.findall(rf"{MARK} \d{{5}}", text)))


def message_ids(mail: Mailbox) -> list[str]:
    """Every received e-mail's Message-ID, duplicates included."""
    return [email.utils.unquote(str(m["Message-ID"])) for m in list(mail.messages)]


@contextlib.contextmanager
def cluster(
    folder: Path,
    database_url: str,
    *,
    subscriptions: int = 12,
    agent_extra: str = "",
    smtp_up: bool = True,
) -> Iterator[Cluster]:
    """Write the config, import the subscribers, and yield with no worker started yet.

    ``agent_extra`` is TOML added at the end of ``[agent]`` (it may open a
    sub-table such as ``[agent.admin_alerts]``); with ``smtp_up`` false nothing
    listens on the SMTP port until the test calls ``Cluster.smtp.up()``.
    """
    source = Switch(ckan.build_app())
    requests = Counted(source)
    bot = telegram.build_app(TELEGRAM_TOKEN)
    with serve(requests) as source_url, serve(bot) as bot_url, smtp_switch(up=smtp_up) as smtp:
        config = CONFIG.format(
            database=database_url,
            templates=ROOT / "templates",
            smtp_port=smtp.port,
            bot=bot_url,
            source=source_url,
            agent_extra=agent_extra,
        )
        (folder / "config.toml").write_text(config, encoding="utf-8")
        (folder / "subscriptions.toml").write_text(subscribers(subscriptions), encoding="utf-8")
        smart_agent(folder, "init")
        smart_agent(folder, "subscriptions", "import", "subscriptions.toml")
        found = Cluster(folder, database_url, source, requests, smtp, bot)
        try:
            yield found
        finally:
            with contextlib.suppress(AssertionError):
                _kill_all(found)


def _kill_all(found: Cluster) -> None:
    # After a failed test: leave no worker behind.
    for worker in found.workers:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
