"""Admins' template overrides: sandboxed, checked at start-up, previewed with real items."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import databases
from tests.conftest import ROOT, serve
from tests.fakes import ckan
from tests.user import User, config_text


@pytest.fixture
def user(tmp_path: Path) -> Iterator[User]:
    with serve(ckan.build_app()) as source:
        sources = f'[sources.tenders]\nkind = "ckan"\nbase_url = "{source}"\n'
        # Overrides first, then the built-in templates, as an admin sets it up.
        text = config_text(databases.url(tmp_path), sources).replace(
            f'"{ROOT / "templates"}"', '"overrides"'
        )
        (tmp_path / "config.toml").write_text(text, encoding="utf-8")
        (tmp_path / "overrides" / "telegram" / "en").mkdir(parents=True)
        yield User(tmp_path)


def _override(user: User, text: str) -> Path:
    path = user.folder / "overrides" / "telegram" / "en" / "body.html"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("template", "line", "says"),
    [
        pytest.param("<b>ok</b>\n{% if %}\n", 2, "Expected an expression", id="syntax"),
        pytest.param("<b>ok</b>\n\n{{ no_such_name }}\n", 3, "no_such_name", id="unknown name"),
        pytest.param("{{ t.__class__.__mro__ }}\n", 1, "unsafe", id="sandbox"),
    ],
)
def test_a_broken_override_stops_start_up_naming_file_and_line(
    user: User, template: str, line: int, says: str
) -> None:
    path = _override(user, template)
    for command in ("run-once", "serve"):
        result = user.run(command, code=2)
        [message] = result.stderr.strip().splitlines()
        assert f"{path}:{line}" in message
        assert says in message


def test_a_good_override_is_used_and_previewed_with_a_real_item(user: User) -> None:
    _override(user, "<b>{{ items|length }} from the admin</b>\n")
    user.run("run-once")
    out = user.run("templates", "preview", "telegram", "en").stdout.split()
    assert [Path(p).name for p in out] == ["telegram-en.html"]
    assert (user.folder / out[0]).read_text(encoding="utf-8") == "<b>1 from the admin</b>"


@pytest.mark.parametrize(("lang", "direction"), [("he", "rtl"), ("ar", "rtl"), ("en", "ltr")])
def test_preview_writes_an_email_in_each_language(user: User, lang: str, direction: str) -> None:
    user.run("run-once")
    files = user.run("templates", "preview", "email", lang, "--out", "look").stdout.split()
    names = sorted(Path(p).name for p in files)
    assert names == [f"email-{lang}.html", f"email-{lang}.subject.txt", f"email-{lang}.txt"]
    html = (user.folder / "look" / f"email-{lang}.html").read_text(encoding="utf-8")
    assert f'dir="{direction}"' in html


def test_preview_of_an_unknown_item_says_so(user: User) -> None:
    result = user.run("templates", "preview", "email", "he", "--item", "nope", code=1)
    assert "no stored item 'nope'" in result.stderr
