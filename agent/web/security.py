"""Sessions, CSRF and who is logged in.

The session is a signed cookie (Starlette's ``SessionMiddleware`` with
itsdangerous): HttpOnly, ``SameSite=Lax``, ``Secure`` whenever the public URL
is HTTPS, signed with a key derived from the service's signing key. It holds
the visitor's language, a CSRF token and, after a login, the user's id.

Every form carries the session's CSRF token (``csrf_field`` in templates) and
every handler reads a posted form through ``checked_form``, which refuses a
missing or wrong token with 403. The only POSTs without one are those a
session cannot exist for: RFC 8058 one-click unsubscribes from mail clients,
the Telegram webhook, and JSON API calls authorised by a token or an API key.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.accounts import User

#: The session cookie's name.
COOKIE = "sa_session"
#: A session lasts this long without a visit (seconds): an admin logs in again after it.
SESSION_AGE = 8 * 3600
#: The form field and the header (for scripts and the API) that carry the token.
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

Handler = Callable[[Request], Awaitable[Response]]


def session_middleware(key: bytes, *, https: bool) -> Middleware:
    """The session cookie, signed with ``key`` (``Links.subkey("session")``)."""
    secret = key.hex()
    return Middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=COOKIE,
        max_age=SESSION_AGE,
        same_site="lax",
        https_only=https,
    )


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_valid(request: Request, given: object) -> bool:
    """Whether ``given`` is this session's CSRF token."""
    expected = request.session.get(CSRF_FIELD)
    return (
        isinstance(given, str)
        and isinstance(expected, str)
        and hmac.compare_digest(given.encode(), expected.encode())
    )


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token (field or header) is checked; 403 otherwise."""
    form = await request.form()
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not csrf_valid(request, given):
        raise HTTPException(403, "The form has expired or did not come from this site.")
    return form


def log_in(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token: no fixation)."""
    language = request.session.get("lang")
    request.session.clear()
    if language:
        request.session["lang"] = language
    request.session["user_id"] = user.id
    csrf_token(request)


def log_out(request: Request) -> None:
    """End the session; the language stays."""
    language = request.session.get("lang")
    request.session.clear()
    if language:
        request.session["lang"] = language


def user_of(db: Engine) -> Callable[[Request], User | None]:
    """A function giving the logged-in user of a request (cached on the request)."""

    def find(request: Request) -> User | None:
        if "user" in request.scope.get("state", {}):
            cached: User | None = request.state.user
            return cached
        user_id = request.session.get("user_id") if "session" in request.scope else None
        user = None
        if isinstance(user_id, int):
            with Session(db, expire_on_commit=False) as session:
                user = session.get(User, user_id)
        request.state.user = user
        return user

    return find


def login_required(
    find_user: Callable[[Request], User | None], *, admin: bool = False
) -> Callable[[Handler], Handler]:
    """Send visitors without a login (or, with ``admin``, non-admins) to the login page."""

    def decorate(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            user = find_user(request)
            if user is None:
                target = request.url.path
                return RedirectResponse(f"/login?next={target}", status_code=303)
            if admin and not user.is_admin:
                raise HTTPException(403, "This page is for admins.")
            return await handler(request)

        guarded.__doc__ = handler.__doc__
        return guarded

    return decorate


def client_of(request: Request) -> str:
    """The visitor's IP address as the server saw it: a key for rate limits.

    uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 only (a local proxy), so
    a visitor cannot pick their own key.
    """
    return request.client.host if request.client else "unknown"


def safe_next(target: Any) -> str:
    """A redirect target after login: a local path only, never another site.

    Browsers read ``\\`` as ``/`` and drop tabs and line breaks, so
    ``/\\evil.example`` and ``/<tab>/evil.example`` would lead off the site.
    """
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(ch.isprintable() and not ch.isspace() for ch in target)
    ):
        return target
    return "/"


#: Sent with every answer. Signed links carry their token in the path, so no
#: page may leak its URL to another site (Referrer-Policy); pages may not be
#: framed by others; scripts and styles come only from this site (htmx's own
#: indicator style is inline, hence 'unsafe-inline' for styles only).
SECURITY_HEADERS = {
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
}


class SecurityHeaders:
    """ASGI middleware adding ``SECURITY_HEADERS`` to every HTTP answer that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers as the answer starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


#: No form of this site, and no webhook update, comes near this many bytes.
MAX_BODY_BYTES = 256 * 1024


class BodyLimit:
    """ASGI middleware: a request body over ``MAX_BODY_BYTES`` is refused with 413.

    Checked against ``Content-Length`` first, then counted as it arrives (a
    chunked body declares nothing), so no handler ever buffers more.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a body declared too long; count the rest as it is read."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await Response("Request body too large", 413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, "The request is too large.")
            return message

        await self.app(scope, counted, send)
