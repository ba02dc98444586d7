"""E-mail through a real aiosmtpd server, and into the drop folder when there is none."""

from __future__ import annotations

import asyncio
import logging
import socket
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import DeliveryError, PermanentDeliveryError
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from notifiers import Notifiers
from notifiers.base import Message
from notifiers.email import EmailNotifier, serialise
from tests.conftest import NOW
from tests.fakes.smtp import Mailbox, smtp_in_thread
from tests.samples import ARABIC_TITLE, ENGLISH_TITLE, HEBREW_TITLE, alert, item, recipient

TITLES = [
    pytest.param("he", HEBREW_TITLE, id="hebrew"),
    pytest.param("ar", ARABIC_TITLE, id="arabic"),
    pytest.param("en", ENGLISH_TITLE, id="english"),
]


def rendered(language: str = "he", title: str = HEBREW_TITLE) -> Message:
    renderer = Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")
    [out] = renderer.render("email", recipient(language), [alert(subject=item(title))], now=NOW)
    return out.message


def notifier(mailbox: Mailbox) -> EmailNotifier:
    return EmailNotifier(
        host=mailbox.host, port=mailbox.port, from_address="Smart Agent <alerts@example.org>"
    )


@pytest.mark.parametrize(("language", "title"), TITLES)
async def test_an_alert_arrives_as_multipart_text_then_html(
    smtp_server: Mailbox, language: str, title: str
) -> None:
    message = rendered(language, title)
    async with notifier(smtp_server) as email:
        receipt = await email.send(message)
    [received] = smtp_server.messages
    assert receipt == message.message_id
    assert received["Message-ID"] == message.message_id
    assert received["To"] == "team@ngo.example"
    assert received["From"] == "Smart Agent <alerts@example.org>"
    assert title in str(received["Subject"])
    assert received["Date"]
    assert received.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in received.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = received.get_body(("plain",))
    html = received.get_body(("html",))
    assert text is not None
    assert html is not None
    assert title in text.get_content()
    assert f'lang="{language}"' in html.get_content()
    assert smtp_server.envelopes[0].rcpt_tos == ["team@ngo.example"]


async def test_unsubscribe_and_auto_submitted_headers_reach_the_mailbox(
    smtp_server: Mailbox,
) -> None:
    async with notifier(smtp_server) as email:
        await email.send(rendered())
    [received] = smtp_server.messages
    assert received["List-Unsubscribe"] == "<https://alerts.example.org/unsubscribe/7.abc>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["Content-Language"] == "he"


async def test_the_hebrew_subject_is_encoded_on_the_wire_and_decodes_back(
    smtp_server: Mailbox,
) -> None:
    message = rendered()
    async with notifier(smtp_server) as email:
        await email.send(message)
    raw = smtp_server.envelopes[0].original_content or b""
    assert raw.isascii(), "headers and bodies are encoded for 7-bit transport"
    assert b"=?utf-8?" in raw.lower()
    assert str(smtp_server.messages[0]["Subject"]) == message.subject


async def test_a_refused_recipient_is_a_permanent_failure(smtp_server: Mailbox) -> None:
    smtp_server.refuse.add("team@ngo.example")
    async with notifier(smtp_server) as email:
        with pytest.raises(PermanentDeliveryError, match=r"team@ngo\.example"):
            await email.send(rendered())
    assert smtp_server.messages == []


async def test_an_unreachable_server_is_a_failure_to_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    email = EmailNotifier(host="127.0.0.1", port=port, timeout=5)
    with pytest.raises(DeliveryError) as caught:
        await email.send(rendered())
    assert caught.value.retryable


async def test_without_a_server_each_message_is_written_to_the_drop_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    message = rendered()
    email = EmailNotifier(drop_dir=tmp_path / "mail")
    with caplog.at_level(logging.INFO, logger="notifiers.email"):
        receipt = await email.send(message)
    [path] = (tmp_path / "mail").iterdir()
    assert path.name.startswith("sa-")
    assert path.suffix == ".eml"
    assert "/" not in path.stem
    assert "<" not in path.name
    assert receipt == message.message_id
    written = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert written["Message-ID"] == message.message_id
    assert written["Subject"] == message.subject
    assert f"wrote {path} (no SMTP server configured)" in caplog.text


async def test_a_message_without_an_id_gets_one_in_the_senders_domain(
    smtp_server: Mailbox,
) -> None:
    plain = Message(to="ops@example.org", subject="בדיקה", text="שלום עולם")
    async with notifier(smtp_server) as email:
        receipt = await email.send(plain)
    [received] = smtp_server.messages
    assert receipt == received["Message-ID"]
    assert str(receipt).endswith("@example.org>")
    assert received.get_content_type() == "text/plain"
    assert received.get_content().strip() == "שלום עולם"


def test_the_threaded_server_receives_from_synchronous_code() -> None:
    with smtp_in_thread() as mailbox:
        asyncio.run(notifier(mailbox).send(rendered("en", ENGLISH_TITLE)))
        assert [str(m["Subject"]) for m in mailbox.messages] == [
            rendered("en", ENGLISH_TITLE).subject
        ]


def test_the_default_channels_need_no_configuration() -> None:
    channels = Notifiers()
    assert set(channels.enabled()) == {"email", "rss"}
    assert channels.email.host is None


LONG_SUBJECTS = [
    pytest.param(
        "מכרז לשירותי ליווי וייעוץ הנדסי בתחום מערכות סולאריות עבור משרד האנרגיה "
        "והתשתיות הלאומיות ורשות החשמל בישראל",
        id="hebrew",
    ),
    pytest.param(
        "مناقصة لخدمات المرافقة والاستشارات الهندسية في مجال الأنظمة الشمسية لوزارة "
        "الطاقة والبنى التحتية الوطنية",
        id="arabic",
    ),
    pytest.param(
        "Tender for engineering consulting and support services for solar systems at the "
        "Ministry of Energy and National Infrastructure",
        id="english",
    ),
    pytest.param('\u2068שירותי ליווי\u2069 (\u2068ע"ר 580000000\u2069) ' * 6, id="isolates"),
]


@pytest.mark.parametrize("subject", LONG_SUBJECTS)
async def test_a_long_subject_is_folded_without_losing_a_space(
    smtp_server: Mailbox, subject: str
) -> None:
    message = Message(to="team@ngo.example", subject=subject, text="x")
    await notifier(smtp_server).send(message)
    [envelope] = smtp_server.envelopes
    raw = bytes(envelope.original_content or b"")
    wire = message_from_bytes(raw, policy=policy.default)
    assert str(wire["Subject"]) == " ".join(subject.split())
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    words=st.lists(
        st.text(
            alphabet="אבגדהוזחטיכלמנסעפצקרשתابتثجحخدذرسشصضطظعغفقكلمنهويab1-",
            min_size=1,
            max_size=25,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_subject_decodes_back_to_its_words(words: list[str]) -> None:
    subject = " ".join(words)
    email = EmailNotifier().build(Message(to="a@example.org", subject=subject, text="x"))
    wire = message_from_bytes(serialise(email), policy=policy.default)
    assert str(wire["Subject"]) == subject
