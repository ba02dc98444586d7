"""Find the current budget-change files through gov.il's ContentPage API.

The page ``www.gov.il/he/pages/budget-changes-current-year`` is built by
JavaScript: its HTML has none of the file links. The content behind it comes
from ``/ContentPageWebApi/api/content-pages/<page>?culture=he`` as JSON, whose
``contentMain.htmlContents[].sectionData`` is the HTML with the links (Budget
Key's ``budget/national/changes/current_year_urls.py`` at commit 473a849b, and
``procurement/calls_for_bids/class_action.py``, which reads the same API).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from agent.errors import SourceError
from watchers.base import fetch_json

#: gov.il's content API for the page that links the current year's files.
CONTENT_PAGE_URL = (
    "https://www.gov.il/ContentPageWebApi/api/content-pages/budget-changes-current-year?culture=he"
)
#: A change-lines file (BK looks for ``approv_data`` / ``vaada_data``); ``explain`` and
#: XLSX copies are not read.
_DATA_FILE = re.compile(r"(approv|vaada)_data.*\.csv$", re.IGNORECASE)


async def discover(http: httpx.AsyncClient, url: str) -> list[str]:
    """Return the change-lines CSV links of the content page at ``url``, absolute."""
    page = await fetch_json(http, url)
    sections = _sections(page, url)
    links = [link for html in sections for href in _hrefs(html) if (link := _absolute(url, href))]
    data = [link for link in dict.fromkeys(links) if _DATA_FILE.search(file_name(link))]
    if not data:
        found = ", ".join(links[:10]) or "none"
        raise SourceError(f"{url}: no (approv|vaada)_data CSV link in the page (links: {found})")
    return data


def file_name(url: str) -> str:
    """Return the file name at the end of ``url``, unquoted."""
    return PurePosixPath(unquote(urlsplit(url).path)).name


def _sections(page: Any, url: str) -> list[str]:
    # contentMain.htmlContents[0].sectionData in BK; every section is read, in case of more.
    contents = page.get("contentMain") if isinstance(page, dict) else None
    blocks = contents.get("htmlContents") if isinstance(contents, dict) else None
    sections = [
        b["sectionData"]
        for b in (blocks if isinstance(blocks, list) else [])
        if isinstance(b, dict) and b.get("sectionData")
    ]
    if not sections or not all(isinstance(s, str) for s in sections):
        raise SourceError(f"{url}: no contentMain.htmlContents[].sectionData in the answer")
    return sections


def _absolute(url: str, href: str) -> str | None:
    try:
        return urljoin(url, href)
    except ValueError:  # "http://[::1": no link to follow
        return None


def _hrefs(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.hrefs


class _Links(HTMLParser):
    """Collect the ``href`` of every ``<a>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Keep an anchor's link."""
        href = dict(attrs).get("href") if tag == "a" else None
        if href and href.strip():
            self.hrefs.append(href.strip())
