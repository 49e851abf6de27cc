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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from shipyard.access import Scope
from shipyard.jsonable import Record
from shipyard.logs.reader import log_source
from shipyard.logs.root import project_log_root
from shipyard.moments import as_utc, parse_duration
from shipyard.monitoring.kpi_quality import BucketValues, bucket_quality, pearson, quality_metric
from shipyard.monitoring.kpi_sources import KPI_TABLE, KpiQueryError, read_kpi
from shipyard.monitoring.kpi_window import KpiWindow, arms_view, bounds, bucket_of

if TYPE_CHECKING:
    from shipyard.config import Config, KpiSettings
    from shipyard.project import Project

__all__ = ["Correlation", "KpiPoint", "KpiResult", "evaluate_kpis"]

logger = logging.getLogger(__name__)

# Each live prediction with its KPI value (a request's rows averaged): matched by the
# request id as logged, else by the id as its sender wrote it (see kpi_window.arms_view).
_MATCHED = """
SELECT p.time, p.arm, k.value FROM arms p JOIN {table} k USING (request_id)
WHERE p.arm <> 'shadow'
UNION ALL
SELECT p.time, p.arm, b.value
FROM (
    SELECT * FROM arms
    WHERE arm <> 'shadow' AND (contains(request_id, '/') OR contains(request_id, ':'))
) p
JOIN {table} b ON b.request_id = p.bare_id
ANTI JOIN {table} k ON k.request_id = p.request_id
"""


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
    with duckdb.connect() as con:
        beside = _Quality(con, config, KpiWindow(model, since, until, moves))
        return [_evaluate(beside, kpi) for kpi in kpis]


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


class _Quality:
    """The window's predictions (the view ``arms``) and their quality, per bucket size.

    Every KPI of one call shares them: the log is read once, and quality is computed once
    per bucket size.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, window: KpiWindow):
        self.con, self.config, self.window = con, config, window
        con.execute("SET TimeZone = 'UTC'")
        self.root = project_log_root(config)
        self.versions: dict[str, list[str]] = {}
        self.problem: str | None = None
        try:
            self.logged = arms_view(con, self.root, window)
            if self.logged:
                for arm, version in con.execute(
                    "SELECT DISTINCT arm, version FROM arms ORDER BY arm, version"
                ).fetchall():
                    self.versions.setdefault(arm, []).append(version)
        except duckdb.Error as exc:  # e.g. a file in the log folder that is not Parquet
            self.logged = False
            first = next((line for line in str(exc).splitlines() if line.strip()), "")
            self.problem = (
                f"the prediction log of {window.model!r} cannot be read ({first}); move "
                f"files Shipyard did not write out of its folder under {self.root}."
            )
        self.metric = quality_metric(config)
        self._found: dict[int, tuple[str, list[KpiPoint], dict[str, list[KpiPoint]]]] = {}

    def per_bucket(self, seconds: int) -> tuple[str, list[KpiPoint], dict[str, list[KpiPoint]]]:
        """The metric used, quality per bucket over the live arms, and per arm."""
        if seconds not in self._found:
            self._found[seconds] = self._compute(seconds)
        return self._found[seconds]

    def _compute(self, seconds: int) -> tuple[str, list[KpiPoint], dict[str, list[KpiPoint]]]:
        labels = log_source(self.con, self.root, "labels", self.window.model)
        if not self.logged or labels is None:
            return self.metric, [], {}
        task = self.config.model.require_classical()
        cast = "TRY_CAST({} AS DOUBLE)" if task == "regression" else "{}"
        table = self.con.sql(
            f"SELECT {bucket_of('p.time', seconds)} AS bucket, p.arm, "
            f"{cast.format('p.output')} AS output, p.probabilities, "
            f"{cast.format('l.label')} AS label "
            "FROM arms p JOIN (SELECT request_id, arg_max(label, time) AS label "
            f"FROM {labels} WHERE model = $model GROUP BY request_id) l USING (request_id) "
            "WHERE p.status = 'ok'",
            params={"model": self.window.model},
        ).to_arrow_table()
        used, overall, per_arm = bucket_quality(table, self.metric, task)
        return used, _as_points(overall), {arm: _as_points(v) for arm, v in per_arm.items()}


def _as_points(values: BucketValues) -> list[KpiPoint]:
    return [KpiPoint(start, value, n) for start, (value, n) in sorted(values.items())]


def _evaluate(beside: _Quality, kpi: KpiSettings) -> KpiResult:
    window = beside.window
    result = KpiResult(kpi.name, window.model, kpi.join, kpi.bucket, kpi.higher_is_better)
    if beside.problem is not None:
        return replace(result, error=f"KPI {kpi.name!r}: {beside.problem}")
    seconds = int(parse_duration(kpi.bucket, flag="bucket").total_seconds())
    try:
        metric, quality, per_arm_quality = beside.per_bucket(seconds)
    except Exception:  # the KPI is still shown without quality beside it
        logger.warning("Quality of %s could not be read", window.model, exc_info=True)
        metric, quality, per_arm_quality = beside.metric, [], {}
    result = replace(
        result,
        arm_versions=beside.versions,
        quality_metric=metric,
        quality=quality,
        per_arm_quality=per_arm_quality,
    )
    try:
        return _joined(beside, kpi, seconds, result)
    except KpiQueryError as exc:
        return replace(result, error=str(exc))
    except Exception as exc:  # a KPI panel shows its error; it never takes the page down
        logger.warning("KPI %r of %s failed", kpi.name, window.model, exc_info=True)
        return replace(result, error=f"KPI {kpi.name!r} failed: {exc}")


def _joined(beside: _Quality, kpi: KpiSettings, seconds: int, result: KpiResult) -> KpiResult:
    con, window = beside.con, beside.window
    rows = read_kpi(con, kpi, beside.config.root)
    if kpi.join == "request_id":
        if not beside.logged:
            points, per_arm, matched = [], {}, 0
        else:
            grouped = con.execute(
                f"SELECT {bucket_of('time', seconds)} AS bucket, arm, avg(value), count(value) "
                f"FROM ({_MATCHED.format(table=KPI_TABLE)}) GROUP BY ALL ORDER BY 1, 2"
            ).fetchall()
            points = _points(grouped, arm=None)
            per_arm = {arm: _points(grouped, arm=arm) for arm in sorted({g[1] for g in grouped})}
            matched = sum(int(g[3]) for g in grouped)
    else:
        inside = bounds("time", window, dates=False)
        grouped = con.execute(
            f"SELECT {bucket_of('time', seconds)} AS bucket, NULL, "
            "sum(value * rows) / sum(rows) FILTER (WHERE value IS NOT NULL), "
            "sum(rows) FILTER (WHERE value IS NOT NULL) "
            f"FROM {KPI_TABLE} WHERE {inside} GROUP BY ALL ORDER BY 1"
        ).fetchall()
        points, per_arm = _points(grouped, arm=None), {}
        matched = sum(int(g[3]) for g in grouped)
    correlation = _correlate(points, result.quality)
    return replace(
        result,
        points=points,
        per_arm=per_arm,
        correlation=correlation.r,
        n=correlation.n,
        per_arm_correlation={
            arm: _correlate(series, result.per_arm_quality.get(arm, []))
            for arm, series in per_arm.items()
        },
        rows=rows,
        matched=matched,
    )


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
