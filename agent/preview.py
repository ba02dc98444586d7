"""Templates tried before they are trusted: start-up checks and previews.

``check`` renders every channel in every language with a sample alert when
the service starts, so an admin's broken override (a syntax error, an
unknown name, something the sandbox forbids) stops start-up naming the file
and line, and never fails at send time. ``preview`` renders a stored item the
way a subscriber would get it, for ``smart-agent templates preview``.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jinja2 import TemplateError, TemplateSyntaxError

import notifiers
from agent import i18n
from agent.errors import ConfigError
from agent.models import Event, EventType, Item, Kind
from agent.rendering import Alert, Outgoing, Recipient, Renderer

#: What a check renders: a Hebrew tender with every field filled.
SAMPLE = Item(
    source="sample",
    kind=Kind.TENDER,
    key="sample-1",
    title="מכרז לדוגמה: שירותי ענן ומחשוב",
    description="תיאור לדוגמה של מכרז, כפי שמקור מפרסם אותו.",
    publisher="משרד לדוגמה",
    publishing_unit="אגף מערכות מידע",
    amount=1_250_000.0,
    currency="ILS",
    published_at=datetime(2026, 1, 1, 8, 0, tzinfo=UTC),
    deadline=datetime(2026, 1, 20, 10, 0, tzinfo=UTC),
    url="https://example.org/tenders/1",
    tags=("ענן",),
)


@dataclass(frozen=True)
class Sample:
    """A recipient and the alerts to render for them."""

    recipient: Recipient
    alerts: list[Alert]
    now: datetime


def sample(language: str, item: Item = SAMPLE, *, event: EventType = EventType.NEW) -> Sample:
    """A subscriber in ``language`` with one alert about ``item``."""
    now = (item.published_at or datetime(2026, 1, 1, tzinfo=UTC)) + timedelta(days=1)
    alert = Alert(
        delivery_id=1,
        event=Event(type=event, item=item, dedup_key="preview"),
        reasons=[{"clause": "ענן", "field": "title", "term": "ענן", "matched": "ענן"}],
        created_at=now,
        message_token="preview",
    )
    recipient = Recipient(
        subscription_name="preview",
        address="preview@example.org",
        language=language,
        feed_url="https://example.org/feeds/preview.xml",
        unsubscribe_url="https://example.org/unsubscribe/preview",
        manage_url="https://example.org/manage/preview",
    )
    return Sample(recipient, [alert], now)


def check(renderer: Renderer) -> None:
    """Render every channel in every language once; ``ConfigError`` names a broken file."""
    for channel in notifiers.CHANNELS:
        for language in i18n.LANGUAGES:
            given = sample(language)
            for digest in (False, True):
                who = Recipient(**{**given.recipient.__dict__, "digest": digest})
                try:
                    renderer.render(channel, who, given.alerts, now=given.now)
                except TemplateError as exc:
                    raise ConfigError(f"template {_where(exc, renderer)}: {exc}") from exc


def preview(renderer: Renderer, channel: str, language: str, item: Item = SAMPLE) -> list[Outgoing]:
    """Render ``item`` as a new alert on ``channel`` for a subscriber in ``language``."""
    given = sample(language, item)
    return renderer.render(channel, given.recipient, given.alerts, now=given.now)


def write(outgoing: list[Outgoing], folder: Path, stem: str) -> list[Path]:
    """Write each message's subject, text and HTML under ``folder``; return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, out in enumerate(outgoing, start=1):
        name = stem if len(outgoing) == 1 else f"{stem}-{number}"
        parts = {
            ".subject.txt": out.message.subject,
            ".txt": out.message.text,
            ".html": out.message.html or "",
        }
        for suffix, text in parts.items():
            if text:
                path = folder / f"{name}{suffix}"
                path.write_text(text, encoding="utf-8")
                written.append(path)
    return written


def _where(exc: TemplateError, renderer: Renderer) -> str:
    """The file and line a template error is in, as exact as Jinja tells."""
    if isinstance(exc, TemplateSyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename.endswith((".html", ".txt"))
    ]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    return str(renderer.overrides or "(built-in templates)")
