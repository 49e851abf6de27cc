"""The dashboard's route handlers: who may see what, which record, which template.

Each page resolves its visitor (:mod:`shipyard.ui.auth`), checks the scope it needs
(models:read, on the model where there is one; audit:read for the audit log), reads its
record from :mod:`shipyard.ui.data` off the event loop, and renders it, or answers it as
JSON to a script. Actions (``POST``) also check the form's CSRF value and go through
:func:`shipyard.ui.actions.run_action`.

    GET  /                                fleet, sorted by what needs attention
    GET  /models/{name}?range=6h          a model over a range (or ?since=…&until=…)
    GET  /models/{name}/versions/{v}      a version: lineage, scorecard, card, serving
    GET  /audit?q=…&kind=…&offset=…       the audit log, its verify status, its checkpoint
    GET  /maturity                        the maturity level and ROI metrics
    POST /models/{name}/rollback          roll back (deployer), reason recorded
    POST /models/{name}/pause | resume    pause or resume the roll-out (deployer)
    GET|POST /login, /logout
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from shipyard.access import Scope
from shipyard.errors import Forbidden, RequestError, ShipyardError, Unauthenticated
from shipyard.jsonable import to_json
from shipyard.ui.auth import COOKIE, CSRF_FIELD, Visitor, wants_json
from shipyard.ui.panels import panels_for
from shipyard.ui.rendering import Dashboard, dashboard_of

if TYPE_CHECKING:
    from shipyard.delivery.rollout import Rollout
    from shipyard.ui.data import TimeRange

__all__ = ["ROUTES", "http_error", "shipyard_error", "unexpected_error"]

logger = logging.getLogger(__name__)

RANGES = ("1h", "6h", "24h", "7d", "30d")  # the range picker's quick choices
PERIODS = ("1d", "7d", "4w")  # the maturity page's ROI trend periods
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_FORM_BYTES = 64 * 1024
DONE = {  # ?done=… after an action: fixed texts, so a link cannot put words on the page
    "rollback": "Rolled back: the champion moved (see the events below).",
    "pause": "The roll-out is paused at its current step.",
    "resume": "The roll-out carries on from its step.",
}
_NO_STORE = {"cache-control": "no-store"}


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_NO_STORE)


def _json(value: Any, status: int = 200) -> Response:
    return Response(
        to_json(value), status_code=status, media_type="application/json", headers=_NO_STORE
    )


def _page(
    request: Request, visitor: Visitor, template: str, record: Any, **context: Any
) -> Response:
    """The page, or its record as JSON for a script."""
    if wants_json(request):
        return _json(record)
    dashboard = dashboard_of(request)
    return _html(dashboard.render(template, visitor=visitor, path=request.url.path, **context))


def _visitor(request: Request, scope: Scope, model: str | None = None) -> Visitor:
    visitor = dashboard_of(request).auth.visitor(request)
    visitor.principal.require(scope, model)
    return visitor


def _window(request: Request, dashboard: Dashboard) -> TimeRange:
    from shipyard.ui.data import parse_range

    query = request.query_params
    try:
        return parse_range(
            query.get("range") or None,
            query.get("since") or None,
            query.get("until") or None,
            dashboard.config.ui.default_range,
        )
    except ValueError as exc:
        raise RequestError(str(exc), 400) from None


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise RequestError(f"{name} must be a whole number from {low} to {high}.", 400) from None
    if not low <= value <= high:
        raise RequestError(f"{name} must be from {low} to {high}, not {value}.", 400)
    return value


async def fleet(request: Request) -> Response:
    """Every model the visitor may read, what needs attention first."""
    from shipyard.ui import data

    visitor = _visitor(request, Scope.MODELS_READ)
    dashboard = dashboard_of(request)
    window = _window(request, dashboard)
    rows = await run_in_threadpool(data.fleet_rows, dashboard.project, window)
    rows = [row for row in rows if visitor.may(Scope.MODELS_READ, row.model)]
    return _page(
        request,
        visitor,
        "fleet.html",
        [row.to_dict() for row in rows],
        rows=rows,
        ranges=RANGES,
        default_range=dashboard.config.ui.default_range,
        query=dict(request.query_params),
    )


async def model(request: Request) -> Response:
    """One model's charts over the chosen range, roll-outs, CT cycles, alerts, events."""
    from shipyard.ui import data

    name = request.path_params["name"]
    visitor = _visitor(request, Scope.MODELS_READ, name)
    dashboard = dashboard_of(request)
    window = _window(request, dashboard)
    view = await run_in_threadpool(data.model_view, dashboard.project, name, window)
    done = DONE.get(request.query_params.get("done", ""))
    order = {panel.id: index for index, panel in enumerate(panels_for("model"))}
    charts = sorted(view.charts, key=lambda chart: order.get(chart.panel.id, len(order)))
    rollout = await run_in_threadpool(_active_rollout, dashboard, name)
    return _page(
        request,
        visitor,
        "model.html",
        view.to_dict(),
        view=view,
        charts=charts,
        default_range=dashboard.config.ui.default_range,
        rollout_state=rollout.state if rollout is not None else None,
        ranges=RANGES,
        query=dict(request.query_params),
        done=done,
        may_deploy=visitor.may(Scope.MODELS_DEPLOY, name),
        csrf_field=CSRF_FIELD,
    )


