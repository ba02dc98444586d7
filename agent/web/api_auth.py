"""Who may call an endpoint: a subscriber by their signed token, an admin by key or session.

* A subscriber's endpoints take the signed MANAGE token of their subscription
  (the last part of a manage link) as ``Authorization: Bearer <token>``: a
  forged token, one for another purpose or for a subscription that is gone is
  401; a genuine one past its expiry is 410.
* An admin's endpoints take an API key (``Authorization: Bearer sa_...``, made
  with ``smart-agent admin create-api-key``) or the admin's login session; with
  the session, a method that changes something also needs the session's CSRF
  token in the ``X-CSRF-Token`` header (a script on this site has it; another
  site's page cannot read it). Nobody: 401; a login that is not an admin: 403.
"""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request

from agent import accounts, subscriptions
from agent.links import LinkState, Purpose
from agent.links import parse as parse_token
from agent.models import Subscription
from agent.web.api_core import ApiError
from agent.web.security import CSRF_HEADER, csrf_valid
from agent.web.site import Site

#: Methods that change nothing: the session needs no CSRF header for them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Said with every 401, as RFC 6750 asks.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="smart-agent"'}


def bearer(request: Request) -> str | None:
    """The credential in ``Authorization: Bearer <it>``, if the request has one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def subscriber(site: Site, request: Request) -> Subscription:
    """The subscription whose MANAGE token the request carries; 401 or 410 otherwise."""
    given = bearer(request)
    if given is None:
        message = "send the subscription's manage token as 'Authorization: Bearer <token>'"
        raise ApiError(401, message, headers=CHALLENGE)
    token = parse_token(given)
    with site.session() as session:
        sub = subscriptions.by_public_id(session, token.public_id) if token else None
    state = site.links.check(token, sub, Purpose.MANAGE)
    if state is LinkState.EXPIRED:
        raise ApiError(410, "this manage token has expired: use the link in a newer message")
    if state is not LinkState.VALID or sub is None:
        raise ApiError(401, "the manage token is not valid", headers=CHALLENGE)
    return sub


def admin(site: Site, request: Request) -> str:
    """Who is calling as an admin (for the audit log); 401, 403 otherwise."""
    key = bearer(request)
    if key is not None:
        with Session(site.db) as session:
            valid = accounts.api_key_valid(session, key)
        if not valid:
            raise ApiError(401, "the API key is not valid (unknown or revoked)", headers=CHALLENGE)
        return "api key"
    user = site.user_of(request)
    if user is None:
        message = "log in as an admin, or send an API key as 'Authorization: Bearer sa_...'"
        raise ApiError(401, message, headers=CHALLENGE)
    if not user.is_admin:
        raise ApiError(403, "this is for admins")
    if request.method not in SAFE_METHODS and not csrf_valid(
        request, request.headers.get(CSRF_HEADER)
    ):
        raise ApiError(403, "send the session's CSRF token in the X-CSRF-Token header")
    return user.email
