"""Labelled performance: the scorecard's metrics on the rows whose labels have arrived.

    values = labelled_performance(y, labels, scores, ["roc_auc", "recall"], "classification")
    coverage = label_coverage(n_predictions=5000, n_labelled=3100)     # share 0.62
    lag = label_lag(predicted_at, labelled_at)                          # p50 / p95 / max s
    arrival = label_arrival(arrived_at, now=now)                        # labels per hour
    eta = labels_expected(30, 50, arrival)                              # seconds until 50
    breaches = concept_drift(values, scorecard, bands={"roc_auc": Bands(0.02, 0.05, 0.1)},
                             baseline={"roc_auc": 0.91})

Metrics are computed by :mod:`shipyard.evaluation.metrics`, so a window's ``roc_auc`` is
the number the scorecard would give on the same rows. Below ``min_labelled`` labelled
rows performance is unknown, and :func:`labels_expected` says when enough labels
should have arrived at the recent rate (or why they never will). Concept drift is a labelled metric
that falls below its scorecard floor (or above its ceiling, for errors), or whose
degradation from its baseline (the version's value on the golden set) reaches a band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from shipyard.config import BandSettings, MetricCriterion, Scorecard
from shipyard.errors import DataError
from shipyard.evaluation.metrics import Task, compute_metric, resolve_metric
from shipyard.evaluation.predictions import Predictions
from shipyard.levels import Level, rank
from shipyard.monitoring.results import Bands

__all__ = [
    "BandLike",
    "Breach",
    "LabelArrival",
    "LabelCoverage",
    "LabelLag",
    "LabelsExpected",
    "concept_drift",
    "label_arrival",
    "label_coverage",
    "label_lag",
    "label_summary",
    "labelled_performance",
    "labels_expected",
]

BandLike: TypeAlias = Bands | BandSettings | Mapping[str, float]
# Datetimes (naive = UTC), or seconds since the epoch.
TimesLike: TypeAlias = ArrayLike | Sequence[Any] | pd.Series | pd.Index


def labelled_performance(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    y_score: ArrayLike | None,
    metrics: Sequence[str],
    task: Task,
    *,
    classes: ArrayLike | None = None,
) -> dict[str, float]:
    """The named scorecard metrics on labelled rows, by ``shipyard.evaluation.metrics``.

    ``y_score`` is the positive-class probability (binary), the probability matrix
    (multi-class) or ``None``; ``classes`` the model's ``classes_``, which a window
    holding a single class needs to be scored as the scorecard scores it. A metric not
    defined on these rows is ``nan``.
    """
    predictions = Predictions(
        labels=np.asarray(y_pred),
        scores=None if y_score is None else np.asarray(y_score, dtype=np.float64),
        classes=None if classes is None else np.asarray(classes),
    )
    truth = np.asarray(y_true)
    return {name: compute_metric(name, truth, predictions, task=task) for name in metrics}


@dataclass(frozen=True)
class LabelCoverage:
    """How many of a window's predictions have a label."""

    predictions: int
    labelled: int

    @property
    def share(self) -> float:
        """Labelled predictions as a share of all (``nan`` for an empty window)."""
        return self.labelled / self.predictions if self.predictions else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``share`` is ``None`` for an empty window)."""
        share = self.share
        return {**asdict(self), "share": None if np.isnan(share) else share}


def label_coverage(n_predictions: int, n_labelled: int) -> LabelCoverage:
    """The label coverage of a window of ``n_predictions`` with ``n_labelled`` labels joined."""
    if n_predictions < 0 or not 0 <= n_labelled <= n_predictions:
        raise DataError(
            f"{n_labelled} labelled of {n_predictions} predictions is not a coverage.",
            hint="Count labels joined to the window's predictions by request id.",
        )
    return LabelCoverage(int(n_predictions), int(n_labelled))


@dataclass(frozen=True)
class LabelLag:
    """Seconds from prediction to label, over the ``n`` labelled predictions.

    ``negative`` counts labels stamped before their prediction (a clock or join
    problem); they are kept in the quantiles, so they show.
    """

    n: int
    p50: float
    p95: float
    max: float
    negative: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``None`` for the quantiles of no rows)."""
        return {
            k: None if isinstance(v, float) and np.isnan(v) else v for k, v in asdict(self).items()
        }


def label_lag(prediction_times: TimesLike, label_times: TimesLike) -> LabelLag:
    """Label lag quantiles in seconds; rows without a label time (NaT / NaN) are skipped.

    Times are datetimes (naive ones are taken as UTC, aware ones converted) or numbers
    of seconds since the epoch; both sides must be of one kind.
    """
    predicted, labelled = _seconds(prediction_times), _seconds(label_times)
    if len(predicted) != len(labelled):
        raise DataError(
            f"{len(predicted)} prediction times but {len(labelled)} label times.",
            hint="Pass the two times of each labelled prediction, row by row.",
        )
    lag = labelled - predicted
    lag = lag[np.isfinite(lag)]
    if len(lag) == 0:
        return LabelLag(0, float("nan"), float("nan"), float("nan"))
    p50, p95 = np.quantile(lag, [0.5, 0.95])
    return LabelLag(len(lag), float(p50), float(p95), float(lag.max()), int((lag < 0).sum()))


