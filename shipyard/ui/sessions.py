"""Logging in and out of the dashboard: a token in, an HttpOnly cookie out.

The login form takes an API token, checks it against the project's token table and keeps
it in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure`` under https); the token is
never written back into a page. ``next`` only ever leads to a path on this site.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shipyard.errors import Unauthenticated
from shipyard.ui.answers import html
from shipyard.ui.auth import COOKIE
from shipyard.ui.forms import read_form, safe_next
from shipyard.ui.rendering import dashboard_of

__all__ = ["login", "logout"]

logger = logging.getLogger(__name__)


async def login(request: Request) -> Response:
    """GET: the form; POST: check the token, set the session cookie, go where asked."""
    dashboard = dashboard_of(request)
    target = safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return html(dashboard.render("login.html", next=target, message=None, visitor=None))
    form = await read_form(request)
    target = safe_next(form.get("next") or target)
    token = form.get("token", "").strip()
    try:
        if not token:
            raise Unauthenticated("Paste an API token to log in.")
        principal = await run_in_threadpool(dashboard.auth.principal_of_token, token)
    except Unauthenticated as refused:
        page = dashboard.render("login.html", next=target, message=refused.message, visitor=None)
        return html(page, 401)
    logger.info("dashboard: %s logged in (role %s)", principal.name, principal.role)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    """Forget the session cookie and go to the login form."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
