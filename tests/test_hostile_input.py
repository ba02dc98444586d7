"""Hostile input: links that are not web links, control characters, monstrous rules, bad zones.

A source may send ``javascript:`` links or NUL bytes, and a person may type a
rule of a thousand ``NOT``s or a time zone on Mars. None of it may reach a
reader as a live link, break the feed, or crash a command with a traceback.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from agent import subscriptions
from agent.config import build_config
from agent.errors import ConfigError, RuleError
from agent.models import Change, EventType, Item
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from agent.rules import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    MAX_VALUE_LENGTH,
    MAX_VALUES,
    Engine,
    RuleSpec,
    describe,
    dump_node,
    load_node,
    parse_query,
)
from agent.service import Agent
from agent.web import create_app
from tests import databases
from tests.conftest import NOW, ROOT, serve
from tests.fakes import ckan
from tests.samples import alert, item, recipient
from tests.service import SIGNING_KEY, assert_clean

ATOM = "{http://www.w3.org/2005/Atom}"

#: Every link a source might send that is not a web page; each mentions "evil".
NOT_WEB_LINKS = [
    "javascript:alert('evil')",
    " JaVaScRiPt:alert('evil')",
    "java\tscript:alert('evil')",
    "\x00javascript:alert('evil')",
    "data:text/html,<script>evil()</script>",
    "vbscript:msgbox('evil')",
    "//evil.example/x",
    "file:///etc/evil",
    "https:evil",
    "/relative/evil",
]

#: Characters XML 1.0 forbids or a reader should never get; \t \n \r are kept.
CONTROL = "".join(
    [
        *(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"),
        "\x7f",
        *(chr(c) for c in range(0x80, 0xA0)),
        "\ud800",
        "\udfff",
        "\ufffe",
        "\uffff",
    ]
)
_UNWANTED = re.compile(f"[{re.escape(CONTROL)}]")


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")


def rendered(renderer: Renderer, subject: Item) -> dict[str, str]:
    """Everything a reader may get for one alert: e-mail, Telegram and the Atom feed."""
    one = alert(subject=subject)
    [email] = renderer.render("email", recipient("en"), [one], now=NOW)
    [telegram] = renderer.render("telegram", recipient("en"), [one], now=NOW)
    feed = renderer.render_feed(recipient("en"), [one], updated_at=NOW)
    return {
        "email html": email.message.html or "",
        "email text": email.message.text,
        "telegram html": telegram.message.html or "",
        "telegram text": telegram.message.text,
        "atom": feed.decode("utf-8"),
    }


def hrefs(outputs: dict[str, str]) -> list[str]:
    """Every link target in the HTML outputs and the feed (entry links and content)."""
    found = [
        html.unescape(href)
        for name in ("email html", "telegram html")
        for href in re.findall(r'href="([^"]*)"', outputs[name])
    ]
    root = ET.fromstring(outputs["atom"])
    found += [link.attrib["href"] for link in root.iter(f"{ATOM}link")]
    for content in root.iter(f"{ATOM}content"):
        found += [html.unescape(h) for h in re.findall(r'href="([^"]*)"', content.text or "")]
    return found


# --- links ------------------------------------------------------------------------------


@pytest.mark.parametrize("url", NOT_WEB_LINKS)
def test_a_link_that_is_not_http_is_dropped_and_the_item_kept(renderer: Renderer, url: str) -> None:
    tender = item(url=url)
    assert tender.url is None
    assert tender.title == item().title
    outputs = rendered(renderer, tender)
    for name, text in outputs.items():
        assert "evil" not in text, f"{name} carries the link {url!r}"
    assert all(href.startswith(("http://", "https://")) for href in hrefs(outputs))


@pytest.mark.parametrize(
    "url",
    [
        "https://www.gov.il/he/departments/publications/Call_for_bids/t?a=1&b=2",
        "http://mr.gov.il/ExemptionMessage/Pages/ExemptionMessage.aspx?pID=5",
        "HTTPS://WWW.GOV.IL/he/x",
    ],
)
def test_web_links_are_kept_in_every_channel(renderer: Renderer, url: str) -> None:
    tender = item(url=url)
    assert tender.url == url
    outputs = rendered(renderer, tender)
    assert hrefs(outputs).count(url) >= 4, "e-mail, Telegram, feed entry and feed content"
    assert url in outputs["email text"]


def test_blanks_around_a_web_link_are_trimmed() -> None:
    assert item(url="  https://www.gov.il/x\n").url == "https://www.gov.il/x"


# --- control characters -----------------------------------------------------------------


#: The control characters Python counts as white space: they become a space, not nothing.
SPACE_LIKE = "\x0b\x0c\x1c\x1d\x1e\x1f\x85"
#: The others are removed.
NOT_SPACE = "".join(c for c in CONTROL if c not in SPACE_LIKE)


def test_control_characters_are_stripped_once_at_the_item(renderer: Renderer) -> None:
    tender = item(
        title=f"מכרז{NOT_SPACE}לשירותי{SPACE_LIKE}ענן",
        description="שורה\tראשונה\r\nשורה\x0cשנייה" + NOT_SPACE,
        publisher="משרד\x00 הבריאות\x1f",
        publishing_unit="\x00אגף",
        status="פתוח\x07",
        tags=("ענן\x00", "\x1b[31mמחשוב"),
        budget_codes=("20.40\x00",),
        key="tender\x00-117",
    )
    assert tender.title == "מכרזלשירותי" + " " * len(SPACE_LIKE) + "ענן"
    assert tender.description == "שורה\tראשונה\r\nשורה שנייה"
    assert tender.publisher == "משרד הבריאות "
    assert (tender.publishing_unit, tender.status) == ("אגף", "פתוח")
    assert tender.tags == ("ענן", "[31mמחשוב")
    assert tender.budget_codes == ("20.40",)
    assert tender.key == "tender-117"
    tender.content_hash()  # a lone surrogate made this raise UnicodeEncodeError
    for name, text in rendered(renderer, tender).items():
        assert not _UNWANTED.search(text), f"{name} carries a control character"


def test_the_raw_payload_is_kept_as_received() -> None:
    # ``raw`` is evidence of what the source sent; no channel renders it.
    assert item(raw={"title": "a\x00b"}).raw == {"title": "a\x00b"}


def test_changed_values_from_before_the_fix_are_cleaned_too(renderer: Renderer) -> None:
    # Events stored before items were cleaned carry dirty "before" values.
    change = Change(before=["a\x00", {"b": "\x1bc"}], after="d\ud800")
    assert (change.before, change.after) == (["a", {"b": "c"}], "d")
    one = alert(event=EventType.UPDATED, changes={"title": change})
    feed = renderer.render_feed(recipient("en"), [one], updated_at=NOW)
    ET.fromstring(feed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(st.characters(codec=None, exclude_categories=()), min_size=1),
    tag=st.text(st.characters(codec=None, exclude_categories=())),
)
def test_any_text_from_a_source_renders_as_well_formed_xml_and_messages(
    text: str, tag: str
) -> None:
    renderer = Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")
    tender = item(title=text, description=text, publisher=text, tags=(tag,), url=text)
    outputs = rendered(renderer, tender)
    root = ET.fromstring(outputs["atom"])
    assert root.tag == f"{ATOM}feed"
    for name, out in outputs.items():
        assert not _UNWANTED.search(out), f"{name} carries a control character"
    tender.content_hash()


@pytest.fixture
async def feed_url(tmp_path: Path) -> AsyncIterator[str]:
    """A feed whose one tender came from a source with NUL, C0 and lone surrogates."""
    records = ckan.real_records()[:1]
    records[0] |= {
        # (A lone surrogate cannot travel in the fake's UTF-8 JSON; the unit tests cover it.)
        "שם הליך": "מתן שירותי\x00 כוח\x01 אדם\x1b זמני\x7f בעיתות חירום\x0b",
        "שם המשרד": "משרד\x00 האוצר\x1f",
        "נושאים": "כוח אדם\x02, חירום\x00",
    }
    when = datetime(2017, 7, 1, 9, 0, tzinfo=UTC)
    with serve(ckan.build_app(records)) as source_url:
        config = build_config(
            {
                "agent": {
                    "database_url": databases.url(tmp_path),
                    "templates_dir": str(ROOT / "templates"),
                },
                "sources": {
                    "tenders": {"kind": "ckan", "base_url": source_url, "alert_on_first_poll": True}
                },
            },
            base_dir=tmp_path,
        )
        async with Agent.open(config, clock=lambda: when) as agent:
            with Session(agent.db, expire_on_commit=False) as session:
                entry = subscriptions.SubscriptionInput.model_validate(
                    {"name": "staff", "query": "כוח", "channels": ["rss"]}
                )
                sub = subscriptions.save(session, entry, now=when)
                session.commit()
            [result] = await agent.poll_all()
            assert result.error is None, result.error
            await agent.dispatch()
            app = create_app(agent)
            with serve(app) as url:
                yield f"{url}/feeds/{sub.feed_token}.xml"


async def test_a_feed_of_items_with_control_characters_answers_well_formed_xml(
    feed_url: str,
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(feed_url)
    assert response.status_code == 200, response.text
    root = ET.fromstring(response.content)
    [entry] = root.iter(f"{ATOM}entry")
    title = entry.findtext(f"{ATOM}title") or ""
    assert "מתן שירותי כוח אדם זמני בעיתות חירום" in title
    assert not _UNWANTED.search(response.text)


# --- rules ------------------------------------------------------------------------------

DEEP_PARENTHESES = "(" * 200 + "ענן" + ")" * 200
#: 4,000 characters: over the length limit before its depth is even looked at.
MANY_NOTS = "מחשוב " + "NOT " * 1000 + "ענן"
MANY_DASHES = "מחשוב " + "-" * 1000 + "ענן"


@pytest.mark.parametrize(
    "query",
    [
        DEEP_PARENTHESES,
        "מחשוב " + "NOT " * 100 + "ענן",
        MANY_DASHES,
        "מחשוב title:" + "(" * 300 + "ענן" + ")" * 300,
    ],
    ids=["parentheses", "NOTs", "dashes", "title restriction"],
)
def test_a_rule_nested_too_deep_is_refused_saying_where_and_the_limit(query: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_query(query)
    message = str(caught.value)
    assert f"at most {MAX_DEPTH} levels" in message
    assert re.search(r"\(at position \d+\)$", message)
    assert "\n" not in message, "one line, without echoing a huge query"
    with pytest.raises(RuleError, match=f"at most {MAX_DEPTH} levels"):
        RuleSpec(query=query).compile()


def test_a_rule_at_the_depth_limit_compiles_matches_and_round_trips() -> None:
    query = "(" * (MAX_DEPTH - 1) + "NOT ביטוח ענן" + ")" * (MAX_DEPTH - 1)
    node = RuleSpec(query=query).compile()
    assert load_node(dump_node(node)) == node
    assert describe(node)
    engine = Engine()
    engine.add(1, node)
    event = alert(subject=item(title="שירותי ענן")).event
    assert [m.rule_id for m in engine.match(event, now=NOW)] == [1]
    with pytest.raises(RuleError, match=f"at most {MAX_DEPTH} levels"):
        parse_query("(" + query + ")")


def test_a_query_too_long_is_refused_with_the_limit() -> None:
    query = "ענן " * (MAX_QUERY_LENGTH // 4 + 1)
    with pytest.raises(RuleError, match=f"at most {MAX_QUERY_LENGTH:,} characters"):
        parse_query(query)


def test_a_query_with_too_many_terms_is_refused_at_the_first_one_too_many() -> None:
    words = [f"w{n}" for n in range(MAX_TERMS + 1)]
    parse_query(" OR ".join(words[:MAX_TERMS]))
    query = " OR ".join(words)
    with pytest.raises(RuleError, match=f"at most {MAX_TERMS} words") as caught:
        parse_query(query)
    assert f"(at position {query.index(words[-1])})" in str(caught.value)
    values = "tag:(" + " OR ".join(["x"] * (MAX_TERMS + 1)) + ")"
    with pytest.raises(RuleError, match=f"at most {MAX_TERMS} words"):
        parse_query(values)


def test_a_control_character_in_a_query_is_refused_with_its_position() -> None:
    with pytest.raises(RuleError, match="control character") as caught:
        parse_query('publisher:"משרד\x00 האוצר"')
    assert caught.value.position == 15


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"publishers": ["משרד האוצר"] * (MAX_VALUES + 1)}, f"publishers: at most {MAX_VALUES}"),
        ({"tags": ["x" * (MAX_VALUE_LENGTH + 1)]}, f"tags: at most {MAX_VALUE_LENGTH} characters"),
        ({"follow": "k" * (MAX_VALUE_LENGTH + 1)}, f"follow: at most {MAX_VALUE_LENGTH} char"),
        ({"publishers": ["משרד\x00"]}, "publishers: a control character"),
        ({"kinds": ["tender"], "amount_min": float("nan")}, "amount_min: must be a finite number"),
        ({"kinds": ["tender"], "amount_max": float("inf")}, "amount_max: must be a finite number"),
    ],
)
def test_rule_fields_have_size_limits(fields: dict[str, object], error: str) -> None:
    with pytest.raises(RuleError, match=re.escape(error)):
        RuleSpec.model_validate(fields).compile()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(
        f'[agent]\ndatabase_url = "{databases.url(tmp_path)}"\n'
        f'templates_dir = "{ROOT / "templates"}"\n',
        encoding="utf-8",
    )
    return tmp_path


def smart_agent(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``smart-agent ARGS`` in ``folder`` with no channel but the feed; stderr stays clean."""
    result = subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=folder,
        env={**os.environ, "SMART_AGENT_AGENT__SIGNING_KEY": SIGNING_KEY},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_clean(result.stderr)
    return result


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        (DEEP_PARENTHESES, f"the query nests too deeply: at most {MAX_DEPTH} levels"),
        (MANY_NOTS, f"the query is 4,009 characters long: at most {MAX_QUERY_LENGTH:,} characters"),
    ],
    ids=["parentheses", "NOTs"],
)
@pytest.mark.parametrize(
    "command",
    [("rules", "test"), ("subscriptions", "add", "deep", "--channel", "rss", "-q")],
    ids=["rules test", "subscriptions add"],
)
def test_the_commands_refuse_a_monstrous_rule_in_one_line(
    folder: Path, command: tuple[str, ...], query: str, limit: str
) -> None:
    result = smart_agent(folder, *command, query)  # no traceback on stderr
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {limit}"), line
    assert re.search(r"\(at position \d+\)$", line), line


