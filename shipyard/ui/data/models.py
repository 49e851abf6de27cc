"""Which models exist, and the model page: every chart over the range, roll-outs, CT
cycles, alerts and the audited events."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from sqlalchemy import func, select

from shipyard.errors import NotFoundError, ShipyardError
from shipyard.logs.root import log_root, project_log_root
from shipyard.moments import as_utc
from shipyard.registry import mlflow_tables
from shipyard.store.tables import CycleRow, DeploymentRow, EventRow, RolloutRow
from shipyard.ui.data import control
from shipyard.ui.data.annotations import event_dict
from shipyard.ui.data.context import ChartContext
from shipyard.ui.data.extent import x_extent
from shipyard.ui.data.extra_charts import kpi_charts, kpi_placeholders
from shipyard.ui.data.ranges import TimeRange
from shipyard.ui.data.series import SERIES
from shipyard.ui.panels import panels_for
from shipyard.ui.views import Chart, ModelView

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = [
    "ACTIVE_ROLLOUTS",
    "known_models",
    "kpi_view",
    "model_view",
    "open_alert_counts",
    "require_model",
]

ACTIVE_ROLLOUTS = ("running", "paused", "promoting")
_ALERT_KINDS = ("alert.opened", "alert.resolved")


def known_models(project: Project) -> list[str]:
    """Every model the project knows: registered, deployed, or with a prediction log."""
    found: set[str] = set()
    with project.store.session() as session:
        if mlflow_tables.has_registry(session):
            found.update(m.name for m in mlflow_tables.list_models(session))
        found.update(session.scalars(select(DeploymentRow.model)))
    found.update(_logged_models(project))
    return sorted(found)


def _logged_models(project: Project) -> set[str]:
    root = project_log_root(project.config)
    if isinstance(root, Path):
        folder = root / "predictions"
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    else:
        where = log_root(root).child("predictions")
        try:
            names = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in where.fs.ls(where.path())]
        except (FileNotFoundError, OSError):
            names = []
    return {unquote(n.removeprefix("model=")) for n in names if n.startswith("model=")}


def require_model(project: Project, model: str) -> list[str]:
    """The known models; a NotFoundError listing them when ``model`` is not one."""
    models = known_models(project)
    if model not in models:
        listed = ", ".join(models) if models else "none yet"
        raise NotFoundError(
            f"No model named {model!r}.",
            hint=f"Known models: {listed}. Train one with `shipyard train`.",
        )
    return models


FIT_RATIO = 4
"""``fit`` re-reads the page over the data's extent when that is under 1/FIT_RATIO of the window."""


def model_view(
    project: Project, model: str, window: TimeRange, *, fit: bool = False, kpis: bool = True
) -> ModelView:
    """The model page over ``window``: a chart per panel (one per KPI), roll-outs with each
    step's guardrail evidence, CT cycles gate by gate, alerts and events.

    ``fit`` (no range was asked for): when the data and annotations cover under a quarter
    of ``window``, the page is read again over just their extent (:func:`x_extent`), so
    its buckets are fine enough to show them (two minutes of a demo, not two 10-minute
    buckets of a day).

    ``kpis=False`` (the HTML page): the KPI charts are placeholders, one per declared KPI,
    and no KPI is evaluated (:func:`kpi_view` answers them); a KPI's SQL over a million
    predictions takes seconds, and the page must not wait for it.
    """
    require_model(project, model)
    view = _model_view(project, model, window, kpis=kpis and not fit)
    if not fit:
        return view
    since, until = x_extent(view.charts, window, explicit=False, step=_step(window))
    if (until - since) * FIT_RATIO < window.until - window.since:
        return _model_view(project, model, TimeRange(since, until, window.label), kpis=kpis)
    if kpis:  # evaluated once, over the window kept
        found = kpi_view(project, model, window)
        others = [chart for chart in view.charts if chart.panel.id != "kpi"]
        at = next((i for i, c in enumerate(view.charts) if c.panel.id == "kpi"), len(others))
        view = replace(view, charts=[*others[:at], *found, *others[at:]])
    return view


def kpi_view(project: Project, model: str, window: TimeRange) -> list[Chart]:
    """The KPI charts of ``model`` over ``window`` (the model page fetches them once it has
    loaded): one per declared KPI in declaration order, or one chart with the error."""
    require_model(project, model)
    return kpi_charts(ChartContext(project, model, window))


def _step(window: TimeRange) -> timedelta:
    from shipyard.ui.data.buckets import grid_for

    return timedelta(seconds=grid_for(window).step)


