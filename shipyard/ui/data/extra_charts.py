"""Traffic shares from the audited traffic changes; compute cost and business KPIs from the
monitoring package's cost and KPI functions, whose failures show on their panel."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
from sqlalchemy.exc import SQLAlchemyError

from shipyard.errors import ShipyardError
from shipyard.moments import as_utc
from shipyard.ui.data import control
from shipyard.ui.data.context import ChartContext
from shipyard.ui.panels import Panel, panel_named
from shipyard.ui.views import Chart, Series

if TYPE_CHECKING:
    from shipyard.monitoring.kpis import KpiPoint, KpiResult

__all__ = [
    "cost_chart",
    "declared_kpis",
    "kpi_chart",
    "kpi_charts",
    "kpi_placeholders",
    "traffic_chart",
]

_TRAFFIC_KINDS = ("traffic.changed", "alias.promote", "alias.rollback", "alias.override")


def traffic_chart(ctx: ChartContext) -> Chart:
    """Each version's share of live traffic (and the shadow's copied share) over the range,
    a step at every audited traffic change or champion move."""
    events = control.model_events(ctx.store, ctx.model, None, ctx.window.until, _TRAFFIC_KINDS)
    state: dict[str, Any] = {"champion": None, "challengers": {}, "shadow": None, "share": 1.0}
    points: list[tuple[datetime, dict[tuple[str, str], float]]] = []
    for event in events:
        if event.kind == "traffic.changed":
            state["challengers"] = dict(event.payload.get("challengers") or {})
            state["shadow"] = event.payload.get("shadow")
            state["share"] = float(event.payload.get("shadow_share", 1.0))
        elif event.subject.endswith("@champion"):
            state["champion"] = event.payload.get("to_version")
        else:
            continue
        at = as_utc(event.at)
        if at >= ctx.window.since:
            points.append((at, _shares(state)))
        else:
            points = [(ctx.window.since, _shares(state))]
    if not points or points[0][0] > ctx.window.since:
        first = ctx.champion_at(ctx.window.since)
        points.insert(0, (ctx.window.since, {(first, "champion"): 1.0} if first else {}))
    points.append((ctx.window.until, points[-1][1]))
    groups = sorted({g for _, shares in points for g in shares}, key=lambda g: (g[1], g[0]))
    x = [at.isoformat() for at, _ in points]
    series = [
        Series(f"{version} {arm}", x, [shares.get((version, arm)) for _, shares in points], arm=arm)
        for version, arm in groups
    ]
    return Chart(
        panel_named("traffic"),
        series=series,
        annotations=ctx.annotations,
        note="Steps: each value holds until the next point.",
    )


def _shares(state: dict[str, Any]) -> dict[tuple[str, str], float]:
    shares: dict[tuple[str, str], float] = {}
    challengers = {str(v): float(w) for v, w in state["challengers"].items() if float(w) > 0}
    for version, weight in challengers.items():
        shares[(version, "challenger")] = weight
    if state["champion"] is not None:
        shares[(str(state["champion"]), "champion")] = max(0.0, 1.0 - sum(challengers.values()))
    if state["shadow"] is not None and state["share"] > 0:
        shares[(str(state["shadow"]), "shadow")] = state["share"]
    return shares


def cost_chart(ctx: ChartContext) -> Chart:
    """Compute cost per 1,000 predictions, per bucket, by version and arm, from the usage
    servers record (``shipyard_usage``: CPU seconds × ``cost.cpu_hour`` per interval)."""
    from shipyard.monitoring.cost import serving_cost

    panel = panel_named("cost")
    window = ctx.window
    try:
        cost = serving_cost(ctx.project, ctx.model, window.since, window.until, ctx.grid.step)
    except ShipyardError as exc:
        return Chart(panel, annotations=ctx.annotations, error=f"Cost history: {exc.message}")
    except SQLAlchemyError:
        return Chart(
            panel,
            annotations=ctx.annotations,
            error="Cost history is not recorded yet: the database has no usage table; "
            "run `shipyard db upgrade`.",
        )
    lines: dict[tuple[str, str], dict[str, float | None]] = {}
    for item in cost.buckets:
        when = as_utc(item.start).isoformat()
        lines.setdefault((item.version, item.role), {})[when] = item.cost_per_1000
    if not lines:
        return Chart(
            panel,
            annotations=ctx.annotations,
            note="No usage recorded in this range: servers record it every cost.flush_seconds.",
        )
    series = []
    for (version, arm), values in sorted(lines.items()):
        x = sorted(values)
        series.append(Series(f"{version} {arm}", x, [values[t] for t in x], arm=arm))
    note = f"In {cost.currency} per 1,000 predictions."
    if cost.other_currency_rows:  # stored before cost.currency changed
        note += f" {cost.other_currency_rows} buckets priced in another currency are left out."
    return Chart(panel, series=series, annotations=ctx.annotations, note=note)


def kpi_charts(ctx: ChartContext) -> list[Chart]:
    """One chart per business KPI declared for the model: its values (overall and per arm)
    beside model quality, the correlation in the note; a failing KPI's error on its chart."""
    from shipyard.monitoring.kpis import evaluate_kpis

    panel = panel_named("kpi")
    if not declared_kpis(ctx):
        return [
            Chart(
                panel,
                note="No KPI is declared for this model: add one under `kpis:` in "
                "shipyard.yaml (see docs/kpis.md).",
            )
        ]
    try:
        results = evaluate_kpis(ctx.project, ctx.model, ctx.window.since, ctx.window.until)
    except ShipyardError as exc:
        return [Chart(panel, error=f"Business KPIs: {exc.message}")]
    except duckdb.Error as exc:  # e.g. an unreadable log file: the log charts say which
        return [Chart(panel, error=f"Business KPIs: the prediction log cannot be read: {exc}")]
    if not results:
        return [
            Chart(
                panel,
                note="No KPI is declared for this model: add one under `kpis:` in "
                "shipyard.yaml (see docs/kpis.md).",
            )
        ]
    return [_kpi(ctx, panel, result) for result in results]


