"""Business KPIs beside model quality: the team's own numbers, joined to the prediction log.

    for kpi in evaluate_kpis(project, "churn", since=datetime.now(UTC) - timedelta(days=1)):
        print(kpi.name, kpi.error or [(p.time, p.value) for p in kpi.points], kpi.correlation)

A KPI (``kpis:`` in shipyard.yaml) is one SELECT, read by :mod:`.kpi_sources`. Joined
by ``request_id``, each value lands in its prediction's time bucket and route arm;
joined by ``time``, values are averaged per bucket of their own time. Each bucket's
quality is the realised primary metric on the bucket's labelled live predictions
(:mod:`.kpi_quality`), and the correlation is Pearson's r over the buckets both have.

The arm of a live prediction is ``champion`` when its version was champion at that
moment (the recorded alias moves), else ``challenger``; ``live`` while the model has no
recorded champion. Shadow predictions are their own arm for quality, but carry no KPI:
their answers never reached anyone, so the outcome belongs to the live arm.

A KPI whose query fails comes back with ``error`` naming it and what to fix, never as
an exception.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from shipyard.access import Scope
from shipyard.jsonable import Record
from shipyard.logs.reader import log_source
from shipyard.logs.root import project_log_root
from shipyard.moments import as_utc, parse_duration
from shipyard.monitoring.kpi_quality import bucket_quality, pearson, quality_metric
from shipyard.monitoring.kpi_sources import KPI_TABLE, KpiQueryError, read_kpi
from shipyard.monitoring.kpi_window import KpiWindow, arms_view, bounds, bucket_of, has_view

if TYPE_CHECKING:
    from shipyard.config import Config, KpiSettings
    from shipyard.project import Project

__all__ = ["Correlation", "KpiPoint", "KpiResult", "evaluate_kpis"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KpiPoint(Record):
    """One bucket: its start (UTC), the mean value (None: undefined), and rows behind it."""

    time: datetime
    value: float | None
    n: int


@dataclass(frozen=True)
class Correlation(Record):
    """Pearson's r between a KPI and quality over ``n`` shared buckets (None under 3)."""

    r: float | None
    n: int


@dataclass(frozen=True)
class KpiResult(Record):
    """One KPI of one model over a window, beside the model's quality.

    ``per_arm`` and ``per_arm_quality`` map an arm (champion / challenger / shadow, or
    live before any champion is recorded) to its points; ``arm_versions`` names the
    versions each arm served. ``rows`` counts the KPI's rows, ``matched`` those joined
    to a prediction (request_id) or inside the window (time).
    """

    name: str
    model: str
    join: str
    bucket: str
    higher_is_better: bool
    points: list[KpiPoint] = field(default_factory=list)
    per_arm: dict[str, list[KpiPoint]] = field(default_factory=dict)
    arm_versions: dict[str, list[str]] = field(default_factory=dict)
    quality_metric: str | None = None
    quality: list[KpiPoint] = field(default_factory=list)
    per_arm_quality: dict[str, list[KpiPoint]] = field(default_factory=dict)
    correlation: float | None = None
    n: int = 0
    per_arm_correlation: dict[str, Correlation] = field(default_factory=dict)
    rows: int = 0
    matched: int = 0
    error: str | None = None