def _model_view(project: Project, model: str, window: TimeRange, *, kpis: bool) -> ModelView:
    ctx = ChartContext(project, model, window)
    charts: list[Chart] = []
    for panel in panels_for("model"):
        if panel.id == "kpi":
            charts.extend(kpi_charts(ctx) if kpis else kpi_placeholders(ctx))
        else:
            charts.append(SERIES[panel.id](ctx))
    rollouts, cycles = _rollouts_and_cycles(project, model)
    versions = control.registered_versions(ctx.store, model)
    try:
        logged = {v for v in ctx.log.version if v != "?"}
    except ShipyardError:  # the log charts show the error
        logged = set()
    return ModelView(
        model=model,
        since=window.since,
        until=window.until,
        champion=control.current_alias(ctx.store, model, "champion")
        or ctx.champion_at(window.until),
        versions=sorted(
            set(versions) | logged, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v)
        ),
        charts=charts,
        rollouts=rollouts,
        cycles=cycles,
        alerts=_alerts(project, model, window),
        events=[event_dict(e) for e in reversed(ctx.events)],
        rollout_active=any(r["state"] in ACTIVE_ROLLOUTS for r in rollouts),
    )


def _rollouts_and_cycles(
    project: Project, model: str, limit: int = 20
) -> tuple[list[Any], list[Any]]:
    with project.store.session() as session:
        rollouts = session.scalars(
            select(RolloutRow)
            .where(RolloutRow.model == model)
            .order_by(RolloutRow.id.desc())
            .limit(limit)
        ).all()
        cycles = session.scalars(
            select(CycleRow)
            .where(CycleRow.model == model)
            .order_by(CycleRow.id.desc())
            .limit(limit)
        ).all()
        return [_rollout(r) for r in rollouts], [_cycle(c) for c in cycles]


def _rollout(row: RolloutRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "candidate": row.candidate,
        "champion": row.champion,
        "strategy": row.strategy,
        "steps": list(row.steps),
        "step_index": row.step_index,
        "state": row.state,
        "reason": row.reason,
        "created_at": as_utc(row.created_at).isoformat(),
        "updated_at": as_utc(row.updated_at).isoformat(),
        "history": [
            {
                **entry,
                "step": (entry.get("step_index") or 0) + 1,
                "evidence": entry.get("evidence") or {},
            }
            for entry in row.history or []
        ],
    }


def _cycle(row: CycleRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "cause": row.cause,
        "trigger": row.trigger,
        "state": row.state,
        "reason": row.reason,
        "candidate": row.candidate,
        "champion": row.champion,
        "rollout_id": row.rollout_id,
        "gates": list(row.gates or []),
        "created_at": as_utc(row.created_at).isoformat(),
        "updated_at": as_utc(row.updated_at).isoformat(),
    }


def _alerts(project: Project, model: str, window: TimeRange) -> list[dict[str, Any]]:
    """Alerts open now or opened in the range: signal, level, version, since, resolved."""
    events = control.model_events(project.store, model, None, None, _ALERT_KINDS, limit=5000)
    latest: dict[str, dict[str, Any]] = {}
    for event in events:
        signal = event.subject.split("/", 1)[-1]
        at = as_utc(event.at)
        if event.kind == "alert.opened":
            found = latest.get(signal)
            if found is None or not found["open"]:
                found = {"signal": signal, "opened_at": at.isoformat(), "resolved_at": None}
            found.update(
                level=event.payload.get("level"),
                version=event.payload.get("version"),
                score=event.payload.get("score"),
                open=True,
                at=at,
            )
            latest[signal] = found
        elif signal in latest and latest[signal]["open"]:
            latest[signal].update(open=False, resolved_at=at.isoformat(), at=at)
    shown = [a for a in latest.values() if a["open"] or a["at"] >= window.since]
    for alert in shown:
        alert.pop("at")
    return sorted(shown, key=lambda a: (not a["open"], a["opened_at"]), reverse=False)


def open_alert_counts(project: Project) -> dict[str, int]:
    """Every model's open alerts (the latest event of each alert subject is an opening)."""
    query = (
        select(EventRow.subject, EventRow.kind, func.max(EventRow.seq))
        .where(EventRow.kind.in_(_ALERT_KINDS), EventRow.subject.like("alert:%"))
        .group_by(EventRow.subject, EventRow.kind)
    )
    last: dict[str, tuple[int, str]] = {}
    with project.store.session() as session:
        for subject, kind, seq in session.execute(query):
            if subject not in last or seq > last[subject][0]:
                last[subject] = (seq, kind)
    counts: dict[str, int] = {}
    for subject, (_seq, kind) in last.items():
        if kind == "alert.opened":
            model = subject.removeprefix("alert:").split("/", 1)[0]
            counts[model] = counts.get(model, 0) + 1
    return counts