def declared_kpis(ctx: ChartContext) -> list[str]:
    """The names of the KPIs declared for the model, in the order :func:`kpi_charts` answers."""
    return [kpi.name for kpi in ctx.project.config.kpis if kpi.applies_to(ctx.model)]


def kpi_placeholders(ctx: ChartContext) -> list[Chart]:
    """The KPI charts without evaluating a KPI: one empty chart per declared KPI (the page
    fetches them from ``/models/{name}/kpis`` once it has loaded), or the note that none is
    declared. The model page must not wait for a KPI's SQL."""
    names = declared_kpis(ctx)
    if not names:
        return kpi_charts(ctx)  # says that none is declared; evaluates nothing
    panel = panel_named("kpi")
    return [Chart(panel, note=f"KPI {name}: loading…") for name in names]


def _kpi(ctx: ChartContext, panel: Panel, result: KpiResult) -> Chart:
    if result.error:
        return Chart(panel, annotations=ctx.annotations, error=f"KPI {result.name}: {result.error}")
    series = [_points(result.name, result.points)]
    for arm, points in sorted(result.per_arm.items()):
        series.append(_points(f"{result.name} {arm}", points, arm=arm))
    if result.quality:
        series.append(_points(f"{result.quality_metric or 'quality'}", result.quality, dash=True))
    notes = [f"KPI {result.name}"]
    if result.correlation is not None:
        notes.append(
            f"correlation with quality r = {result.correlation:.2f} over {result.n} buckets"
        )
    else:
        notes.append("correlation with quality: too few shared buckets")
    for arm, found in sorted(result.per_arm_correlation.items()):
        if found.r is not None:
            notes.append(f"{arm}: r = {found.r:.2f} (n = {found.n})")
    return Chart(panel, series=series, annotations=ctx.annotations, note="; ".join(notes) + ".")


def _points(
    name: str, points: list[KpiPoint], *, arm: str | None = None, dash: bool = False
) -> Series:
    x = [as_utc(p.time).isoformat() for p in points]
    y = [None if p.value is None else float(p.value) for p in points]
    return Series(name, x, y, arm=arm, dash=dash)


def kpi_chart(ctx: ChartContext) -> Chart:
    """Every KPI on one chart (the model page shows one chart per KPI: :func:`kpi_charts`)."""
    charts = kpi_charts(ctx)
    if len(charts) == 1:
        return charts[0]
    errors = [c.error for c in charts if c.error]
    return Chart(
        panel_named("kpi"),
        series=[s for c in charts for s in c.series],
        annotations=ctx.annotations,
        error="; ".join(errors) if errors and len(errors) == len(charts) else None,
        note=" ".join(c.note or c.error or "" for c in charts),
    )
