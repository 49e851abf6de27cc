"""Model quality per time bucket, for reading a business KPI against: the realised metric.

    metric = quality_metric(config)                         # the scorecard's primary
    used, overall, per_arm = bucket_quality(table, metric, "classification")
    r = pearson(kpi_values, quality_values)

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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.evaluation.metrics import Task

__all__ = ["BucketValues", "bucket_quality", "pearson", "quality_metric"]

BucketValues = dict[datetime, tuple[float, int]]
"""A value per bucket start, with the number of rows behind it."""


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
    table: pa.Table, metric: str, task: Task
) -> tuple[str, BucketValues, dict[str, BucketValues]]:
    """The metric used, its value per bucket over the live arms, and per arm.

    ``table`` holds one labelled prediction a row: ``bucket`` (a timestamp), ``arm``,
    ``output`` and ``label`` (JSON text, or doubles for a regressor) and
    ``probabilities`` (a list of doubles, or null).
    """
    from shipyard.evaluation.metrics import resolve_metric

    if table.num_rows == 0:
        return metric, {}, {}
    (predicted, predicted_known), (truth, truth_known) = (
        _values(table["output"]),
        _values(table["label"]),
    )
    known = predicted_known & truth_known
    scores = _probabilities(table["probabilities"])
    classes = _classes(predicted[known], truth[known]) if task == "classification" else None
    if scores is not None and (classes is None or scores.shape[1] != len(classes)):
        scores = None  # probabilities over classes this window does not show: no order to trust
    if resolve_metric(metric, task).needs_probabilities and scores is None:
        metric = "accuracy"  # no probabilities to rank by; the result names the metric used
    if scores is not None and scores.shape[1] == 2:
        scores = scores[:, 1]
    buckets = table["bucket"].to_numpy()
    arms = table["arm"].to_numpy(zero_copy_only=False).astype(object)

    def per_bucket(mask: np.ndarray) -> BucketValues:
        rows = np.nonzero(mask & known)[0]
        found: BucketValues = {}
        for start in np.unique(buckets[rows]):
            chosen = rows[buckets[rows] == start]
            value = _metric(
                truth[chosen],
                predicted[chosen],
                None if scores is None else scores[chosen],
                metric,
                task,
                classes,
            )
            if value is not None:
                found[_moment(start)] = (value, len(chosen))
        return found

    live = arms != "shadow"
    overall = per_bucket(live)
    names = sorted(set(arms.tolist()))
    only = [name for name in names if name != "shadow"]
    per_arm = {  # one live arm (no split) is the overall series: computed once
        str(arm): overall if only == [arm] else per_bucket(arms == arm) for arm in names
    }
    return metric, overall, per_arm


def _values(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Decoded JSON values and where they are known; each distinct text is decoded once."""
    if pa.types.is_floating(column.type):  # a regressor's, cast by the query
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        return values, ~np.isnan(values)
    distinct = pc.unique(column).to_pylist()
    decoded = np.asarray([_load(text) for text in distinct] + [None], dtype=object)
    valid = np.asarray([value is not None for value in decoded], dtype=bool)
    index = pc.fill_null(pc.index_in(column, pa.array(distinct, column.type)), len(distinct))
    positions = index.to_numpy(zero_copy_only=False)
    return decoded[positions], valid[positions]


def _probabilities(column: pa.ChunkedArray) -> np.ndarray | None:
    """The probability matrix, when every row has one of the same width."""
    if column.null_count:
        return None
    lengths = pc.unique(pc.list_value_length(column)).to_pylist()
    if len(lengths) != 1 or not lengths[0]:
        return None
    flat = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.float64)
    return flat.reshape(-1, int(lengths[0]))


def _metric(
    truth: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray | None,
    metric: str,
    task: Task,
    classes: np.ndarray | None,
) -> float | None:
    from shipyard.monitoring.performance import labelled_performance

    if task == "regression":
        truth, predicted = truth.astype(np.float64), predicted.astype(np.float64)
    elif classes is not None and classes.dtype != object:
        truth, predicted = truth.astype(classes.dtype), predicted.astype(classes.dtype)
    try:
        values = labelled_performance(truth, predicted, scores, [metric], task, classes=classes)
    except ShipyardError:
        return None
    value = values[metric]
    return float(value) if math.isfinite(value) else None


def _classes(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
    """The classes a probability vector is ordered by: sorted, as scikit-learn orders them."""
    seen = set(predicted.tolist()) | set(truth.tolist())
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


def _moment(start: Any) -> datetime:
    """A bucket start from NumPy (datetime64 in UTC) as an aware UTC datetime."""
    micros = int(np.datetime64(start, "us").astype("int64"))
    return datetime.fromtimestamp(micros / 1e6, tz=UTC)


def pearson(left: Sequence[float], right: Sequence[float]) -> float | None:
    """Pearson's r of two equally long series; None under three points or for a flat one."""
    if len(left) != len(right) or len(left) < 3:
        return None
    x, y = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    r = float(np.corrcoef(x, y)[0, 1])
    return r if math.isfinite(r) else None
