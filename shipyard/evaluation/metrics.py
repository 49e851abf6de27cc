"""The metrics a scorecard can name, computed with scikit-learn's functions.

Binary classifiers are scored on the positive class ``classes[1]`` (scikit-learn orders
``classes_`` so that this is the larger label, e.g. ``1`` or ``True``). Multiclass
precision, recall and F1 are macro averages; ``roc_auc`` and ``pr_auc`` are macro
averages over the one-vs-rest columns. A metric that is not defined on the rows given
(no positive example, a single class …) is ``nan``, never an invented 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from shipyard.errors import EvaluationError
from shipyard.evaluation.calibration import expected_calibration_error
from shipyard.evaluation.predictions import Predictions

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "Metric",
    "Task",
    "compute_metric",
    "metric_names",
    "resolve_metric",
]

Task = Literal["classification", "regression"]
MetricFunction = Callable[[np.ndarray, Predictions], float]
NAN = float("nan")

LOWER_IS_BETTER = frozenset({"log_loss", "ece", "rmse", "mae", "mape"})


@dataclass(frozen=True)
class Metric:
    """A named metric: its task, whether it needs probabilities, and how it is computed."""

    name: str
    task: Task
    needs_probabilities: bool
    description: str
    function: MetricFunction = field(repr=False, compare=False)

    @property
    def lower_is_better(self) -> bool:
        """Whether smaller values are better (errors and losses)."""
        return self.name in LOWER_IS_BETTER


def _classes(y: np.ndarray, predictions: Predictions) -> np.ndarray:
    if predictions.classes is not None:
        return predictions.classes
    return np.unique(np.concatenate([y, predictions.labels]))


def _averaged(function: Callable[..., Any]) -> MetricFunction:
    """precision / recall / f1: binary on classes[1], macro over classes otherwise."""

    def compute(y: np.ndarray, predictions: Predictions) -> float:
        classes = _classes(y, predictions)
        if len(classes) == 2:
            options: dict[str, Any] = {"average": "binary", "pos_label": classes[1]}
        else:
            options = {"average": "macro", "labels": classes}
        # nan, not 0, when a class has no support: macro averages then skip it.
        return float(function(y, predictions.labels, zero_division=np.nan, **options))

    return compute


def _accuracy(y: np.ndarray, predictions: Predictions) -> float:
    return float(skm.accuracy_score(y, predictions.labels))


def _one_vs_rest(y: np.ndarray, predictions: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """Indicator matrix of the true classes and the matching probability matrix."""
    classes = _classes(y, predictions)
    proba = predictions.probabilities
    assert proba is not None
    if len(classes) == 2:
        positive = (y == classes[1]).astype(int)
        return positive[:, None], proba[:, 1:]
    return label_binarize(y, classes=classes), proba


def _ranking(function: Callable[..., Any], *, needs_negatives: bool) -> MetricFunction:
    """roc_auc / pr_auc: binary, or the macro average over one-vs-rest columns."""

    def compute(y: np.ndarray, predictions: Predictions) -> float:
        truth, proba = _one_vs_rest(y, predictions)
        positives = truth.sum(axis=0)
        defined = positives > 0
        if needs_negatives:
            defined &= positives < len(y)
        if not defined.any():
            return NAN
        truth, proba = truth[:, defined], proba[:, defined]
        if truth.shape[1] == 1:
            return float(function(truth[:, 0], proba[:, 0]))
        return float(function(truth, proba, average="macro"))

    return compute


def _log_loss(y: np.ndarray, predictions: Predictions) -> float:
    return float(skm.log_loss(y, predictions.probabilities, labels=_classes(y, predictions)))


def _ece(y: np.ndarray, predictions: Predictions) -> float:
    assert predictions.scores is not None
    return expected_calibration_error(y, predictions.scores, _classes(y, predictions))


def _regression(function: Callable[..., Any], *, min_rows: int = 1) -> MetricFunction:
    def compute(y: np.ndarray, predictions: Predictions) -> float:
        if len(y) < min_rows:
            return NAN
        return float(function(y.astype(float), predictions.labels.astype(float)))

    return compute


def _metric(name: str, task: Task, function: MetricFunction, description: str) -> Metric:
    needs = name in {"roc_auc", "pr_auc", "log_loss", "ece"}
    return Metric(name, task, needs, description, function)


METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        m.name: m
        for m in [
            _metric("accuracy", "classification", _accuracy, "Share of rows labelled right."),
            _metric(
                "precision",
                "classification",
                _averaged(skm.precision_score),
                "Share of predicted positives that are positive (macro for multiclass).",
            ),
            _metric(
                "recall",
                "classification",
                _averaged(skm.recall_score),
                "Share of positives found (macro for multiclass).",
            ),
            _metric(
                "f1",
                "classification",
                _averaged(skm.f1_score),
                "Harmonic mean of precision and recall (macro for multiclass).",
            ),
            _metric(
                "roc_auc",
                "classification",
                _ranking(skm.roc_auc_score, needs_negatives=True),
                "Area under the ROC curve (one-vs-rest macro for multiclass).",
            ),
            _metric(
                "pr_auc",
                "classification",
                _ranking(skm.average_precision_score, needs_negatives=False),
                "Average precision (one-vs-rest macro for multiclass).",
            ),
            _metric("log_loss", "classification", _log_loss, "Cross-entropy of the probabilities."),
            _metric(
                "ece",
                "classification",
                _ece,
                "Expected calibration error of the top-label probability (10 bins).",
            ),
            _metric(
                "rmse",
                "regression",
                _regression(skm.root_mean_squared_error),
                "Root mean squared error.",
            ),
            _metric(
                "mae", "regression", _regression(skm.mean_absolute_error), "Mean absolute error."
            ),
            _metric(
                "mape",
                "regression",
                _regression(skm.mean_absolute_percentage_error),
                "Mean absolute percentage error, as a fraction (0.05 is 5 %).",
            ),
            _metric(
                "r2",
                "regression",
                _regression(skm.r2_score, min_rows=2),
                "Coefficient of determination.",
            ),
        ]
    }
)


def metric_names(task: Task | None = None) -> list[str]:
    """The metric names for ``task`` (every name when ``None``)."""
    return [name for name, metric in METRICS.items() if task is None or metric.task == task]


def resolve_metric(name: str, task: Task | None = None) -> Metric:
    """The metric called ``name``, checked against ``task``."""
    metric = METRICS.get(name)
    if metric is not None and (task is None or metric.task == task):
        return metric
    if metric is not None:
        raise EvaluationError(
            f"{name} is a {metric.task} metric; this is a {task} model.",
            hint=f"Use one of the {task} metrics: {', '.join(metric_names(task))}.",
        )
    valid = metric_names(task)
    scope = f"{task} metrics" if task is not None else "metrics"
    raise EvaluationError(
        f"Unknown metric {name!r}.",
        hint=f"Use one of the {scope}: {', '.join(valid)}.",
    )


def compute_metric(
    name: str, y_true: Any, predictions: Predictions, *, task: Task | None = None
) -> float:
    """The value of metric ``name`` for ``predictions`` against ``y_true``.

    ``nan`` when the metric is not defined on these rows (e.g. ``roc_auc`` on rows of a
    single class). Raises :class:`EvaluationError` for an unknown metric, a metric of
    the other task, or a probability metric on a model without probabilities.
    """
    metric = resolve_metric(name, task)
    y = np.asarray(y_true)
    if len(y) != len(predictions):
        raise EvaluationError(
            f"{len(y)} true values but {len(predictions)} predictions.",
            hint="Pass the labels of exactly the rows that were predicted.",
        )
    if len(y) == 0:
        raise EvaluationError(f"Cannot compute {name} on no rows.", hint="Pass some rows.")
    if metric.needs_probabilities and predictions.scores is None:
        raise EvaluationError(
            f"{name} needs predicted probabilities, and the model has no predict_proba.",
            hint="Use a metric on labels (accuracy, precision, recall, f1), or log a "
            "classifier with predict_proba.",
        )
    try:
        return metric.function(y, predictions)
    except ValueError as exc:
        raise EvaluationError(
            f"Cannot compute {name}: {exc}",
            hint="Check that the target column holds the labels or values the model "
            "was trained to predict.",
        ) from None