@dataclass(frozen=True)
class LabelArrival:
    """``labels`` arrived over the ``seconds`` up to now; ``last_at`` the newest of them
    (or of any label, when none arrived in the period)."""

    labels: int
    seconds: float
    last_at: datetime | None = None

    @property
    def per_hour(self) -> float:
        """Labels per hour (``nan`` over an empty period)."""
        return self.labels / self.seconds * 3600 if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, with ``per_hour``."""
        rate = self.per_hour
        return {
            "labels": self.labels,
            "seconds": self.seconds,
            "per_hour": None if np.isnan(rate) else rate,
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
        }


def label_arrival(
    arrived_at: TimesLike,
    *,
    now: datetime,
    start: datetime | None = None,
    last_at: datetime | None = None,
) -> LabelArrival:
    """The arrival rate of the labels that arrived at ``arrived_at``.

    Over ``[start, now]`` when the period has a start (a ``since:`` window), else from
    the first arrival to now: with arrivals every Δ seconds, the rate is 1/Δ. Measuring
    up to now, not to the last arrival, lets the rate fall when labels stop coming.
    ``last_at`` is the newest label known elsewhere, kept when none is in ``arrived_at``.
    """
    seconds = _seconds(arrived_at)
    seconds = seconds[np.isfinite(seconds)]
    end = now.timestamp()
    if len(seconds):
        first = start.timestamp() if start is not None else float(seconds.min())
        newest = datetime.fromtimestamp(float(seconds.max()), tz=now.tzinfo)
        return LabelArrival(len(seconds), max(end - first, 0.0), newest)
    period = end - start.timestamp() if start is not None else 0.0
    return LabelArrival(0, max(period, 0.0), last_at)


@dataclass(frozen=True)
class LabelsExpected:
    """When a performance window should hold ``needed`` labelled rows.

    ``seconds`` is None when it cannot be said (no label arrives, or the window can
    never hold that many); ``reason`` says which, in words for the user.
    """

    labelled: int
    needed: int
    seconds: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)


def labels_expected(
    labelled: int,
    needed: int,
    arrival: LabelArrival,
    *,
    capacity: int | None = None,
    span: timedelta | None = None,
) -> LabelsExpected:
    """How long until ``needed`` labelled rows, at ``arrival``'s rate.

    ``capacity`` bounds a ``last:N`` window (it never holds more than N); ``span`` is the
    length of a rolling ``since:DURATION`` window, which at a steady rate r holds about
    r × span labels however long one waits.
    """
    short = needed - labelled
    if short <= 0:
        return LabelsExpected(labelled, needed, 0.0, "enough labelled predictions")
    if capacity is not None and capacity < needed:
        return LabelsExpected(
            labelled,
            needed,
            None,
            f"the performance window holds at most {capacity} labelled predictions, fewer "
            f"than monitoring.min_labelled {needed}: widen the window or lower min_labelled",
        )
    rate = arrival.labels / arrival.seconds if arrival.seconds > 0 else 0.0
    if rate <= 0:
        if arrival.last_at is None:
            why = "no label has arrived for this version yet, so no arrival rate is known"
        else:
            why = (
                "no label arrived in the performance window's period (the last one at "
                f"{arrival.last_at:%Y-%m-%d %H:%M} UTC), so no arrival rate is known"
            )
        return LabelsExpected(
            labelled,
            needed,
            None,
            f"{why}: send labels (POST /v1/feedback or `shipyard labels ingest`)",
        )
    if span is not None and rate * span.total_seconds() < needed:
        held = rate * span.total_seconds()
        return LabelsExpected(
            labelled,
            needed,
            None,
            f"at {rate * 3600:.3g} labels per hour a window of {span} holds about "
            f"{held:.0f} labelled predictions, fewer than {needed}: widen "
            "monitoring.performance_window or lower monitoring.min_labelled",
        )
    seconds = short / rate
    return LabelsExpected(
        labelled,
        needed,
        seconds,
        f"{short} more labels expected in about {_duration(seconds)} at "
        f"{rate * 3600:.3g} labels per hour",
    )


def label_summary(performance: Mapping[str, Any]) -> list[str]:
    """A monitor run's label facts in plain lines, as the CLI and the report show them.

    ``performance`` is a run's ``performance`` mapping: its window, labelled and needed
    rows, coverage of both windows, lag, arrival rate and expected time.
    """
    labelled, needed = int(performance.get("labelled") or 0), performance.get("needed")
    window = performance.get("window", "the performance window")
    lines = []
    if needed is not None and labelled < int(needed):
        expected = (performance.get("expected") or {}).get("reason", "")
        lines.append(
            f"Performance UNKNOWN: {labelled} labelled predictions in the performance "
            f"window ({window}), {needed} needed; {expected}."
        )
    else:
        lines.append(f"Performance measured on {labelled} labelled predictions ({window}).")
    cover = []
    for name in ("feature window", "performance window"):
        found = performance.get(name.replace(" ", "_")) or {}
        if found.get("share") is not None:
            cover.append(
                f"{name} {found['share']:.1%} ({found['labelled']} of {found['predictions']})"
            )
    if cover:
        lines.append("Label coverage: " + ", ".join(cover) + ".")
    lag = performance.get("lag_seconds") or {}
    arrival = performance.get("arrival") or {}
    facts = []
    if lag.get("n"):
        facts.append(
            f"lag p50 {_duration(lag['p50'])}, p95 {_duration(lag['p95'])}, "
            f"max {_duration(lag['max'])}"
        )
    if arrival.get("per_hour") is not None:
        facts.append(f"{arrival['per_hour']:.3g} labels per hour arriving")
    if facts:
        lines.append("Labels: " + "; ".join(facts) + ".")
    return lines


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h`` or ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass(frozen=True)
class Breach:
    """A labelled metric past its scorecard limit (``kind="floor"``) or a band (``"band"``).

    For a floor, ``limit`` is the scorecard's ``min`` (or ``max`` for an error metric);
    for a band, ``degradation`` is how far the metric moved the wrong way from
    ``baseline`` and ``limit`` the level it reached.
    """

    metric: str
    value: float
    kind: Literal["floor", "band"]
    level: Level
    limit: float
    baseline: float | None = None
    degradation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping, with a signal ``name`` and ``score`` as monitoring reports them."""
        return {"name": f"performance:{self.metric}", "score": self.value, **asdict(self)}


