"""Who may do what in an organisation: members see it, editors change its rules, owners its members.

Non-members get 404, not 403, so an organisation's address does not tell a
stranger that it exists; admins are owners everywhere (``accounts.role_of``).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request

from agent import accounts, organisations
from agent.accounts import Organisation, Role, User
from agent.web.site import Site

#: The roles from least to most allowed: each may do what the ones before it may.
RANKS = (Role.VIEWER, Role.EDITOR, Role.OWNER)


@dataclass(frozen=True)
class Access:
    """A logged-in user in one organisation, with their role there."""

    org: Organisation
    user: User
    role: Role

    @property
    def may_edit(self) -> bool:
        """Whether the user may change the shared subscriptions."""
        return self.role.may_edit()

    @property
    def may_manage(self) -> bool:
        """Whether the user may add, change and remove members."""
        return self.role is Role.OWNER

    @property
    def actor(self) -> str:
        """Who the log says made a change."""
        return self.user.email

    @property
    def base(self) -> str:
        """The organisation's page."""
        return f"/orgs/{self.org.slug}"


def access(site: Site, request: Request, *, least: Role = Role.VIEWER) -> Access:
    """The visitor's role in the URL's organisation: 404 for strangers, 403 under ``least``."""
    user = site.user_of(request)
    if user is None:  # the handlers are behind login_required; this is for the type checker
        raise HTTPException(403, "Log in first.")
    slug = str(request.path_params["slug"])
    with site.session() as session:
        org = organisations.organisation_by_slug(session, slug)
        role = accounts.role_of(session, user, org.id) if org and org.id else None
    if org is None or role is None:
        raise HTTPException(404, "No such organisation.")
    if RANKS.index(role) < RANKS.index(least):
        raise HTTPException(403, "Your role in this organisation does not allow this.")
    return Access(org, user, role)
