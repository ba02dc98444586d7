"""Subscribing without an account, shared by the subscribe page and the JSON API.

How a new subscription starts depends on how its channels prove their address
(``notifiers.base.Verification``), never on their names:

* a typed address (e-mail) must confirm (double opt-in): the subscription is
  saved inactive and awaiting confirmation, a confirmation message goes to the
  address in the subscriber's language, and nothing else is sent there until its
  link is used (``/confirm/<token>``). One confirmation per address every
  ``RESEND_AFTER`` at most; a failed send leaves the subscription waiting, and
  signing up again with the same rule and address sends it again;
* a chat that connects itself (a bot's deep link) is named in ``connect``: the
  subscription waits, inactive, until the chat says ``/start <token>``;
* a feed works at once.

What the subscriber is told never depends on whether the address had
subscriptions already, and a new subscription never takes an existing one's name.

Both limits are counted in the database (``agent.throttle``), so every web
process shares them and a restart forgets none: one confirmation per address
every ``RESEND_AFTER``, and ``PER_CLIENT`` sign-ups per client (IP address),
beyond which ``TooManySignUps`` says how long to wait. Nobody can make the
service mail-bomb a stranger through confirmations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from jinja2 import TemplateError
from sqlmodel import Session, col, select

import notifiers
from agent import i18n, subscriptions, throttle
from agent.errors import AgentError, DeliveryError
from agent.links import Links
from agent.links import parse as parse_token
from agent.models import Subscription
from agent.subscriptions import SubscriptionInput
from agent.web.site import Site
from notifiers.base import SelfConnecting, Verification

logger = logging.getLogger(__name__)

#: No second confirmation goes to the same address sooner than this.
RESEND_AFTER = timedelta(minutes=5)
#: At most this many sign-ups (page or API) from one client (IP address):
#: generous for an office behind one address, too few to flood strangers.
PER_CLIENT = throttle.Limit(20, timedelta(hours=1))
#: The notice (``templates/<channel>/confirm/``) that asks an address to confirm.
CONFIRM_NOTICE = "confirm"


class NextStep(StrEnum):
    """What the new subscriber does next."""

    #: A confirmation message went to the address; its link turns the subscription on.
    CONFIRM = "confirm"
    #: Open the bot's deep link (private chat or group) to connect a chat.
    CONNECT = "connect"
    #: Nothing: it works now (a feed).
    READY = "ready"


@dataclass(frozen=True)
class SignUp:
    """A subscription made on the web, and what its subscriber does next."""

    subscription: Subscription
    next_step: NextStep
    #: Links to show: ``manage``, ``atom``, ``rss``, ``ics``, ``telegram_private``,
    #: ``telegram_group`` (those that apply).
    links: dict[str, str] = field(default_factory=dict)
    #: With ``CONFIRM``: whether a confirmation went out now; ``False`` when one
    #: went to the address less than ``RESEND_AFTER`` ago and no other was sent.
    sent: bool = True


class ConfirmationNotSent(AgentError):
    """The confirmation could not be sent; the subscription is saved and waits for it."""

    retryable = True


class TooManySignUps(AgentError):
    """The client made ``PER_CLIENT`` sign-ups already; nothing was saved."""

    retryable = True

    def __init__(self, wait: timedelta) -> None:
        super().__init__("too many subscriptions from this client; try again later")
        #: How long until the client may sign up again.
        self.wait = wait


#: One confirmation per (channel, address) within ``RESEND_AFTER``.
_RESEND = throttle.Limit(1, RESEND_AFTER)


async def sign_up(
    site: Site,
    given: SubscriptionInput,
    *,
    connect: Sequence[str] = (),
    client: str | None = None,
) -> SignUp:
    """Save ``given`` (awaiting confirmation where its address must confirm) and start it.

    ``connect`` names channels whose chat connects itself later (a bot's deep
    link); they have no address yet, so they are not in ``given.channels``.
    ``client`` (the visitor's IP address) is held to ``PER_CLIENT``: over it,
    ``TooManySignUps`` and nothing is saved. Raises ``AgentError`` with a
    message for the subscriber when a channel is not configured or the
    confirmation cannot be sent (``ConfirmationNotSent``: the subscription then
    stays awaiting confirmation; nothing is lost).
    """
    confirming = _check(site, given, connect)
    if client is not None:
        _count_client(site, client)
    if confirming is not None:
        return await _by_message(site, given, confirming)
    with site.session() as session:
        named = given.model_copy(update={"name": subscriptions.unique_name(session, given.name)})
        sub = subscriptions.save(session, named, now=site.now(), confirmed=not connect)
        session.commit()
    if connect:
        # No manage link yet: connecting confirms, which renews every link of the subscription.
        return SignUp(sub, NextStep.CONNECT, connect_links(site, sub, connect))
    return SignUp(sub, NextStep.READY, ready_links(site.links, sub))


def _count_client(site: Site, client: str) -> None:
    """Count a sign-up from ``client``, or raise ``TooManySignUps`` if it has had its share."""
    now, scope = site.now(), throttle.Scope.SUBSCRIBE_CLIENT
    with site.session() as session:
        if throttle.claim(session, PER_CLIENT, scope, client, now) is not None:
            return
        wait = throttle.retry_after(session, PER_CLIENT, scope, client, now)
    raise TooManySignUps(wait or PER_CLIENT.window)


def ready_links(links: Links, sub: Subscription) -> dict[str, str]:
    """The links of a working subscription: manage it, and its three feeds."""
    return {
        "manage": links.manage_url(sub),
        "atom": links.feed_url(sub),
        "rss": links.rss_url(sub),
        "ics": links.calendar_url(sub),
    }


def connect_links(site: Site, sub: Subscription, channels: Sequence[str]) -> dict[str, str]:
    """Each self-connecting channel's links for ``sub``: ``<channel>_<kind of chat>``."""
    token = site.links.telegram_start(sub)
    found: dict[str, str] = {}
    for name in channels:
        notifier = site.agent.notifiers.get(name)
        if isinstance(notifier, SelfConnecting):
            found |= {f"{name}_{kind}": url for kind, url in notifier.connect_links(token).items()}
    return found


def _check(site: Site, given: SubscriptionInput, connect: Sequence[str]) -> str | None:
    """Refuse channels that are not open or cannot be used so; the one that must confirm."""
    available = site.agent.notifiers
    subscriptions.check_channels(given, available)
    for name in connect:
        if name not in available:
            how = notifiers.channel(name).how_to_enable
            raise AgentError(f"the {name} channel is not configured; to use it, {how}")
        if notifiers.channel(name).verification is not Verification.CONNECT:
            raise AgentError(f"the {name} channel does not connect itself: give its address")
    for name in given.channels:
        # A typed chat id proves nothing: anyone could point alerts at any chat.
        if notifiers.channel(name).verification is Verification.CONNECT:
            raise AgentError(
                f"the {name} channel connects itself through the bot's link: "
                "ask to connect it instead of giving its address"
            )
    confirming = [
        name
        for name in given.channels
        if notifiers.channel(name).verification is Verification.MESSAGE
    ]
    if len(confirming) > 1:
        # One link confirms the whole subscription: it must not vouch for a second address.
        raise AgentError(f"give one address that must confirm, not {len(confirming)}")
    return confirming[0] if confirming else None


async def _by_message(site: Site, given: SubscriptionInput, channel: str) -> SignUp:
    """Save ``given`` awaiting confirmation and send the confirmation (unless sent just now)."""
    address, now = given.addresses[channel], site.now()
    with site.session() as session:
        waiting = _waiting(session, channel, address, given)
        name = waiting.name if waiting else subscriptions.unique_name(session, given.name)
        sub = subscriptions.save(
            session, given.model_copy(update={"name": name}), now=now, confirmed=False
        )
        session.commit()
        # Claimed before sending, so a burst of sign-ups sends one message, not many.
        key, scope = f"{channel}:{address.casefold()}", throttle.Scope.CONFIRMATION_ADDRESS
        claimed = throttle.claim(session, _RESEND, scope, key, now)
    if claimed is None:
        return SignUp(sub, NextStep.CONFIRM, sent=False)
    try:
        await _send_confirmation(site, sub, channel, address)
    except ConfirmationNotSent:
        # Nothing reached the address: signing up again may send it at once.
        with site.session() as session:
            session.delete(claimed)
            session.commit()
        raise
    return SignUp(sub, NextStep.CONFIRM)


def _waiting(
    session: Session, channel: str, address: str, given: SubscriptionInput
) -> Subscription | None:
    """A subscription still awaiting this address's confirmation, with the same rule."""
    rule = given.rule.model_dump(mode="json", exclude_defaults=True)
    query = select(Subscription).where(
        col(Subscription.awaiting_confirmation).is_(True),
        col(Subscription.organisation_id).is_(None),
        col(Subscription.addresses)[channel].as_string() == address,
    )
    return next((sub for sub in session.exec(query) if sub.rule == rule), None)


async def _send_confirmation(site: Site, sub: Subscription, channel: str, address: str) -> None:
    """Render the confirmation in the subscriber's language and send it to ``address``."""
    language = i18n.language_of(sub.language)
    link = site.links.confirm_url(sub)
    token = parse_token(link.rsplit("/", 1)[-1])
    expires = datetime.fromtimestamp(token.expires if token else 0, UTC)
    values = {
        "subscription": sub.name,
        "query": str(sub.rule.get("query", "")),
        # The page it opens speaks the language the subscriber chose, whatever the browser's.
        "confirm_url": f"{link}?lang={language}",
        "expires_on": i18n.format_day(expires, language, site.renderer.zone),
    }
    try:
        message = site.renderer.render_notice(
            channel, CONFIRM_NOTICE, to=address, language=language, values=values
        )
        await site.agent.notifiers[channel].send(message)
    except (DeliveryError, TemplateError) as exc:
        logger.warning("confirmation of subscription %s not sent: %s", sub.public_id, exc)
        raise ConfirmationNotSent(
            "the confirmation could not be sent just now; the subscription is saved and "
            "waits for it: sign up again with the same address to send it again"
        ) from exc
