"""The fleet page: one row per model, what needs attention first.

Every number comes from a handful of queries for the whole fleet, not per model: one
DuckDB query over every model's prediction log (and one per LLM model over its trace log:
its calls as the gateway answered them), one query each for the aliases, the
traffic settings, the latest monitor runs and the open alerts, and one usage sum per
model. MLflow is never imported (its import alone is about a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from shipyard.logs.root import project_log_root
from shipyard.registry import mlflow_tables
from shipyard.store.tables import AliasMoveRow, DeploymentRow, RolloutRow
from shipyard.store.traffic import TrafficSettings
from shipyard.ui.data import control
from shipyard.ui.data.llm_traces import llm_fleet_stats
from shipyard.ui.data.log_stats import FleetStats, fleet_stats
from shipyard.ui.data.models import ACTIVE_ROLLOUTS, known_models, open_alert_counts
from shipyard.ui.data.ranges import TimeRange
from shipyard.ui.views import FleetRow

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["ERROR_RATE_ATTENTION", "LABEL_LAG_ATTENTION", "attention_of", "fleet_rows"]

ERROR_RATE_ATTENTION = 0.01
"""An error rate above this (1 %) needs attention."""
LABEL_LAG_ATTENTION = 7 * 86400.0
"""A median label lag above this (a week) needs attention: quality is flying blind."""

_LEVEL_WEIGHT = {"pause": 80.0, "retrain": 30.0, "inspect": 5.0}


def fleet_rows(project: Project, window: TimeRange) -> list[FleetRow]:
    """Every known model over ``window``, those needing attention first (then by name)."""
    models = known_models(project)
    store = project.store
    root = project_log_root(project.config)
    stats = fleet_stats(root, models, window.since, window.until)
    llm = llm_fleet_stats(root, [m for m in models if m not in stats], window.since, window.until)
    stats.update(llm)  # an LLM model's calls, from its trace log
    with store.session() as session:
        aliases: dict[str, dict[str, str]] = {}
        if mlflow_tables.has_registry(session):
            aliases = {m.name: m.aliases for m in mlflow_tables.list_models(session)}
        traffic: dict[str, Any] = dict(
            session.execute(select(DeploymentRow.model, DeploymentRow.traffic)).all()
        )
        latest = control.latest_runs(session)
        moved = _last_champions(session)
        active = set(
            session.scalars(select(RolloutRow.model).where(RolloutRow.state.in_(ACTIVE_ROLLOUTS)))
        )
    alerts = open_alert_counts(project)
    rows = []
    for model in models:
        settings = TrafficSettings.from_dict(traffic.get(model))
        champion = aliases.get(model, {}).get("champion") or moved.get(model)
        rows.append(
            _row(
                model,
                champion,
                settings,
                stats.get(model),
                window,
                latest.get(model),
                alerts.get(model, 0),
                _cost_per_1000(project, model, window),
                model in active,
            )
        )
    return sorted(rows, key=lambda r: (-r.attention, r.model))


def _last_champions(session: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    query = (
        select(AliasMoveRow.model, AliasMoveRow.to_version)
        .where(AliasMoveRow.alias == "champion")
        .order_by(AliasMoveRow.id)
    )
    for model, version in session.execute(query):
        if version is None:
            found.pop(model, None)
        else:
            found[model] = version
    return found


def _cost_per_1000(project: Project, model: str, window: TimeRange) -> float | None:
    from shipyard.monitoring.cost import cost_summary

    return cost_summary(project, model, window.since, window.until).cost_per_1000


def _row(
    model: str,
    champion: str | None,
    settings: TrafficSettings,
    stats: FleetStats | None,
    window: TimeRange,
    run: control.StoredRun | None,
    open_alerts: int,
    cost: float | None,
    rolling_out: bool,
) -> FleetRow:
    result = run.result if run is not None else {}
    performance = result.get("performance") or {}
    lag = _float((performance.get("lag_seconds") or {}).get("p50"))
    coverage = _float(performance.get("coverage"))
    realized = {k: float(v) for k, v in (performance.get("metrics") or {}).items() if _num(v)}
    estimated = {
        k: float(v["value"])
        for k, v in (result.get("estimated") or {}).items()
        if isinstance(v, dict) and _num(v.get("value"))
    }
    breaches = [b for b in performance.get("breaches") or [] if b.get("method") == "scorecard"]
    error_rate = None
    if stats is not None and stats.requests:
        error_rate = 1 - stats.ok / stats.requests
    attention, reasons = attention_of(
        open_alerts=open_alerts,
        level=run.level if run is not None else "unknown",
        error_rate=error_rate,
        breaches=breaches,
        label_lag=lag,
        rolling_out=rolling_out,
    )
    p50, p95, p99 = stats.latency if stats is not None else (None, None, None)
    return FleetRow(
        model=model,
        champion=champion,
        challengers={v: w for v, w in settings.challengers.items() if w > 0},
        shadow=settings.shadow,
        requests_per_second=stats.ok / window.seconds if stats is not None else None,
        latency_ms={"p50": p50, "p95": p95, "p99": p99},
        error_rate=error_rate,
        cost_per_1000=cost,
        drift_level=run.level if run is not None else "unknown",
        realized=realized,
        estimated=estimated,
        label_coverage=coverage,
        label_lag_seconds=lag,
        open_alerts=open_alerts,
        attention=attention,
        reasons=reasons,
    )


def attention_of(
    *,
    open_alerts: int,
    level: str,
    error_rate: float | None,
    breaches: list[dict[str, Any]],
    label_lag: float | None,
    rolling_out: bool = False,
) -> tuple[float, list[str]]:
    """How much a model needs attention (higher first) and why, in the order that matters:
    open alerts, a pause or retrain drift level, errors, realised quality below the
    scorecard's bound, label lag; a roll-out in progress only lifts it a little."""
    score = 0.0
    reasons: list[str] = []
    if open_alerts:
        score += 100.0 + min(open_alerts, 10)
        reasons.append(f"{open_alerts} open alert{'s' * (open_alerts != 1)}")
    if level in _LEVEL_WEIGHT:
        score += _LEVEL_WEIGHT[level]
        reasons.append(f"monitor level {level}")
    if error_rate is not None and error_rate > ERROR_RATE_ATTENTION:
        score += 45.0 + min(error_rate * 100, 20.0)
        reasons.append(f"error rate {error_rate:.1%}")
    for breach in breaches:
        score += 10.0
        metric = breach.get("metric") or breach.get("name", "performance")
        value, limit = _short(breach.get("value")), _short(breach.get("limit"))
        if breach.get("kind") == "band":
            reasons.append(f"{metric} {value} degraded past its {breach.get('level')} band")
        else:
            reasons.append(f"realised {metric} {value} beyond the scorecard's bound {limit}")
    if label_lag is not None and label_lag > LABEL_LAG_ATTENTION:
        score += 3.0
        reasons.append(f"labels lag {label_lag / 86400:.1f} days")
    if level == "unknown":
        score += 1.0
        reasons.append("not monitored in its latest window")
    if rolling_out:
        score += 2.0
        reasons.append("roll-out in progress")
    return score, reasons


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _float(value: Any) -> float | None:
    return float(value) if _num(value) else None


def _short(value: Any) -> str:
    return f"{value:.3g}" if _num(value) else str(value)