def concept_drift(
    values: Mapping[str, float],
    criteria: Scorecard | Sequence[MetricCriterion] = (),
    *,
    bands: Mapping[str, BandLike] | None = None,
    baseline: Mapping[str, float] | None = None,
    floor_level: Level = "retrain",
) -> list[Breach]:
    """Every breach of the labelled ``values``, most severe first.

    A criterion without a slice applies to ``values[criterion.metric]``: below ``min``
    or above ``max`` is a breach at ``floor_level`` (the version no longer passes its
    own scorecard: retrain, by default). ``bands[metric]`` holds inspect / retrain /
    pause levels of *degradation* from ``baseline[metric]`` (a drop for a
    higher-is-better metric, a rise for an error), classified as feature bands are. A
    ``nan`` value (a metric undefined on the labelled rows) breaches nothing.
    """
    listed = _criteria(criteria)
    breaches: list[Breach] = []
    for criterion in listed:
        value = values.get(criterion.metric)
        if value is None or np.isnan(value) or criterion.slice is not None:
            continue
        if criterion.min is not None and value < criterion.min:
            breaches.append(Breach(criterion.metric, value, "floor", floor_level, criterion.min))
        if criterion.max is not None and value > criterion.max:
            breaches.append(Breach(criterion.metric, value, "floor", floor_level, criterion.max))
    for metric, levels in (bands or {}).items():
        value = values.get(metric)
        if value is None or np.isnan(value):
            continue
        if baseline is None or metric not in baseline:
            raise DataError(
                f"A band is set for {metric} but it has no baseline to degrade from.",
                hint="Pass baseline={metric: value on the golden set}.",
            )
        start = float(baseline[metric])
        lower_is_better = resolve_metric(metric).lower_is_better
        degradation = value - start if lower_is_better else start - value
        as_bands = _bands(levels)
        level = as_bands.classify(degradation)
        if level != "ok":
            limit = getattr(as_bands, level)
            breaches.append(Breach(metric, value, "band", level, limit, start, degradation))
    return sorted(breaches, key=lambda breach: rank(breach.level), reverse=True)


def _criteria(criteria: Scorecard | Sequence[MetricCriterion]) -> list[MetricCriterion]:
    if isinstance(criteria, Scorecard):
        primary = [criteria.primary] if criteria.primary is not None else []
        return [*primary, *criteria.metrics]
    return list(criteria)


def _bands(levels: BandLike) -> Bands:
    if isinstance(levels, Bands):
        return levels
    if isinstance(levels, BandSettings):
        return Bands(levels.inspect, levels.retrain, levels.pause)
    return Bands(float(levels["inspect"]), float(levels["retrain"]), float(levels["pause"]))


def _seconds(times: TimesLike) -> np.ndarray:
    """Times as float seconds since the epoch, NaN where missing."""
    if isinstance(times, pd.Series | pd.Index):
        series = pd.Series(times)
    else:
        array = np.asarray(times)
        if array.dtype.kind == "M":
            series = pd.Series(array)
        elif array.dtype.kind in "iuf":
            return array.astype(np.float64)
        else:
            series = pd.Series(array, dtype=object)
    if series.dtype.kind in "iuf":
        return series.to_numpy(dtype=np.float64)
    stamps = pd.to_datetime(series, utc=True)
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64)
