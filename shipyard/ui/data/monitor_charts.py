"""Drift, performance and label coverage over time, from the stored monitor runs."""

from __future__ import annotations

import math
from typing import Any

from shipyard.config import Config
from shipyard.config.evaluation import Scorecard
from shipyard.errors import ShipyardError
from shipyard.ui.data.context import ChartContext
from shipyard.ui.panels import panel_named
from shipyard.ui.views import Chart, Heatmap, Series

__all__ = [
    "feature_drift_chart",
    "labels_chart",
    "performance_chart",
    "prediction_drift_chart",
    "scorecard_bounds",
]

_BANDS = ("inspect", "retrain", "pause")
_NO_RUNS = "No monitor run in this range; run `shipyard monitor run NAME` or start the agent."


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def scorecard_bounds(config: Config) -> dict[str, dict[str, float]]:
    """Each whole-data scorecard metric's bounds (``min`` / ``max``); none without a scorecard."""
    declared = config.evaluation.scorecard
    if declared is None:
        return {}
    if isinstance(declared, Scorecard):
        card = declared
    else:  # a YAML file: the evaluation package reads it (importing it costs seconds)
        from shipyard.evaluation.evaluate import load_scorecard

        try:
            card = load_scorecard(config)
        except ShipyardError:
            return {}
    bounds: dict[str, dict[str, float]] = {}
    for criterion in [card.primary, *card.metrics]:
        if criterion is None or criterion.slice is not None:
            continue
        found = bounds.setdefault(criterion.metric, {})
        if criterion.min is not None:
            found["min"] = max(found.get("min", -math.inf), criterion.min)
        if criterion.max is not None:
            found["max"] = min(found.get("max", math.inf), criterion.max)
    return bounds


def feature_drift_chart(ctx: ChartContext) -> Chart:
    """Each run's drift per feature, as a share of the feature's retrain level (1 = retrain)."""
    panel = panel_named("feature_drift")
    runs = ctx.runs
    if not runs:
        return Chart(panel, note=_NO_RUNS, annotations=ctx.annotations)
    names = sorted({str(f.get("feature")) for run in runs for f in run.result.get("features", [])})
    z: list[list[float | None]] = [[None] * len(runs) for _ in names]
    row = {name: i for i, name in enumerate(names)}
    for j, run in enumerate(runs):
        for feature in run.result.get("features", []):
            score = _number(feature.get("score"))
            retrain = _number((feature.get("bands") or {}).get("retrain"))
            if score is not None and retrain:
                score = score / retrain
            z[row[str(feature.get("feature"))]][j] = score
    x = [run.at.isoformat() for run in runs]
    return Chart(
        panel,
        heatmap=Heatmap(x=x, y=names, z=z),
        annotations=ctx.annotations,
        note="Each cell: the feature's drift score ÷ its retrain level (1 = retrain; "
        "the raw score where the feature has no bands).",
    )


def prediction_drift_chart(ctx: ChartContext) -> Chart:
    """Each run's prediction drift score, by version, with the version's bands dashed."""
    panel = panel_named("prediction_drift")
    series: list[Series] = []
    for version, runs in _by_version(ctx).items():
        scored = [r for r in runs if r.result.get("prediction")]
        if not scored:
            continue
        x = [r.at.isoformat() for r in scored]
        series.append(
            Series(
                f"{version} score",
                x,
                [_number(r.result["prediction"].get("score")) for r in scored],
            )
        )
        for band in _BANDS:
            ys = [_number((r.result["prediction"].get("bands") or {}).get(band)) for r in scored]
            if any(y is not None for y in ys):
                series.append(Series(f"{version} {band}", x, ys, dash=True))
    note = None if series else (_NO_RUNS if not ctx.runs else "No run scored prediction drift.")
    return Chart(panel, series=series, annotations=ctx.annotations, note=note)


def performance_chart(ctx: ChartContext) -> Chart:
    """Realised (labelled) against estimated (CBPE, with its band) performance, by version,
    and the scorecard's bounds.

    The metrics the scorecard bounds are drawn (else the first one measured); the others,
    and the estimate's band edges, wait in the legend, one click away: every metric ×
    realised / estimated / low / high for each version is too many lines to read.
    """
    panel = panel_named("performance")
    bounds = scorecard_bounds(ctx.project.config)
    by_version = _by_version(ctx)
    found: list[tuple[str, list[str], list[dict[str, Any]], list[dict[str, Any]], list[str]]] = []
    measured: set[str] = set()
    for version, runs in by_version.items():
        x = [r.at.isoformat() for r in runs]
        realised = [(r.result.get("performance") or {}).get("metrics") or {} for r in runs]
        estimated = [r.result.get("estimated") or {} for r in runs]
        names = sorted({m for d in realised for m in d} | {m for d in estimated for m in d})
        measured.update(names)
        found.append((version, x, realised, estimated, names))
    shown = (set(bounds) & measured) or set(sorted(measured)[:1])
    series: list[Series] = []
    for version, x, realised, estimated, names in found:
        for metric in names:
            hidden = metric not in shown
            ys = [_number(d.get(metric)) for d in realised]
            if any(y is not None for y in ys):
                series.append(Series(f"{version} {metric} realised", x, ys, hidden=hidden))
            est = [d.get(metric) or {} for d in estimated]
            if any(_number(e.get("value")) is not None for e in est):
                values = [_number(e.get("value")) for e in est]
                name = f"{version} {metric} estimated"
                series.append(Series(name, x, values, dash=True, hidden=hidden))
                for edge in ("low", "high"):
                    edges = [_number(e.get(edge)) for e in est]
                    name = f"{version} {metric} estimate {edge}"
                    series.append(Series(name, x, edges, dash=True, hidden=True))
    if ctx.runs:
        x = [ctx.runs[0].at.isoformat(), ctx.runs[-1].at.isoformat()]
        for metric, sides in sorted(bounds.items()):
            if metric not in measured:
                continue
            hidden = metric not in shown
            for side, value in sorted(sides.items()):
                name = f"{metric} scorecard {side}"
                series.append(Series(name, x, [value, value], dash=True, hidden=hidden))
    note = None if series else (_NO_RUNS if not ctx.runs else "No run had labels or an estimate.")
    return Chart(panel, series=series, annotations=ctx.annotations, note=note)


def labels_chart(ctx: ChartContext) -> Chart:
    """Each run's label coverage (share of its window's predictions with a label), by version."""
    panel = panel_named("labels")
    series: list[Series] = []
    lag: float | None = None
    for version, runs in _by_version(ctx).items():
        x = [r.at.isoformat() for r in runs]
        ys = [_number((r.result.get("performance") or {}).get("coverage")) for r in runs]
        series.append(Series(version, x, [0.0 if y is None else y for y in ys]))
        for run in runs:
            found = _number(
                ((run.result.get("performance") or {}).get("lag_seconds") or {}).get("p50")
            )
            lag = found if found is not None else lag
    if not ctx.runs:
        return Chart(panel, annotations=ctx.annotations, note=_NO_RUNS)
    note = None if lag is None else f"Latest label lag (median): {lag / 3600:.1f} h."
    return Chart(panel, series=series, annotations=ctx.annotations, note=note)


def _by_version(ctx: ChartContext) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for run in ctx.runs:
        grouped.setdefault(run.version, []).append(run)
    return grouped
