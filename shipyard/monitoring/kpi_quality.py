"""Model quality per time bucket, for reading a business KPI against: the realised metric.

    metric = quality_metric(config)                        # the scorecard's primary
    points = bucket_quality(rows, metric, task)           # [(bucket, value, n)]
    r, n = pearson(kpi_values, quality_values)

Quality is the model's primary metric (the scorecard's ``primary``, else accuracy for a
classifier and RMSE for a regressor) on the predictions of the bucket whose labels have
arrived, computed by :mod:`shipyard.evaluation.metrics`, so a bucket's number is the one
the scorecard would give on those rows. A metric that needs probabilities falls back to
accuracy when the log has none; a bucket where the metric is undefined (ROC AUC on one
class) is left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.evaluation.metrics import Task

__all__ = ["QualityRow", "bucket_quality", "pearson", "quality_metric"]

QualityRow = tuple[datetime, str, str | None, list[float] | None, str | None]
"""One labelled prediction: bucket, arm, output (JSON), probabilities, label (JSON)."""


def quality_metric(config: Config) -> str:
    """The metric quality is measured in: the scorecard's primary, else a task default."""
    from shipyard.evaluation.evaluate import load_scorecard

    try:
        scorecard = load_scorecard(config)
    except ShipyardError:
        scorecard = None
    if scorecard is not None and scorecard.primary is not None:
        return scorecard.primary.metric
    return "accuracy" if config.model.task == "classification" else "rmse"


def bucket_quality(
    rows: Sequence[QualityRow], metric: str, task: Task
) -> tuple[str, dict[datetime, tuple[float, int]]]:
    """The metric used and its value per bucket: ``{bucket: (value, labelled rows)}``."""
    from shipyard.evaluation.metrics import resolve_metric

    if not rows:
        return metric, {}
    decoded = [
        (bucket, _load(output), probs, _load(label)) for bucket, _, output, probs, label in rows
    ]
    decoded = [row for row in decoded if row[1] is not None and row[3] is not None]
    needs_scores = resolve_metric(metric, task).needs_probabilities
    if needs_scores and any(row[2] is None for row in decoded):
        metric = "accuracy"  # honest fallback: the log has no probabilities to rank by
    classes = _classes(decoded) if task == "classification" else None
    groups: dict[datetime, list[tuple[Any, Any, Any]]] = {}
    for bucket, output, probs, label in decoded:
        groups.setdefault(bucket, []).append((output, probs, label))
    found: dict[datetime, tuple[float, int]] = {}
    for bucket, members in sorted(groups.items()):
        value = _metric(members, metric, task, classes)
        if value is not None:
            found[bucket] = (value, len(members))
    return metric, found


def _metric(
    members: list[tuple[Any, Any, Any]], metric: str, task: Task, classes: np.ndarray | None
) -> float | None:
    from shipyard.monitoring.performance import labelled_performance

    truth = np.asarray([label for _, _, label in members])
    predicted = np.asarray([output for output, _, _ in members])
    scores: np.ndarray | None = None
    if classes is not None and all(p is not None and len(p) == len(classes) for _, p, _ in members):
        matrix = np.asarray([p for _, p, _ in members], dtype=np.float64)
        scores = matrix[:, 1] if len(classes) == 2 else matrix
    try:
        values = labelled_performance(truth, predicted, scores, [metric], task, classes=classes)
    except ShipyardError:
        return None
    value = values[metric]
    return float(value) if math.isfinite(value) else None


def _classes(rows: list[tuple[datetime, Any, Any, Any]]) -> np.ndarray | None:
    """The classes a probability vector is ordered by: sorted, as scikit-learn orders them."""
    seen = {output for _, output, _, _ in rows} | {label for _, _, _, label in rows}
    try:
        return np.asarray(sorted(seen))
    except TypeError:  # labels of mixed types: no order to trust
        return None


def _load(text: str | None) -> Any:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, str | int | float | bool) else None


def pearson(left: Sequence[float], right: Sequence[float]) -> float | None:
    """Pearson's r of two equally long series; None under three points or for a flat one."""
    if len(left) != len(right) or len(left) < 3:
        return None
    x, y = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    return r if math.isfinite(r) else None