def test_importing_a_monstrous_rule_is_refused_naming_the_entry(folder: Path) -> None:
    (folder / "subs.toml").write_text(
        f"[[subscriptions]]\nname = 'deep'\nchannels = ['rss']\nquery = '{MANY_DASHES}'\n",
        encoding="utf-8",
    )
    result = smart_agent(folder, "subscriptions", "import", "subs.toml")
    assert result.returncode == 1, result.stderr
    assert "subscriptions[0] (deep)" in result.stderr
    assert f"at most {MAX_DEPTH} levels" in result.stderr


# --- time zone --------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Base", "", "../../etc/passwd", "America", "UTC+2"])
def test_an_unknown_time_zone_is_a_configuration_error(tmp_path: Path, zone: str) -> None:
    with pytest.raises(ConfigError, match=r"agent\.timezone: .*unknown time zone"):
        build_config({"agent": {"timezone": zone}}, base_dir=tmp_path)


def test_a_known_time_zone_is_accepted(tmp_path: Path) -> None:
    config = build_config({"agent": {"timezone": "Europe/London"}}, base_dir=tmp_path)
    assert config.agent.timezone == "Europe/London"


def test_run_once_with_an_unknown_time_zone_exits_2_naming_the_key(folder: Path) -> None:
    with (folder / "config.toml").open("a", encoding="utf-8") as config:
        config.write('timezone = "Mars/Base"\n')
    result = smart_agent(folder, "run-once")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "agent.timezone" in result.stderr
    assert "Mars/Base" in result.stderr


def test_a_stored_tree_too_deep_for_python_is_a_rule_error() -> None:
    # Only a hand-edited database holds one; it must not crash the matcher's start.
    data: dict[str, object] = {"term": "ענן", "key": "ענן"}
    for _ in range(5_000):
        data = {"not": data}
    with pytest.raises(RuleError, match="nested too deeply"):
        load_node(data)