def evaluate_kpis(
    project: Project,
    model: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[KpiResult]:
    """Every KPI declared for ``model``, over ``[since, until)``, beside its quality.

    Needs ``models:read`` on the model. A KPI whose query fails has ``error`` set; this
    function does not raise for it.
    """
    project.authorize(Scope.MODELS_READ, model)
    config = project.config
    _check_model(project, model)
    kpis = [kpi for kpi in config.kpis if kpi.applies_to(model)]
    if not kpis:
        return []
    from shipyard.registry.aliases import CHAMPION, alias_moves

    moves = [(move.at, move.to_version) for move in alias_moves(project.store, model, CHAMPION)]
    window = KpiWindow(model, since, until, moves)
    return [_evaluate(config, kpi, window) for kpi in kpis]


def _check_model(project: Project, model: str) -> None:
    """An unknown model (neither registered nor logged) is a NotFoundError saying what exists."""
    from shipyard.errors import NotFoundError
    from shipyard.registry.mlflow_tables import list_models

    with project.store.session() as session:
        known = [summary.name for summary in list_models(session)]
    if model in known:
        return
    root = project_log_root(project.config)
    with duckdb.connect() as con:
        if log_source(con, root, "predictions", model) is not None:
            return
    raise NotFoundError(
        f"No model named {model!r}: it is neither registered nor in the prediction log.",
        hint=f"Models: {', '.join(known) or 'none yet'}.",
    )


def _evaluate(config: Config, kpi: KpiSettings, window: KpiWindow) -> KpiResult:
    empty = KpiResult(kpi.name, window.model, kpi.join, kpi.bucket, kpi.higher_is_better)
    try:
        with duckdb.connect() as con:
            return _joined(con, config, kpi, window)
    except KpiQueryError as exc:
        return _failed(empty, config, kpi, window, str(exc))
    except Exception as exc:  # a KPI panel shows its error; it never takes the page down
        logger.warning("KPI %r of %s failed", kpi.name, window.model, exc_info=True)
        return _failed(empty, config, kpi, window, f"KPI {kpi.name!r} failed: {exc}")


def _failed(
    empty: KpiResult, config: Config, kpi: KpiSettings, window: KpiWindow, error: str
) -> KpiResult:
    """The error, with the model's quality still beside it when that can be read."""
    try:
        with duckdb.connect() as con:
            metric, quality, per_arm_quality, versions = _quality(con, config, kpi, window)
    except Exception:
        return _with(empty, error=error)
    return _with(
        empty,
        error=error,
        quality_metric=metric,
        quality=quality,
        per_arm_quality=per_arm_quality,
        arm_versions=versions,
    )


def _with(result: KpiResult, **changes: object) -> KpiResult:
    from dataclasses import replace

    return replace(result, **changes)  # type: ignore[arg-type]


def _joined(
    con: duckdb.DuckDBPyConnection, config: Config, kpi: KpiSettings, window: KpiWindow
) -> KpiResult:
    metric, quality, per_arm_quality, versions = _quality(con, config, kpi, window)
    rows = read_kpi(con, kpi, config.root)
    seconds = int(parse_duration(kpi.bucket, flag="bucket").total_seconds())
    has_predictions = has_view(con, "arms")
    if kpi.join == "request_id":
        if not has_predictions:
            points, per_arm, matched = [], {}, 0
        else:
            grouped = con.execute(
                f"SELECT {bucket_of('p.time', seconds)} AS bucket, p.arm, "
                "avg(coalesce(k.value, b.value)), count(coalesce(k.value, b.value)) "
                f"FROM arms p LEFT JOIN ({_per_request()}) k ON k.request_id = p.request_id "
                f"LEFT JOIN ({_per_request()}) b ON k.request_id IS NULL "
                "AND p.bare_id <> p.request_id AND b.request_id = p.bare_id "
                "WHERE p.arm <> 'shadow' "
                "AND (k.request_id IS NOT NULL OR b.request_id IS NOT NULL) "
                "GROUP BY ALL ORDER BY 1, 2"
            ).fetchall()
            points = _points(grouped, arm=None)
            per_arm = {arm: _points(grouped, arm=arm) for arm in sorted({g[1] for g in grouped})}
            matched = sum(int(g[3]) for g in grouped)
    else:
        inside = bounds("time", window, dates=False)
        grouped = con.execute(
            f"SELECT {bucket_of('time', seconds)} AS bucket, NULL, avg(value), count(value) "
            f"FROM {KPI_TABLE} WHERE {inside} GROUP BY ALL ORDER BY 1"
        ).fetchall()
        points, per_arm = _points(grouped, arm=None), {}
        matched = sum(int(g[3]) for g in grouped)
    correlation = _correlate(points, quality)
    per_arm_correlation = {
        arm: _correlate(series, per_arm_quality.get(arm, [])) for arm, series in per_arm.items()
    }
    return KpiResult(
        name=kpi.name,
        model=window.model,
        join=kpi.join,
        bucket=kpi.bucket,
        higher_is_better=kpi.higher_is_better,
        points=points,
        per_arm=per_arm,
        arm_versions=versions,
        quality_metric=metric,
        quality=quality,
        per_arm_quality=per_arm_quality,
        correlation=correlation.r,
        n=correlation.n,
        per_arm_correlation=per_arm_correlation,
        rows=rows,
        matched=matched,
    )


def _quality(
    con: duckdb.DuckDBPyConnection, config: Config, kpi: KpiSettings, window: KpiWindow
) -> tuple[str, list[KpiPoint], dict[str, list[KpiPoint]], dict[str, list[str]]]:
    """Create the ``arms`` view of the window's predictions; quality per bucket and arm."""
    con.execute("SET TimeZone = 'UTC'")
    metric = quality_metric(config)
    root = project_log_root(config)
    if not arms_view(con, root, window):
        return metric, [], {}, {}
    versions: dict[str, list[str]] = {}
    for arm, version in con.execute(
        "SELECT DISTINCT arm, version FROM arms ORDER BY arm, version"
    ).fetchall():
        versions.setdefault(arm, []).append(version)
    labels = log_source(con, root, "labels", window.model)
    if labels is None:
        return metric, [], {}, versions
    seconds = int(parse_duration(kpi.bucket, flag="bucket").total_seconds())
    rows = con.execute(
        f"SELECT {bucket_of('p.time', seconds)}, p.arm, p.output, p.probabilities, l.label "
        "FROM arms p JOIN (SELECT request_id, arg_max(label, time) AS label "
        f"FROM {labels} WHERE model = $model GROUP BY request_id) l USING (request_id) "
        "WHERE p.status = 'ok'",
        {"model": window.model},
    ).fetchall()
    task = config.model.task
    live = [row for row in rows if row[1] != "shadow"]
    used, overall = bucket_quality(live, metric, task)
    per_arm: dict[str, list[KpiPoint]] = {}
    for arm in sorted({row[1] for row in rows}):
        _, values = bucket_quality([row for row in rows if row[1] == arm], metric, task)
        per_arm[arm] = [KpiPoint(as_utc(b), v, n) for b, (v, n) in values.items()]
    quality = [KpiPoint(as_utc(b), v, n) for b, (v, n) in overall.items()]
    return used, quality, per_arm, versions


def _per_request() -> str:
    """The KPI's value per request: a request with several rows counts once, averaged."""
    return f"SELECT request_id, avg(value) AS value FROM {KPI_TABLE} GROUP BY request_id"


def _points(grouped: list[tuple[object, ...]], *, arm: str | None) -> list[KpiPoint]:
    """KPI points of one arm (``None``: every live arm, weighted by rows)."""
    sums: dict[datetime, tuple[float, int]] = {}
    for bucket, row_arm, mean, count in grouped:
        if arm is not None and row_arm != arm:
            continue
        assert isinstance(bucket, datetime)
        total, n = sums.get(bucket, (0.0, 0))
        value = 0.0 if mean is None else float(mean)  # type: ignore[arg-type]
        sums[bucket] = (total + value * int(count), n + int(count))  # type: ignore[call-overload]
    return [
        KpiPoint(as_utc(bucket), total / n if n else None, n)
        for bucket, (total, n) in sorted(sums.items())
    ]


def _correlate(kpi: list[KpiPoint], quality: list[KpiPoint]) -> Correlation:
    by_time = {point.time: point.value for point in quality if point.value is not None}
    pairs = [
        (point.value, by_time[point.time])
        for point in kpi
        if point.value is not None and point.time in by_time
    ]
    r = pearson([a for a, _ in pairs], [b for _, b in pairs])
    return Correlation(r, len(pairs))
