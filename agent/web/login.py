"""Logging in and out: admins and the members of organisations.

* ``GET /login`` -- the form (``?next=`` a local page to go to afterwards);
* ``POST /login`` -- e-mail and password (CSRF-checked); a fresh session on
  success, then ``next`` or the user's home: ``/admin`` for admins, ``/orgs``
  for everyone else. A wrong password and an unknown address get the same
  answer, in the same time (``accounts.authenticate`` hashes either way);
* ``POST /logout`` -- ends the session, back to the login page.

Guessing is slowed by a lockout: after 5 failed logins for one address, or 20
from one client, within 15 minutes, further attempts for it are refused (429,
even with the right password) until the oldest of those failures is 15 minutes
old. The failures are counted in the database (``agent.throttle``), so every
web process shares them and a restart forgets none; a successful login clears
its address's.
"""

from __future__ import annotations

import math
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent import accounts, i18n, throttle
from agent.accounts import User
from agent.throttle import Limit, Scope
from agent.web.pages import language_of
from agent.web.security import checked_form, client_of, log_in, log_out, safe_next
from agent.web.site import Site, flash, redirect

#: Failures are counted over this long, and a lockout lasts until they age out of it.
WINDOW = timedelta(minutes=15)
#: Failed logins for one e-mail address within ``WINDOW`` before it is locked.
PER_ADDRESS = 5
#: Failed logins from one client (IP address) within ``WINDOW`` before it is locked.
PER_CLIENT = 20

#: The lockout's limit for each kind of key.
LIMITS = {
    Scope.LOGIN_ADDRESS: Limit(PER_ADDRESS, WINDOW),
    Scope.LOGIN_CLIENT: Limit(PER_CLIENT, WINDOW),
}


def _wait(site: Site, keys: dict[Scope, str]) -> timedelta | None:
    """How long until a login for these keys may be tried; ``None`` if it may now."""
    now = site.now()
    with site.session() as session:
        waits = [throttle.retry_after(session, LIMITS[s], s, key, now) for s, key in keys.items()]
    found = [wait for wait in waits if wait is not None]
    return max(found) if found else None


def routes(site: Site) -> list[BaseRoute]:
    """This area's routes."""

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
        keys = {Scope.LOGIN_ADDRESS: email.lower(), Scope.LOGIN_CLIENT: client_of(request)}
        wait = _wait(site, keys)
        if wait is not None:
            return _locked(site, request, wait, wanted=wanted, email=email)
        with site.session() as session:
            user = accounts.authenticate(session, email, password, now=now)
            if user is None:
                for scope, key in keys.items():
                    throttle.hit(session, scope, key, now)
            else:
                throttle.forget(session, Scope.LOGIN_ADDRESS, keys[Scope.LOGIN_ADDRESS])
            session.commit()
        if user is None:
            return _form(site, request, wanted=wanted, email=email, error="wrong", status=400)
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
