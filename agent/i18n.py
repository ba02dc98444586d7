"""Languages: the UI string catalogues and locale-aware formatting of values.

Catalogues are ``templates/i18n/<lang>.toml`` (nested tables, the same keys in
every language). An admin's templates directory may override some keys; the
built-in catalogue fills the rest. Values are formatted with Babel in the
reader's locale, dates in the service's local zone (Asia/Jerusalem).
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal

#: The languages the service speaks; the first is the default.
LANGUAGES = ("he", "ar", "en")

#: The Babel locale each language formats numbers and dates in.
LOCALES = {"he": "he_IL", "ar": "ar", "en": "en_IL"}

#: First Strong Isolate and Pop Directional Isolate: keep a value's own direction.
FSI, PDI = "\u2068", "\u2069"

Catalogue = dict[str, Any]


def language_of(code: str | None) -> str:
    """Return a supported language for ``code`` (``he-IL`` → ``he``), else the default."""
    base = (code or "").split("-")[0].split("_")[0].lower()
    return base if base in LANGUAGES else LANGUAGES[0]


def direction(language: str) -> str:
    """Return ``rtl`` or ``ltr`` for a language, as CLDR has it."""
    return "rtl" if Locale.parse(LOCALES[language]).character_order == "right-to-left" else "ltr"


def load_catalogue(language: str, *dirs: Path) -> Catalogue:
    """Merge ``<dir>/i18n/<language>.toml`` over each later directory (first wins)."""
    merged: Catalogue = {}
    for folder in reversed(dirs):
        path = folder / "i18n" / f"{language}.toml"
        if path.is_file():
            with path.open("rb") as file:
                _merge(merged, tomllib.load(file))
    return merged


def flat_keys(catalogue: Catalogue, prefix: str = "") -> set[str]:
    """Return every key of a nested catalogue as a dotted path."""
    keys: set[str] = set()
    for key, value in catalogue.items():
        path = f"{prefix}{key}"
        keys |= flat_keys(value, path + ".") if isinstance(value, dict) else {path}
    return keys


def isolate(text: object) -> str:
    """Wrap ``text`` in Unicode isolates so it cannot reorder the sentence around it."""
    shown = "" if text is None else str(text)
    return f"{FSI}{shown}{PDI}" if shown else ""


def amount(value: float, currency: str | None, language: str) -> str:
    """Format money for the reader: ``‏1,250,000 ‏₪``; no decimals for whole amounts."""
    locale = Locale.parse(LOCALES[language])
    code = currency or "ILS"
    if value != int(value):
        return format_currency(value, code, locale=locale)
    pattern = locale.currency_formats["standard"].pattern.replace(".00", "")
    return format_currency(value, code, format=pattern, locale=locale, currency_digits=False)


def moment(value: datetime, language: str, catalogue: Catalogue, zone: ZoneInfo) -> str:
    """Format an instant as a local date and time in the reader's language."""
    local = value.astimezone(zone)
    locale = LOCALES[language]
    return str(catalogue["date_time"]).format(
        date=format_date(local, "long", locale=locale),
        time=format_time(local, "short", locale=locale),
    )


def format_day(value: datetime, language: str, zone: ZoneInfo) -> str:
    """Format an instant's local date in the reader's language (``1 ביולי 2017``)."""
    return format_date(value.astimezone(zone), "long", locale=LOCALES[language])


def number(value: float, language: str) -> str:
    """Format a count or a quantity with the reader's digit grouping."""
    return format_decimal(value, locale=LOCALES[language])


def days_left(
    deadline: datetime, now: datetime, language: str, catalogue: Catalogue, zone: ZoneInfo
) -> str:
    """Say how many local calendar days remain until ``deadline`` (plural rules by CLDR)."""
    if deadline < now:
        return str(catalogue["days_left"]["closed"])
    days = (deadline.astimezone(zone).date() - now.astimezone(zone).date()).days
    return plural(catalogue["days_left"], days, language)


def plural(texts: Catalogue, count: int, language: str) -> str:
    """Pick the CLDR plural form of ``count`` from ``texts`` (``zero`` for 0 if given)."""
    form = "zero" if count == 0 else Locale.parse(LOCALES[language]).plural_form(count)
    return str(texts.get(form, texts["other"])).format(n=count)


def _merge(into: Catalogue, update: Catalogue) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
