"""E-mail through a real aiosmtpd server, and into the drop folder when there is none.

The pool, STARTTLS, implicit TLS and login run against aiosmtpd on loopback with a
certificate made for the test; refusals are the replies real servers give (RFC 5321
reply codes, RFC 3463 enhanced codes).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import socket
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from agent.errors import AddressRejected, DeliveryError, PermanentDeliveryError
from agent.links import Links, LinkState, Purpose, parse
from agent.models import Subscription, new_public_id, new_secret
from agent.rendering import BUILTIN_TEMPLATES, Renderer
from agent.sending import recipient_for
from notifiers import Notifiers
from notifiers.base import Message
from notifiers.email import EmailNotifier
from notifiers.smtp_replies import Stage, about_recipient
from tests.conftest import NOW
from tests.fakes.smtp import (
    Certificate,
    Mailbox,
    Security,
    self_signed,
    smtp_in_thread,
    smtp_running,
)
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
    raw = EmailNotifier().wire(Message(to="a@example.org", subject=subject, text="x"))
    wire = message_from_bytes(raw, policy=policy.default)
    assert str(wire["Subject"]) == subject


# --- The connection pool (issue #10): persistent connections, reused, reopened, closed.


async def test_the_pool_sends_many_messages_over_few_connections(smtp_server: Mailbox) -> None:
    email = notifier(smtp_server).model_copy(update={"pool_size": 3})
    messages = [
        Message(to=f"reader{n}@ngo.example", subject=f"הודעה {n}", text="x") for n in range(30)
    ]
    async with email:
        await asyncio.gather(*(email.send(m) for m in messages))
        for message in messages[:5]:
            await email.send(message)
    assert len(smtp_server.messages) == 35
    assert smtp_server.connections == 3, "one connection per slot, each opened once"
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes[:30]) == sorted(
        m.to for m in messages
    )


async def test_one_sender_at_a_time_reuses_one_connection(smtp_server: Mailbox) -> None:
    async with notifier(smtp_server) as email:
        for _ in range(5):
            await email.send(rendered())
    assert len(smtp_server.messages) == 5
    assert smtp_server.connections == 1


async def test_a_connection_the_server_closed_is_opened_again(smtp_server: Mailbox) -> None:
    async with notifier(smtp_server) as email:
        await email.send(rendered())
        smtp_server.drop_connections()  # as a server's idle timeout does
        await asyncio.sleep(0.05)
        await email.send(rendered("en", ENGLISH_TITLE))
    assert len(smtp_server.messages) == 2
    assert smtp_server.connections == 2


async def test_a_server_closing_with_421_is_opened_again(smtp_server: Mailbox) -> None:
    async with notifier(smtp_server) as email:
        await email.send(rendered())
        smtp_server.answers["MAIL"] = "421 4.4.2 smtp.test closing idle connection"
        # The reused connection answers 421 and closes; the message goes on a new one.
        await email.send(rendered("en", ENGLISH_TITLE))
    assert len(smtp_server.messages) == 2
    assert smtp_server.connections == 2


async def test_leaving_the_pool_says_quit_on_every_connection(smtp_server: Mailbox) -> None:
    email = notifier(smtp_server).model_copy(update={"pool_size": 2})
    async with email:
        await asyncio.gather(email.send(rendered()), email.send(rendered("ar", ARABIC_TITLE)))
        servers = list(smtp_server.servers)
    for _ in range(100):
        if all(server.transport is None for server in servers):
            break
        await asyncio.sleep(0.01)
    assert len(servers) == 2
    assert all(server.transport is None for server in servers), "the server saw both close"


async def test_a_refusal_keeps_the_pooled_connection(smtp_server: Mailbox) -> None:
    smtp_server.refuse.add("gone@ngo.example")
    async with notifier(smtp_server) as email:
        with pytest.raises(AddressRejected):
            await email.send(Message(to="gone@ngo.example", subject="s", text="x"))
        await email.send(rendered())
    assert len(smtp_server.messages) == 1
    assert smtp_server.connections == 1, "the envelope was reset, the connection kept"


def test_starttls_and_implicit_tls_cannot_both_be_set() -> None:
    with pytest.raises(ValidationError, match=r"starttls.*use_tls.*not both"):
        EmailNotifier(host="smtp.example.org", starttls=True, use_tls=True)


def test_the_pool_size_is_at_least_one() -> None:
    with pytest.raises(ValidationError, match="pool_size"):
        EmailNotifier(host="smtp.example.org", pool_size=0)


# --- STARTTLS, implicit TLS and login, over a real server with a self-signed certificate.


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, made once for this module."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    return self_signed(tmp_path_factory.mktemp("tls"))


def secure(mailbox: Mailbox, certificate: Certificate, **settings: object) -> EmailNotifier:
    return notifier(mailbox).model_copy(
        update={"ca_file": certificate.cert, "username": "alerts", **settings}
    )


PASSWORD = SecretStr("s3cret-of-the-test")


@pytest.mark.parametrize(
    ("security", "settings"),
    [
        pytest.param(Security.STARTTLS, {"starttls": True}, id="starttls"),
        pytest.param(Security.TLS, {"use_tls": True}, id="implicit-tls"),
    ],
)
async def test_messages_go_encrypted_after_a_login(
    certificate: Certificate, security: Security, settings: dict[str, object]
) -> None:
    login = ("alerts", PASSWORD.get_secret_value())
    async with smtp_running(security=security, certificate=certificate, login=login) as mailbox:
        email = secure(mailbox, certificate, password=PASSWORD, **settings)
        async with email:
            await email.send(rendered())
            await email.send(rendered("en", ENGLISH_TITLE))
        # Without the pool too: one connection for one message.
        await email.send(rendered("ar", ARABIC_TITLE))
    assert len(mailbox.messages) == 3
    assert mailbox.encrypted == [True, True, True]
    assert mailbox.logins == ["alerts", "alerts", "alerts"]
    assert mailbox.connections == 2


async def test_a_wrong_password_is_a_failure_to_retry_that_says_so(
    certificate: Certificate,
) -> None:
    login = ("alerts", PASSWORD.get_secret_value())
    async with smtp_running(
        security=Security.STARTTLS, certificate=certificate, login=login
    ) as mailbox:
        email = secure(mailbox, certificate, starttls=True, password=SecretStr("wrong"))
        async with email:
            with pytest.raises(DeliveryError, match="login refused") as caught:
                await email.send(rendered())
    assert caught.value.retryable
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert PASSWORD.get_secret_value() not in str(caught.value)
    assert mailbox.messages == []


async def test_a_server_that_requires_starttls_refuses_a_plain_sender(
    certificate: Certificate,
) -> None:
    async with (
        smtp_running(security=Security.STARTTLS, certificate=certificate) as mailbox,
        notifier(mailbox) as email,
    ):
        with pytest.raises(DeliveryError, match="refuses the sender") as caught:
            await email.send(rendered())
    assert caught.value.retryable, "a configuration problem: retried once it is fixed"
    assert mailbox.messages == []


async def test_an_untrusted_certificate_is_refused_unless_checks_are_off(
    certificate: Certificate,
) -> None:
    async with smtp_running(security=Security.TLS, certificate=certificate) as mailbox:
        untrusted = notifier(mailbox).model_copy(update={"use_tls": True})
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            await untrusted.send(rendered())
        assert caught.value.retryable
        unchecked = untrusted.model_copy(update={"validate_certs": False})
        await unchecked.send(rendered())
    assert len(mailbox.messages) == 1


# --- What a refusal means: the address (suppressed), the message (dead), or a retry.


@pytest.mark.parametrize(
    ("command", "reply", "expected"),
    [
        pytest.param("RCPT", "550 5.1.1 No such user", AddressRejected, id="rcpt-550"),
        pytest.param("RCPT", "553 mailbox name not allowed", AddressRejected, id="rcpt-553-bare"),
        pytest.param("RCPT", "450 4.2.1 Mailbox busy", DeliveryError, id="rcpt-450"),
        pytest.param("DATA", "550 5.1.1 Unknown recipient", AddressRejected, id="data-5.1.1"),
        pytest.param("DATA", "554 5.2.1 Mailbox disabled", AddressRejected, id="data-5.2.1"),
        pytest.param("DATA", "552 5.2.2 Mailbox full", DeliveryError, id="data-full"),
        pytest.param(
            "DATA", "554 5.7.1 Message rejected as spam", PermanentDeliveryError, id="data-policy"
        ),
        pytest.param("DATA", "550 Rejected", PermanentDeliveryError, id="data-bare-550"),
        pytest.param("DATA", "451 4.3.0 Try again later", DeliveryError, id="data-451"),
        pytest.param(
            "MAIL", "553 5.1.8 Sender domain does not exist", DeliveryError, id="mail-sender"
        ),
        pytest.param("MAIL", "451 4.7.1 Greylisted", DeliveryError, id="mail-greylisted"),
    ],
)
async def test_a_refusal_says_whether_the_address_the_message_or_nothing_is_at_fault(
    smtp_server: Mailbox, command: str, reply: str, expected: type[DeliveryError]
) -> None:
    smtp_server.answers[command] = reply
    async with notifier(smtp_server) as email:
        with pytest.raises(DeliveryError) as caught:
            await email.send(rendered())
    assert type(caught.value) is expected
    assert reply in str(caught.value), "the server's reply is the reason shown"
    assert "team@ngo.example" in str(caught.value)
    assert caught.value.retryable is (expected is DeliveryError)


@pytest.mark.parametrize(
    ("stage", "text", "expected"),
    [
        (Stage.RCPT, "anything at all", True),
        (Stage.DATA, "5.1.10 Recipient address has null MX", True),
        (Stage.DATA, "5.1.7 Bad sender's mailbox address syntax", False),
        (Stage.DATA, "5.6.0 Content refused", False),
        (Stage.MAIL, "5.1.1 Unknown", False),
    ],
)
def test_which_replies_are_about_the_recipient(stage: Stage, text: str, expected: bool) -> None:
    assert about_recipient(stage, text) is expected


# --- Headers and signed links that name one subscriber.

KEY = "a-signing-key-for-tests"


def subscription(name: str) -> Subscription:
    return Subscription(
        name=name,
        public_id=new_public_id(),
        link_secret=new_secret(),
        rule={},
        compiled={},
        feed_token=f"feed-{name}",
        language="he",
        addresses={"email": "team@ngo.example"},
    )


def mail_for(sub: Subscription, links: Links) -> Message:
    renderer = Renderer(BUILTIN_TEMPLATES, mail_domain="alerts.example.org")
    who = recipient_for(sub, "team@ngo.example", links)
    [out] = renderer.render("email", who, [alert()], now=NOW)
    return out.message


async def test_each_subscription_has_its_own_stable_list_id(smtp_server: Mailbox) -> None:
    links = Links("https://alerts.example.org", KEY, clock=lambda: NOW)
    first, second = subscription("first"), subscription("second")
    async with notifier(smtp_server) as email:
        for sub in (first, second, first):
            await email.send(mail_for(sub, links))
    ids = [str(m["List-Id"]) for m in smtp_server.messages]
    assert ids[0] == f"Smart Agent <{first.public_id}.alerts.example.org>"
    assert ids[2] == ids[0]
    assert ids[1] == f"Smart Agent <{second.public_id}.alerts.example.org>"


def test_a_sender_name_with_specials_or_hebrew_still_makes_a_list_id() -> None:
    message = Message(to="a@example.org", subject="s", text="x", list_id="abc.example.org")
    quoted = EmailNotifier(from_address='"Alerts, Inc." <a@example.org>').build(message)
    hebrew = EmailNotifier(from_address="סוכן חכם <a@example.org>").wire(message)
    assert quoted["List-Id"] == '"Alerts, Inc." <abc.example.org>'
    assert b"List-Id: =?utf-8?" in hebrew, "the name is encoded words"
    assert b"?= <abc.example.org>\r\n" in hebrew, "the id is outside them"
    wire = message_from_bytes(hebrew, policy=policy.default)
    assert str(wire["List-Id"]) == "סוכן חכם <abc.example.org>"
    assert str(wire["From"]) == "סוכן חכם <a@example.org>"


async def test_the_unsubscribe_and_manage_links_are_signed_for_one_subscriber_and_expire(
    smtp_server: Mailbox,
) -> None:
    clock = [NOW]
    links = Links("https://alerts.example.org", KEY, clock=lambda: clock[0])
    mine, other = subscription("mine"), subscription("other")
    async with notifier(smtp_server) as email:
        await email.send(mail_for(mine, links))
    [received] = smtp_server.messages
    unsubscribe = str(received["List-Unsubscribe"]).strip("<>")
    html = received.get_body(("html",))
    text = received.get_body(("plain",))
    assert html is not None
    assert text is not None
    [manage] = re.findall(r"https://alerts\.example\.org/manage/[^\s\"<]+", text.get_content())
    assert f'href="{manage}"' in html.get_content(), "the footer links the manage page"
    unsubscribe_token = parse(unsubscribe.rsplit("/", 1)[1])
    manage_token = parse(manage.rsplit("/", 1)[1])
    assert links.check(unsubscribe_token, mine, Purpose.UNSUBSCRIBE) is LinkState.VALID
    assert links.check(manage_token, mine, Purpose.MANAGE) is LinkState.VALID
    assert links.check(manage_token, mine, Purpose.UNSUBSCRIBE) is LinkState.INVALID
    assert links.check(unsubscribe_token, other, Purpose.UNSUBSCRIBE) is LinkState.INVALID
    assert links.check(manage_token, other, Purpose.MANAGE) is LinkState.INVALID
    clock[0] = NOW + timedelta(days=31)  # the manage link lives 30 days, unsubscribe 365
    assert links.check(manage_token, mine, Purpose.MANAGE) is LinkState.EXPIRED
    assert links.check(unsubscribe_token, mine, Purpose.UNSUBSCRIBE) is LinkState.VALID
    clock[0] = NOW + timedelta(days=367)
    assert links.check(unsubscribe_token, mine, Purpose.UNSUBSCRIBE) is LinkState.EXPIRED
