"""How the dashboard answers: a page, or its record as JSON to a script, and the error table.

Every answer carries ``Cache-Control: no-store`` (pages show live state and a token's view
of it). Errors never show a traceback: a :class:`~shipyard.errors.ShipyardError` is its own
status with its message and hint; a missing or refused token is the login form (a
redirect for a plain ``GET``) or a 401 JSON answer for a script; a route that does not
exist is a 404 page; anything else is logged and answered with a page that says only that
it failed.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shipyard.errors import ShipyardError, Unauthenticated
from shipyard.jsonable import to_json
from shipyard.ui.auth import COOKIE, Visitor, wants_json
from shipyard.ui.forms import safe_next
from shipyard.ui.rendering import dashboard_of

__all__ = [
    "html",
    "http_error",
    "json_answer",
    "page",
    "shipyard_error",
    "unexpected_error",
]

logger = logging.getLogger(__name__)

_NO_STORE = {"cache-control": "no-store"}


def html(text: str, status: int = 200) -> HTMLResponse:
    """An HTML answer that no cache keeps."""
    return HTMLResponse(text, status_code=status, headers=_NO_STORE)


def json_answer(value: Any, status: int = 200) -> Response:
    """A JSON answer that no cache keeps."""
    return Response(
        to_json(value), status_code=status, media_type="application/json", headers=_NO_STORE
    )


def page(
    request: Request, visitor: Visitor, template: str, record: Any, **context: Any
) -> Response:
    """The page, or its record as JSON for a script."""
    if wants_json(request):
        return json_answer(record)
    dashboard = dashboard_of(request)
    return html(dashboard.render(template, visitor=visitor, path=request.url.path, **context))


def _error_page(
    request: Request, status: int, title: str, message: str, hint: str | None, code: str
) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"error": message, "code": code}
        if hint:
            body["hint"] = hint
        return json_answer(body, status)
    try:
        dashboard = dashboard_of(request)
        text = dashboard.render(
            "error.html", status=status, title=title, message=message, hint=hint, visitor=None
        )
    except Exception:  # the templates themselves failed: still no traceback
        logger.exception("rendering the error page failed")
        text = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    return html(text, status)


_TITLES = {400: "Bad request", 401: "Log in", 403: "Not allowed", 404: "Not found"}


async def shipyard_error(request: Request, exc: Exception) -> Response:
    """A :class:`ShipyardError`: its status, message and hint; a missing token: the login."""
    assert isinstance(exc, ShipyardError)
    status = exc.http_status
    if isinstance(exc, Unauthenticated) and not wants_json(request):
        had_cookie = bool(request.cookies.get(COOKIE))
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if request.method == "GET" and not had_cookie:
            return RedirectResponse(f"/login?next={target}", status_code=303)
        dashboard = dashboard_of(request)
        text = dashboard.render(
            "login.html", next=safe_next(request.url.path), message=exc.message, visitor=None
        )
        response = html(text, 401)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response
    if status >= 500:
        logger.error("dashboard: %s %s: %s", request.method, request.url.path, exc)
    title = _TITLES.get(status, "Cannot do that" if status < 500 else "Unavailable")
    return _error_page(request, status, title, exc.message, exc.hint, exc.code)


async def http_error(request: Request, exc: Exception) -> Response:
    """A route or method that does not exist, as a page (or JSON)."""
    assert isinstance(exc, HTTPException)
    message = (
        exc.detail
        if exc.status_code != 404 or "static" in request.url.path
        else (f"There is no page {request.url.path}.")
    )
    return _error_page(
        request,
        exc.status_code,
        _TITLES.get(exc.status_code, "Error"),
        str(message),
        "The fleet page (/) lists every model.",
        "http_error",
    )


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything else: logged with its traceback, answered with a page that says only that."""
    logger.error("dashboard: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _error_page(
        request,
        500,
        "Something failed",
        "The dashboard could not build this page.",
        "The dashboard's log has the details; try again or pick another range.",
        "internal_error",
    )
