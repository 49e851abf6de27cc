"""Who is looking at the dashboard: a token from the login cookie or a bearer header.

Every page needs a principal. A browser logs in once (``POST /login`` with an API
token); the dashboard keeps the token in an ``HttpOnly``, ``SameSite=Strict`` cookie
and checks it on every request against the project's token table, the way the model
server checks bearer tokens (:class:`~shipyard.serving.auth.BearerTokens`: one lookup per
token per ``ttl``, so a revoked token is refused within a second). A script sends
``Authorization: Bearer <token>`` instead.

Without a token, a page is refused, except on a **local viewer** dashboard: the CLI
passes a ``local_viewer`` principal only when the project lets the operating-system
user act without a token (a local SQLite project) *and* the dashboard listens on a
loopback address. That visitor may read (the viewer role), never act: an action still
needs a logged-in token whose role allows it. The app then also refuses requests whose
``Host`` is not a loopback name, so a web page elsewhere cannot reach it through DNS
rebinding.

Forms that change state carry a CSRF value: an HMAC, under a key made when the app
starts, of the SHA-256 of the visitor's credential. A cross-site form cannot know it,
and it is worthless once the token changes. Requests authenticated by a bearer header
need none (a browser never adds that header by itself).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.access import ROLES, Grant, Permission, Principal, Scope
from shipyard.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from starlette.requests import Request

    from shipyard.serving.auth import BearerTokens

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "DashboardAuth",
    "Visitor",
    "local_viewer",
    "wants_json",
]

COOKIE = "shipyard_dashboard"
CSRF_FIELD = "csrf"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def local_viewer(name: str) -> Principal:
    """A principal who may read everything and change nothing: the local viewer."""
    role = ROLES["viewer"]
    return Principal(
        name, "local-viewer", "viewer", role.scopes, (Grant("*", "*", Permission.READ),)
    )


def wants_json(request: Request) -> bool:
    """Whether the caller is a script: it sent a bearer header, asked for JSON only, or
    called a route that answers nothing but JSON (its errors too: ``request.state.json_only``)."""
    if request.headers.get("authorization") or getattr(request.state, "json_only", False):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@dataclass(frozen=True)
class Visitor:
    """Who made a request, how they proved it, and the CSRF value their forms carry.

    ``via`` is ``cookie``, ``header`` or ``local`` (the local viewer, no credential).
    """

    principal: Principal
    via: str
    csrf: str

    def may(self, scope: Scope, model: str | None = None) -> bool:
        """Whether the visitor holds ``scope`` (on ``model``)."""
        return self.principal.may(scope, model)


class DashboardAuth:
    """Resolves a request's visitor and checks the CSRF value of its forms."""

    def __init__(
        self,
        tokens: BearerTokens,
        *,
        local: Principal | None = None,
        key: bytes | None = None,
    ) -> None:
        self.tokens = tokens
        self.local = local
        self._key = key or secrets.token_bytes(32)

    def visitor(self, request: Request) -> Visitor:
        """The request's visitor; :class:`Unauthenticated` says why there is none.

        A bearer header wins over the cookie. Without either, the local viewer (if any).
        """
        header = request.headers.get("authorization")
        if header:
            return self._of(header, "header")
        cookie = request.cookies.get(COOKIE)
        if cookie:
            return self._of(f"Bearer {cookie}", "cookie")
        if self.local is not None:
            return Visitor(self.local, "local", self._csrf("local"))
        raise Unauthenticated(
            "This dashboard needs a token: log in with one.",
            hint="`shipyard tokens create --role viewer` makes one; a deployer's may act.",
        )

    def principal_of_token(self, token: str) -> Principal:
        """Who ``token`` names (the login form's check); :class:`Unauthenticated` if nobody."""
        return self.tokens.principal(f"Bearer {token.strip()}", Scope.MODELS_READ)

    def csrf_of_token(self, token: str) -> str:
        """The CSRF value of a session logged in with ``token``."""
        return self._csrf(f"Bearer {token.strip()}")

    def check_csrf(self, visitor: Visitor, sent: str | None) -> None:
        """Refuse (403) a form whose CSRF value is not the visitor's (bearer headers pass)."""
        if visitor.via == "header":
            return
        if not sent or not hmac.compare_digest(sent, visitor.csrf):
            raise Forbidden(
                "This form's security value does not match your session.",
                hint="Reload the page and submit the form again.",
            )

    def _of(self, authorization: str, via: str) -> Visitor:
        principal = self.tokens.principal(authorization, Scope.MODELS_READ)
        return Visitor(principal, via, self._csrf(authorization))

    def _csrf(self, credential: str) -> str:
        digest = hashlib.sha256(credential.encode("utf-8", "surrogateescape")).digest()
        return hmac.new(self._key, digest, hashlib.sha256).hexdigest()
