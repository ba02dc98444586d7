"""The web pages' strings: every area has the same keys in Hebrew, Arabic and English."""

from __future__ import annotations

import re
import tomllib

import pytest

from agent import i18n
from agent.rendering import BUILTIN_TEMPLATES
from agent.web.pages import load_strings

WEB = BUILTIN_TEMPLATES / "web"
AREAS = sorted({path.stem for path in (WEB / "i18n").glob("*/*.toml")})
#: Latin letters a Hebrew or Arabic string may keep: names of things, not words.
KEPT_LATIN = re.compile(
    r"\b(API|RSS|Atom|iCalendar|Telegram|OpenAPI|JSON|CSV|HTML|OR|AND|NOT|e-mail|publisher"
    r"|ID|URL|PDF|Smart Agent|curl|Bearer|ics|t\.me|X-CSRF-Token"
    r"|config\.toml|Authorization|CSRF)\b"
)


@pytest.mark.parametrize("area", AREAS)
def test_every_language_has_the_same_keys(area: str) -> None:
    keys = {}
    for language in i18n.LANGUAGES:
        path = WEB / "i18n" / language / f"{area}.toml"
        assert path.is_file(), f"{path} is missing"
        with path.open("rb") as file:
            keys[language] = i18n.flat_keys(tomllib.load(file))
    assert keys["ar"] == keys["he"], keys["ar"] ^ keys["he"]
    assert keys["en"] == keys["he"], keys["en"] ^ keys["he"]


@pytest.mark.parametrize("language", ["he", "ar"])
def test_right_to_left_strings_are_not_left_in_english(language: str) -> None:
    strings = load_strings(language, BUILTIN_TEMPLATES)
    english = []
    for area, table in strings.items():
        for key, value in _leaves(table):
            words = re.findall(r"[A-Za-z]{4,}", KEPT_LATIN.sub("", re.sub(r"\{\w+\}", "", value)))
            if words:
                english.append(f"{area}.{key}: {value}")
    assert not english, "\n".join(english)


def _leaves(table: dict[str, object], prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            found += _leaves(value, f"{prefix}{key}.")
        elif isinstance(value, str):
            found.append((f"{prefix}{key}", value))
    return found
