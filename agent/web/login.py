"""Logging in and out: admins and the members of organisations.

* ``GET /login`` -- the form (``?next=`` a local page to go to afterwards);
* ``POST /login`` -- e-mail and password (CSRF-checked); a fresh session on
  success, then ``next`` or the user's home: ``/admin`` for admins, ``/orgs``
  for everyone else. A wrong password and an unknown address get the same
  answer, in the same time (``accounts.authenticate`` hashes either way);
* ``POST /logout`` -- ends the session, back to the login page.

Guessing is slowed by a lockout (``Throttle``): after 5 failed logins for one
address, or 20 from one client, within 15 minutes, further attempts for it are
refused (429, even with the right password) until the oldest of those failures
is 15 minutes old. The counts live in the process: a restart forgets them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import accounts, i18n
from agent.accounts import User
from agent.web.pages import language_of
from agent.web.security import checked_form, log_in, log_out, safe_next
from agent.web.site import Site, flash, redirect

#: Failures are counted over this long, and a lockout lasts until they age out of it.
WINDOW = timedelta(minutes=15)
#: Failed logins for one e-mail address within ``WINDOW`` before it is locked.
PER_ADDRESS = 5
#: Failed logins from one client (IP address) within ``WINDOW`` before it is locked.
PER_CLIENT = 20
#: Above this many tracked keys, old ones are dropped (bounded memory under a flood).
MAX_KEYS = 10_000


@dataclass
class Throttle:
    """Counts failed logins by key and says how long a locked key must wait."""

    window: timedelta = WINDOW
    failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def wait(self, limits: dict[str, int], now: datetime) -> timedelta | None:
        """How long until a login for these keys may be tried; ``None`` if it may now."""
        waits = []
        for key, limit in limits.items():
            recent = self._recent(key, now)
            if len(recent) >= limit:
                # Allowed again once enough of the failures leave the window.
                waits.append(recent[len(recent) - limit] + self.window - now)
        return max(waits) if waits else None

    def failed(self, keys: list[str], now: datetime) -> None:
        """Count one failed login against each key."""
        if len(self.failures) > MAX_KEYS:
            for key in list(self.failures):
                if not self._recent(key, now):
                    del self.failures[key]
        for key in keys:
            self.failures.setdefault(key, deque()).append(now)

    def forget(self, key: str) -> None:
        """Clear a key's failures (its owner logged in)."""
        self.failures.pop(key, None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        found = self.failures.get(key, deque())
        while found and found[0] <= now - self.window:
            found.popleft()
        return found


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""
    throttle = Throttle()

    async def show(request: Request) -> Response:
        user = site.user_of(request)
        wanted = request.query_params.get("next", "")
        if user is not None:
            return redirect(after_login(user, wanted))
        return _form(site, request, wanted=wanted)

    async def submit(request: Request) -> Response:
        form = await checked_form(request)
        email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
        wanted = str(form.get("next", ""))
        if not email or not password:
            return _form(site, request, wanted=wanted, email=email, error="missing", status=400)
        now = site.now()
        keys = {f"address:{email.lower()}": PER_ADDRESS, f"client:{_client(request)}": PER_CLIENT}
        wait = throttle.wait(keys, now)
        if wait is not None:
            return _locked(site, request, wait, wanted=wanted, email=email)
        with site.session() as session:
            user = accounts.authenticate(session, email, password, now=now)
            session.commit()
        if user is None:
            throttle.failed(list(keys), now)
            return _form(site, request, wanted=wanted, email=email, error="wrong", status=400)
        throttle.forget(f"address:{email.lower()}")
        log_in(request, user)
        return redirect(after_login(user, wanted))

    async def logout(request: Request) -> Response:
        await checked_form(request)
        log_out(request)
        flash(request, "logged_out")
        return redirect("/login")

    return [
        Route("/login", show, methods=["GET"]),
        Route("/login", submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def after_login(user: User, wanted: str) -> str:
    """Where a user goes after logging in: the page asked for, else their home."""
    target = local_path(wanted)
    if target and target != "/":
        return target
    return "/admin" if user.is_admin else "/orgs"


def local_path(wanted: str) -> str:
    """``wanted`` if it is a path on this site, else ``""`` (``safe_next`` decides)."""
    return wanted if wanted and safe_next(wanted) == wanted else ""


def _client(request: Request) -> str:
    # uvicorn puts the real client here (behind a local proxy: X-Forwarded-For, which
    # it trusts from 127.0.0.1 only), so a visitor cannot pick their own key.
    return request.client.host if request.client else "unknown"


def _locked(site: Site, request: Request, wait: timedelta, *, wanted: str, email: str) -> Response:
    """429: the login page saying how many minutes to wait."""
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    language = language_of(request)
    message = i18n.plural(site.pages.strings[language]["login"]["locked"], minutes, language)
    return _form(
        site,
        request,
        wanted=wanted,
        email=email,
        error="locked",
        locked=message,
        status=429,
        headers={"Retry-After": str(math.ceil(wait.total_seconds()))},
    )


def _form(
    site: Site,
    request: Request,
    *,
    wanted: str,
    email: str = "",
    error: str | None = None,
    locked: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """The login page, with what was typed (never the password) and an error, if any."""
    context = {"next": local_path(wanted), "email": email, "error": error, "locked": locked}
    return site.pages.render(request, "login/login.html", context, status=status, headers=headers)