def _active_rollout(dashboard: Dashboard, name: str) -> Rollout | None:
    from shipyard.delivery.rollout import active_rollout

    return active_rollout(dashboard.project.store, name)


async def version(request: Request) -> Response:
    """One version: lineage, scorecard against the champion's, card, serving history."""
    from shipyard.ui import data

    name, number = request.path_params["name"], request.path_params["version"]
    visitor = _visitor(request, Scope.MODELS_READ, name)
    dashboard = dashboard_of(request)
    view = await run_in_threadpool(data.version_view, dashboard.project, name, number)
    return _page(request, visitor, "version.html", view.to_dict(), view=view)


async def audit(request: Request) -> Response:
    """The audit log, searched, a page at a time, with its verify status and checkpoint."""
    from shipyard.ui import data

    visitor = _visitor(request, Scope.AUDIT_READ)
    dashboard = dashboard_of(request)
    query = request.query_params.get("q", "").strip()
    kind = request.query_params.get("kind", "").strip() or None
    limit = _int(request, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    offset = _int(request, "offset", 0, 0, 10**9)
    view = await run_in_threadpool(data.audit_view, dashboard.project, query, kind, limit, offset)
    base = {"q": query, "kind": kind or "", "limit": str(limit)}
    previous = urlencode({**base, "offset": max(0, offset - limit)}) if offset > 0 else None
    following = urlencode({**base, "offset": offset + limit})
    return _page(
        request,
        visitor,
        "audit.html",
        view.to_dict(),
        view=view,
        kind=kind or "",
        offset=offset,
        limit=limit,
        previous=previous,
        following=following if offset + limit < view.total else None,
    )


async def maturity(request: Request) -> Response:
    """The project's maturity level, characteristic by characteristic, and ROI metrics."""
    from shipyard.errors import ConfigError
    from shipyard.moments import parse_duration

    visitor = _visitor(request, Scope.AUDIT_READ)
    dashboard = dashboard_of(request)
    period = request.query_params.get("period") or "7d"
    try:
        parse_duration(period, flag="period")
    except ConfigError as bad:
        raise RequestError(f"{bad.message} Write e.g. 1d, 7d or 4w.", 400) from None
    report = await run_in_threadpool(_maturity, dashboard, period)
    return _page(
        request, visitor, "maturity.html", report, report=report, period=period, periods=PERIODS
    )


def _maturity(dashboard: Dashboard, period: str) -> dict[str, Any]:
    from shipyard.operations import assess_maturity, roi_metrics

    project = dashboard.project
    return {
        "maturity": assess_maturity(project).to_dict(),
        "roi": roi_metrics(project, period=period).to_dict(),
    }


def _same_site(request: Request) -> None:
    """Refuse (403) a form a browser sent from another site (its ``Origin`` says so)."""
    origin = request.headers.get("origin")
    if not origin or (origin == "null" and request.headers.get("authorization")):
        return  # not a browser's cross-site form, or a script with its own credential
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden(
            "This form was sent from another site.",
            hint="Open the dashboard itself and submit the form there.",
        )


async def _form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded (or JSON) form body, at most 64 KiB, sent from this site."""
    _same_site(request)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise RequestError("The form is too large (64 KiB at most).", 413)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        import json

        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            raise RequestError("The body is not valid JSON.", 400) from None
        if not isinstance(parsed, dict):
            raise RequestError("The body must be a JSON object of form fields.", 400)
        return {str(k): str(v) for k, v in parsed.items() if v is not None}
    if kind not in ("", "application/x-www-form-urlencoded"):
        raise RequestError("Send the form as application/x-www-form-urlencoded.", 415)
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise RequestError("The form is not UTF-8 text.", 400) from None


def _action(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def act(request: Request) -> Response:
        from shipyard.ui.actions import run_action

        model_name = request.path_params["name"]
        dashboard = dashboard_of(request)
        visitor = dashboard.auth.visitor(request)
        form = await _form(request)
        dashboard.auth.check_csrf(visitor, form.get(CSRF_FIELD))
        result = await run_in_threadpool(
            lambda: run_action(
                dashboard.project,
                visitor.principal,
                name,
                model_name,
                reason=form.get("reason", ""),
                to=form.get("to") or None,
            )
        )
        logger.info("dashboard: %s by %s: %s", name, visitor.principal.name, result.summary)
        if wants_json(request):
            return _json(result.to_dict())
        target = f"/models/{quote(model_name, safe='')}?{urlencode({'done': name})}"
        return RedirectResponse(target, status_code=303)

    act.__doc__ = f"POST: {name} (models:deploy), then back to the model page."
    return act


def _next(target: str | None) -> str:
    """Where to go after logging in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login(request: Request) -> Response:
    """GET: the form; POST: check the token, set the session cookie, go where asked."""
    dashboard = dashboard_of(request)
    target = _next(request.query_params.get("next"))
    if request.method == "GET":
        return _html(dashboard.render("login.html", next=target, message=None, visitor=None))
    form = await _form(request)
    target = _next(form.get("next") or target)
    token = form.get("token", "").strip()
    try:
        if not token:
            raise Unauthenticated("Paste an API token to log in.")
        principal = await run_in_threadpool(dashboard.auth.principal_of_token, token)
    except Unauthenticated as refused:
        page = dashboard.render("login.html", next=target, message=refused.message, visitor=None)
        return _html(page, 401)
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


def _error_page(
    request: Request, status: int, title: str, message: str, hint: str | None, code: str
) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"error": message, "code": code}
        if hint:
            body["hint"] = hint
        return _json(body, status)
    try:
        dashboard = dashboard_of(request)
        page = dashboard.render(
            "error.html", status=status, title=title, message=message, hint=hint, visitor=None
        )
    except Exception:  # the templates themselves failed: still no traceback
        logger.exception("rendering the error page failed")
        page = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    return _html(page, status)


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
        page = dashboard.render(
            "login.html", next=_next(request.url.path), message=exc.message, visitor=None
        )
        response = _html(page, 401)
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


ROUTES = [
    Route("/", fleet),
    Route("/models/{name}", model),
    Route("/models/{name}/versions/{version}", version),
    Route("/models/{name}/rollback", _action("rollback"), methods=["POST"]),
    Route("/models/{name}/pause", _action("pause"), methods=["POST"]),
    Route("/models/{name}/resume", _action("resume"), methods=["POST"]),
    Route("/audit", audit),
    Route("/maturity", maturity),
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["GET", "POST"]),
]
"""Every page and action, in the order the module docstring lists them."""
