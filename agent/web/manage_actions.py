"""What a subscriber can do to one subscription from the manage pages.

Each action is a POST with the session's CSRF token, behind a manage link
checked again on every request, on a subscription of that link's subscriber
(anyone else's is simply not found). Each ends with a redirect to the manage
page, which says what was done; a refused edit shows its form again with the
errors in place. Changing or adding an e-mail address or a Telegram chat is
not here: a new address must confirm first (subscribe again with it).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import Response

from agent import accounts, organisations, outbox, subscriptions
from agent.accounts import AuditAction
from agent.models import Subscription
from agent.schedule import Cadence
from agent.subscriptions import MAX_NAME_LENGTH, SubscriptionInput
from agent.web.forms import read_rule
from agent.web.manage_access import addresses_of, manage_path
from agent.web.manage_pages import GOODBYE_KEY, Notice, Visit, settings
from agent.web.manage_views import channel_choices
from agent.web.site import redirect

#: Who the log says made a change through a signed link.
SUBSCRIBER = "subscriber (signed link)"


class Action(StrEnum):
    """The changes a subscriber can make to one subscription (the last part of its URL)."""

    EDIT = "edit"
    PAUSE = "pause"
    RESUME = "resume"
    CADENCE = "cadence"
    CHANNELS = "channels"
    LANGUAGE = "language"
    DELETE = "delete"


class NameProblem(StrEnum):
    """Why a name cannot be used (``t.manage.name_problem.<it>``)."""

    EMPTY = "empty"
    LONG = "long"
    CONTROL = "control"


Handler = Callable[[Visit, Subscription, FormData], Response]


def act(visit: Visit, action: Action, sub: Subscription, form: FormData) -> Response:
    """Do ``action`` to ``sub`` (one of the visitor's) as ``form`` asks."""
    handlers: dict[Action, Handler] = {
        Action.EDIT: _edit,
        Action.PAUSE: _pause,
        Action.RESUME: _resume,
        Action.CADENCE: _cadence,
        Action.CHANNELS: _channels,
        Action.LANGUAGE: _language,
        Action.DELETE: _delete,
    }
    organisation, sub_id, name = sub.organisation_id, sub.id, sub.name
    before = organisations.snapshot(sub)
    response = handlers[action](visit, sub, form)
    if organisation is not None and response.status_code == 303:
        after = None if action is Action.DELETE else organisations.snapshot(sub)
        if after != before:
            _log(visit, organisation, sub_id, name, _AUDITED[action], before, after)
    return response


def leave_all(visit: Visit) -> Response:
    """Delete every subscription of the subscriber; say goodbye."""
    for sub in visit.subscriber.subscriptions:
        if sub.organisation_id is not None:
            before = organisations.snapshot(sub)
            _log(visit, sub.organisation_id, sub.id, sub.name, AuditAction.DELETED, before, None)
        subscriptions.delete(visit.session, sub)
    visit.session.commit()
    visit.request.session[GOODBYE_KEY] = visit.language
    return redirect("/manage/goodbye")


def name_problem(name: str) -> NameProblem | None:
    """What is wrong with ``name`` as a subscription's name, if anything."""
    if not name:
        return NameProblem.EMPTY
    if len(name) > MAX_NAME_LENGTH:
        return NameProblem.LONG
    # Names go into subjects and headers: no control characters (nor line breaks).
    if any(unicodedata.category(char) == "Cc" for char in name):
        return NameProblem.CONTROL
    return None


def _edit(visit: Visit, sub: Subscription, form: FormData) -> Response:
    rule = read_rule(form)
    name = str(form.get("name") or "").strip()
    errors = {}
    if (problem := name_problem(name)) is not None:
        errors["name"] = str(visit.strings["manage"]["name_problem"][problem.value])
    if errors or not rule.ok:
        return settings(visit, sub, rule=rule, name=name, errors=errors, status=400)
    if " ".join(name.split()) != sub.name:
        sub.name = subscriptions.unique_name(visit.session, name)
        visit.session.add(sub)
        visit.session.flush()
    _save(visit, sub, rule=rule.spec.model_dump())
    return visit.back(Notice.SAVED, sub.name)


def _pause(visit: Visit, sub: Subscription, form: FormData) -> Response:
    # Paused alerts wait in the outbox (rows of an inactive subscription are never
    # claimed): nothing is cancelled, and resuming sends them.
    subscriptions.set_active(visit.session, sub, False, now=visit.site.now())
    visit.session.commit()
    return visit.back(Notice.PAUSED, sub.name)


def _resume(visit: Visit, sub: Subscription, form: FormData) -> Response:
    if sub.awaiting_confirmation:
        # Only the link in the confirmation message turns such a subscription on.
        raise HTTPException(409, str(visit.strings["manage"]["awaiting_hint"]))
    subscriptions.set_active(visit.session, sub, True, now=visit.site.now())
    visit.session.commit()
    return visit.back(Notice.RESUMED, sub.name)


def _cadence(visit: Visit, sub: Subscription, form: FormData) -> Response:
    chosen = str(form.get("cadence") or "")
    if chosen not in set(Cadence):
        raise HTTPException(400, "Choose how often: immediate, daily or weekly.")
    # One cadence for every channel: what the page offers, so what it shows is true.
    _save(visit, sub, cadence=chosen, cadences={})
    return visit.back(Notice.SAVED, sub.name)


def _language(visit: Visit, sub: Subscription, form: FormData) -> Response:
    chosen = str(form.get("language") or "")
    if chosen not in subscriptions.LANGUAGES:
        raise HTTPException(400, "Choose a language: he, ar or en.")
    _save(visit, sub, language=chosen)
    return visit.back(Notice.SAVED, sub.name)


def _channels(visit: Visit, sub: Subscription, form: FormData) -> Response:
    choices = {
        c.name: c for c in channel_choices(sub, visit.subscriber, visit.site.agent.notifiers)
    }
    chosen = [str(name) for name in form.getlist("channels")]
    if any(name not in choices for name in chosen):
        raise HTTPException(400, "A channel that needs a new address cannot be added here.")
    if not chosen:
        error = str(visit.strings["manage"]["channels_none"])
        return settings(visit, sub, errors={"channels": error}, status=400)
    left = [name for name in sub.channels if name not in chosen]
    addresses = {name: choices[name].address for name in chosen if choices[name].address}
    cadences = {k: v for k, v in (sub.cadences or {}).items() if k in chosen}
    before = addresses_of(sub)
    if sub.id is not None:
        for name in left:
            outbox.cancel_channel(visit.session, sub.id, name, reason="channel removed")
    _save(visit, sub, channels=chosen, addresses=addresses, cadences=cadences)
    return visit.back(Notice.SAVED, sub.name, to=_moved(visit, sub, before))


def _delete(visit: Visit, sub: Subscription, form: FormData) -> Response:
    left = visit.subscriber.others(sub)
    name = sub.name
    subscriptions.delete(visit.session, sub)
    visit.session.commit()
    if not left:
        visit.request.session[GOODBYE_KEY] = visit.language
        return redirect("/manage/goodbye")
    # This link was signed for the deleted subscription and dies with it: go on
    # with a fresh link of one that is left.
    to = manage_path(visit.site, left[0]) if sub.id == visit.subscriber.own.id else None
    return visit.back(Notice.DELETED, name, to=to)


def _moved(visit: Visit, sub: Subscription, before: set[tuple[str, str]]) -> str | None:
    """Where the manage page goes on once the link's own subscription left its address.

    The link finds the others by that address: go on with a fresh link of one
    still sent there, or (none left) stay with this one.
    """
    if sub.id != visit.subscriber.own.id or before <= addresses_of(sub):
        return None
    still = [other for other in visit.subscriber.others(sub) if addresses_of(other) & before]
    return manage_path(visit.site, still[0]) if still else None


def _save(visit: Visit, sub: Subscription, **changes: Any) -> None:
    """Save ``sub`` with some fields changed, keeping whether it is on, paused or waiting."""
    given = SubscriptionInput.model_validate(
        {**subscriptions.to_input(sub).model_dump(), **changes}
    )
    subscriptions.save(visit.session, given, now=visit.site.now(), confirmed=False)
    visit.session.commit()


#: What each action is in an organisation's log.
_AUDITED = {
    Action.EDIT: AuditAction.EDITED,
    Action.PAUSE: AuditAction.PAUSED,
    Action.RESUME: AuditAction.RESUMED,
    Action.CADENCE: AuditAction.EDITED,
    Action.CHANNELS: AuditAction.EDITED,
    Action.LANGUAGE: AuditAction.EDITED,
    Action.DELETE: AuditAction.DELETED,
}


def _log(
    visit: Visit,
    organisation: int,
    sub_id: int | None,
    name: str,
    action: AuditAction,
    before: dict[str, Any],
    after: dict[str, Any] | None,
) -> None:
    """Log a change to a shared subscription made through a signed link."""
    # No login here: the actor is whoever holds the link sent to the team's address.
    accounts.record(
        visit.session,
        actor=SUBSCRIBER,
        action=action,
        now=visit.site.now(),
        organisation_id=organisation,
        subscription_id=sub_id,
        subject=name,
        before=before,
        after=after,
    )
    visit.session.commit()
