"""Web pages: Jinja2 templates under ``templates/web/``, in the visitor's language.

Every page extends ``web/base.html``, which sets ``lang`` and ``dir``, a skip
link, the landmarks and the language switch. A page's strings come from
``templates/web/i18n/<lang>/<area>.toml`` (one file per area of the site, the
same keys in every language), reached in templates as ``t.<area>.<key>``.
An admin's templates directory may override any page or string, as for
messages; pages are rendered in the same sandbox.

The language is, in order: ``?lang=`` (which then sticks, in the session),
the session's, the browser's ``Accept-Language``, Hebrew.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from agent import i18n
from agent.rendering import BUILTIN_TEMPLATES
from agent.web.security import csrf_token

#: Each language's own name, as the switch shows it.
LANGUAGE_NAMES = {"he": "עברית", "ar": "العربية", "en": "English"}


def language_of(request: Request) -> str:
    """The visitor's language; a ``?lang=`` choice is remembered in the session."""
    asked = request.query_params.get("lang")
    if asked in i18n.LANGUAGES:
        request.session["lang"] = asked
        return asked
    kept = request.session.get("lang")
    if kept in i18n.LANGUAGES:
        return str(kept)
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip()
        if code and i18n.language_of(code) == code.split("-")[0].lower():
            return i18n.language_of(code)
    return i18n.LANGUAGES[0]


def load_strings(language: str, *dirs: Path) -> i18n.Catalogue:
    """Merge every ``web/i18n/<language>/<area>.toml`` (earlier folders win) by area."""
    merged: i18n.Catalogue = {}
    for folder in reversed(dirs):
        for path in sorted((folder / "web" / "i18n" / language).glob("*.toml")):
            with path.open("rb") as file:
                merged.setdefault(path.stem, {}).update(tomllib.load(file))
    return merged


class Pages:
    """Renders the site's pages in the visitor's language."""

    def __init__(
        self,
        templates_dir: Path,
        *,
        site_name: str = "Smart Agent",
        timezone: str = "Asia/Jerusalem",
        user_of: Callable[[Request], Any] = lambda request: None,
    ) -> None:
        self.dirs = list(dict.fromkeys([Path(templates_dir), BUILTIN_TEMPLATES]))
        self.site_name = site_name
        self.zone = ZoneInfo(timezone)
        self._user_of = user_of
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader([str(folder / "web") for folder in self.dirs]),
            autoescape=select_autoescape(["html", "xml"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["bdi"] = i18n.isolate
        self.strings = {lang: load_strings(lang, *self.dirs) for lang in i18n.LANGUAGES}
        self.messages = {lang: i18n.load_catalogue(lang, *self.dirs) for lang in i18n.LANGUAGES}

    def context(self, request: Request, language: str | None = None) -> dict[str, Any]:
        """What every page may use: language, strings, formatting, the CSRF field, the user.

        ``language`` overrides the visitor's for this page only (a subscriber's
        page in the subscription's language), without becoming their choice.
        """
        visitors = language_of(request)  # first: it remembers a ``?lang=`` choice
        language = language or visitors
        token = csrf_token(request)
        return {
            "request": request,
            "lang": language,
            "dir": i18n.direction(language),
            "t": self.strings[language],
            "m": self.messages[language],
            "site_name": self.site_name,
            "languages": LANGUAGE_NAMES,
            "switch_url": lambda code: _with_query(request, lang=code),
            "page_url": lambda **changes: _with_query(request, **changes),
            "csrf_token": token,
            "csrf_field": Markup('<input type="hidden" name="csrf_token" value="{}">').format(
                token
            ),
            "user": self._user_of(request),
            "flash": take_flash(request),
            "date": lambda value: _date(value, language, self.zone),
            "moment": lambda value: _moment(value, language, self.messages[language], self.zone),
            "money": lambda value, currency=None: i18n.amount(value, currency, language),
            "number": lambda value: i18n.number(value, language),
        }

    def render(
        self,
        request: Request,
        name: str,
        values: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        language: str | None = None,
    ) -> HTMLResponse:
        """Render page ``name`` (under ``templates/web/``) with ``values`` for ``request``."""
        context = {**self.context(request, language), **(values or {})}
        html = self.env.get_template(name).render(context)
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def fragment(self, request: Request, name: str, values: Mapping[str, Any]) -> str:
        """Render a piece of a page (an htmx answer) as text."""
        return self.env.get_template(name).render({**self.context(request), **values})


def flash(request: Request, key: str) -> None:
    """Show the string ``key`` (of ``t.base.flash``) once, on the next page."""
    request.session["flash"] = key


def take_flash(request: Request) -> str | None:
    """The flash message waiting for this page, if any (shown once)."""
    found = request.session.pop("flash", None)
    return found if isinstance(found, str) else None


def _with_query(request: Request, **changes: object) -> str:
    """The current path with some query parameters changed (``None`` drops one)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params += [(k, str(v)) for k, v in changes.items() if v is not None]
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path


def _date(value: datetime | None, language: str, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return i18n.format_day(value, language, zone)


def _moment(value: datetime | None, language: str, messages: i18n.Catalogue, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return i18n.moment(value, language, messages, zone)
