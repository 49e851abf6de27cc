"""The dashboard's route handlers: who may see what, which record, which template.

Each page resolves its visitor (:mod:`shipyard.ui.auth`), checks the scope it needs
(models:read, on the model where there is one; audit:read for the audit log), reads its
record from :mod:`shipyard.ui.data` off the event loop, and renders it, or answers it as
JSON to a script (:mod:`shipyard.ui.answers`). Actions (``POST``) also check the form's
CSRF value and go through :func:`shipyard.ui.actions.run_action`; logging in and out is
:mod:`shipyard.ui.sessions`.

    GET  /                                fleet, sorted by what needs attention
    GET  /models/{name}?range=6h          a model over a range (or ?since=…&until=…)
    GET  /models/{name}/kpis?range=6h     its KPI charts as JSON (the page fetches them)
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
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from shipyard.access import Scope
from shipyard.errors import RequestError
from shipyard.ui.answers import json_answer, page
from shipyard.ui.auth import CSRF_FIELD, Visitor, wants_json
from shipyard.ui.forms import read_form
from shipyard.ui.panels import panels_for
from shipyard.ui.rendering import Dashboard, dashboard_of
from shipyard.ui.sessions import login, logout

if TYPE_CHECKING:
    from datetime import datetime

    from shipyard.delivery.rollout import Rollout
    from shipyard.ui.data import TimeRange
    from shipyard.ui.views import Chart

__all__ = ["ROUTES", "audit", "fleet", "kpis", "maturity", "model", "version"]

logger = logging.getLogger(__name__)

RANGES = ("1h", "6h", "24h", "7d", "30d")  # the range picker's quick choices
PERIODS = ("1d", "7d", "4w")  # the maturity page's ROI trend periods
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
DONE = {  # ?done=… after an action: fixed texts, so a link cannot put words on the page
    "rollback": "Rolled back: the champion moved (see the events below).",
    "pause": "The roll-out is paused at its current step.",
    "resume": "The roll-out carries on from its step.",
}


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


def _explicit(request: Request) -> bool:
    """Whether the visitor named the range (then the charts show exactly it)."""
    return any(request.query_params.get(name) for name in ("range", "since", "until"))


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
    return page(
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
    explicit = _explicit(request)
    inline = wants_json(request)  # a script gets the KPIs in the answer; a page fetches them
    view = await run_in_threadpool(
        lambda: data.model_view(dashboard.project, name, window, fit=not explicit, kpis=inline)
    )
    llm = await run_in_threadpool(
        lambda: data.llm_view(dashboard.project, name, window, explicit=explicit)
    )
    done = DONE.get(request.query_params.get("done", ""))
    order = {panel.id: index for index, panel in enumerate(panels_for("model"))}
    charts = sorted(view.charts, key=lambda chart: order.get(chart.panel.id, len(order)))
    rollout = await run_in_threadpool(_active_rollout, dashboard, name)
    shown = data.TimeRange(view.since, view.until, window.label)
    x_range = [moment.isoformat() for moment in data.x_extent(charts, shown, explicit=explicit)]
    return page(
        request,
        visitor,
        "model.html",
        {**view.to_dict(), "x_range": x_range, **({"llm": llm.to_dict()} if llm else {})},
        view=view,
        llm=llm,
        charts=charts,
        x_range=x_range,
        default_range=dashboard.config.ui.default_range,
        rollout_state=rollout.state if rollout is not None else None,
        ranges=RANGES,
        query=dict(request.query_params),
        done=done,
        kpis_url=_kpis_url(name, view.since, view.until),
        kpis_pending=not inline and any(_pending(c) for c in charts if c.panel.id == "kpi"),
        may_deploy=visitor.may(Scope.MODELS_DEPLOY, name),
        csrf_field=CSRF_FIELD,
    )


def _pending(chart: Chart) -> bool:
    """A KPI placeholder (the page fetches its chart), not a chart that says something."""
    return not chart.series and not chart.error and (chart.note or "").endswith("loading…")


def _kpis_url(name: str, since: datetime, until: datetime) -> str:
    """Where the page fetches its KPI charts: the page's own range, to the microsecond."""
    query = urlencode({"since": since.isoformat(), "until": until.isoformat()})
    return f"/models/{quote(name, safe='')}/kpis?{query}"


async def kpis(request: Request) -> Response:
    """GET: a model's KPI charts over the range, as JSON (the model page fetches them after
    it has loaded: evaluating a KPI over a million predictions takes seconds)."""
    from shipyard.ui import data
    from shipyard.ui.rendering import chart_data

    request.state.json_only = True  # a script's answer, errors and refusals included
    name = request.path_params["name"]
    _visitor(request, Scope.MODELS_READ, name)
    dashboard = dashboard_of(request)
    window = _window(request, dashboard)
    charts = await run_in_threadpool(data.kpi_view, dashboard.project, name, window)
    return json_answer(
        {
            "model": name,
            "since": window.since.isoformat(),
            "until": window.until.isoformat(),
            "charts": [{**chart_data(chart), "points": chart.points} for chart in charts],
        }
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
    return page(request, visitor, "version.html", view.to_dict(), view=view)


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
    return page(
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
    return page(
        request, visitor, "maturity.html", report, report=report, period=period, periods=PERIODS
    )


def _maturity(dashboard: Dashboard, period: str) -> dict[str, Any]:
    from shipyard.operations import assess_maturity, roi_metrics

    project = dashboard.project
    return {
        "maturity": assess_maturity(project).to_dict(),
        "roi": roi_metrics(project, period=period).to_dict(),
    }


def _action(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def act(request: Request) -> Response:
        from shipyard.ui.actions import run_action

        model_name = request.path_params["name"]
        dashboard = dashboard_of(request)
        visitor = dashboard.auth.visitor(request)
        form = await read_form(request)
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
            return json_answer(result.to_dict())
        target = f"/models/{quote(model_name, safe='')}?{urlencode({'done': name})}"
        return RedirectResponse(target, status_code=303)

    act.__doc__ = f"POST: {name} (models:deploy), then back to the model page."
    return act


ROUTES = [
    Route("/", fleet),
    Route("/models/{name}", model),
    Route("/models/{name}/kpis", kpis),
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
