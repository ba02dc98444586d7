"""The e-mail's HTML part in a real browser: accessible, and readable on a phone.

Each message is rendered by the real renderer in Hebrew, Arabic and English,
built into MIME by the real notifier, and its HTML part is opened in Debian's
Chromium, driven by Playwright (``.ci/run`` installs Chromium when it is
missing). axe-core (the ``axe.min.js`` that ``axe-playwright-python`` bundles)
must find no serious or critical violation; on a 375 px wide phone screen the
page must not scroll sideways, every text must be at least 14 px, and the
alerts must stand in one column. The page needs no image.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from dataclasses import replace
from importlib.resources import files
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from agent.models import Change, EventType
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from notifiers.base import Message
from notifiers.email import EmailNotifier
from tests.conftest import NOW
from tests.samples import ARABIC_TITLE, ENGLISH_TITLE, HEBREW_TITLE, alert, item, recipient

#: Where Debian puts Chromium (``apt-get install chromium``); PATH is searched first.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it: apt-get chromium)"
)

PHONE: ViewportSize = {"width": 375, "height": 740}
LANGUAGES = ["he", "ar", "en"]
TITLES = {"he": HEBREW_TITLE, "ar": ARABIC_TITLE, "en": ENGLISH_TITLE}
#: A long unbroken run, as a pasted link or a file name in a description is.
UNBROKEN = "https://www.gov.il/BlobFolder/generalpage/tender-117/he/" + "x" * 90 + ".pdf"


def one_alert(language: str) -> Message:
    """A single new tender, as most immediate alerts are."""
    return render(language, [alert(1, subject=item(TITLES[language]))])


def several_alerts(language: str) -> Message:
    """New, closing soon, updated (with what changed) and a long unbroken description."""
    alerts = [
        alert(1, subject=item(TITLES[language])),
        alert(2, subject=item(ARABIC_TITLE, key="t-2"), event=EventType.CLOSING_SOON),
        alert(
            3,
            subject=item(ENGLISH_TITLE, key="t-3", amount=2_400_000.0),
            event=EventType.UPDATED,
            changes={"amount": Change(before=1_250_000.0, after=2_400_000.0)},
        ),
        alert(4, subject=item(HEBREW_TITLE, key="t-4", url=None, description=UNBROKEN)),
    ]
    return render(language, alerts)


def a_digest(language: str) -> Message:
    """A daily digest in sections, one alert held back from an earlier hour."""
    alerts = [
        alert(1, subject=item(TITLES[language])),
        replace(alert(2, subject=item(ARABIC_TITLE, key="t-2")), rolled_over=True),
        alert(3, subject=item(ENGLISH_TITLE, key="t-3"), event=EventType.CLOSING_SOON),
    ]
    return render(language, alerts, digest=True)


def render(language: str, alerts: list[Any], *, digest: bool = False) -> Message:
    renderer = Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")
    who = replace(recipient(language), public_id="AbCdEfGhIjKlMnOpQrStUv", digest=digest)
    [out] = renderer.render("email", who, alerts, now=NOW)
    return out.message


def html_part(message: Message) -> str:
    """The HTML part as the mail client receives it, after MIME encoding."""
    part = EmailNotifier().build(message).get_body(("html",))
    assert part is not None, "every alert has an HTML part"
    html: str = part.get_content()
    return html


MESSAGES = [
    pytest.param(build, language, id=f"{build.__name__}-{language}")
    for build in (one_alert, several_alerts, a_digest)
    for language in LANGUAGES
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium, headless, started once for this module."""
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    """A page the size of a small phone's screen, with images blocked."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    context.route("**/*", lambda route: route.abort())  # nothing may be fetched
    page = context.new_page()
    yield page
    context.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core's default rules (WCAG 2.x A and AA, best practices) on the page."""
    script = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    page.evaluate(script)
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = results["violations"]
    return violations


@pytest.mark.parametrize(("build", "language"), MESSAGES)
def test_axe_finds_no_serious_or_critical_violation(phone: Page, build: Any, language: str) -> None:
    phone.set_content(html_part(build(language)))
    found = [v for v in axe_violations(phone) if v["impact"] in ("serious", "critical")]
    summary = [
        (v["id"], v["impact"], v["nodes"][0]["failureSummary"], v["nodes"][0]["html"])
        for v in found
    ]
    assert summary == []


@pytest.mark.parametrize(("build", "language"), MESSAGES)
def test_a_phone_shows_one_readable_column_without_sideways_scrolling(
    phone: Page, build: Any, language: str
) -> None:
    phone.set_content(html_part(build(language)))
    layout: dict[str, Any] = phone.evaluate(
        """() => {
            const sizes = [];
            for (const el of document.body.querySelectorAll('*')) {
                const ownText = [...el.childNodes].some(
                    n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
                if (ownText) sizes.push([el.tagName, parseFloat(getComputedStyle(el).fontSize)]);
            }
            const boxes = [...document.querySelectorAll('.item')].map(el => {
                const r = el.getBoundingClientRect();
                return [r.left, r.right, r.top, r.bottom];
            });
            return {
                scrollWidth: document.documentElement.scrollWidth,
                bodyScrollWidth: document.body.scrollWidth,
                sizes, boxes,
            };
        }"""
    )
    assert layout["scrollWidth"] <= PHONE["width"]
    assert layout["bodyScrollWidth"] <= PHONE["width"]
    small = [(tag, size) for tag, size in layout["sizes"] if size < 14]
    assert layout["sizes"]
    assert small == [], "every text is at least 14 px"
    boxes = layout["boxes"]
    assert boxes, "each alert is an .item block"
    for above, below in itertools.pairwise(boxes):
        assert below[0] == above[0]
        assert below[1] == above[1], "every alert spans the same width: one column"
        assert below[2] >= above[3], "each alert stands below the one before"


@pytest.mark.parametrize(("build", "language"), MESSAGES)
def test_the_html_part_has_its_css_inline_and_needs_no_image(build: Any, language: str) -> None:
    html = html_part(build(language))
    assert "<style" not in html, "mail clients drop <style>: every rule is inlined"
    assert 'class="item" style="' in html
    assert "<img" not in html
    assert "url(" not in html
    assert f'lang="{language}"' in html
