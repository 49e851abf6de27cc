"""Metrics agree with scikit-learn, are nan where undefined, and reject bad names."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from shipyard.errors import EvaluationError
from shipyard.evaluation import (
    LOWER_IS_BETTER,
    METRICS,
    Predictions,
    compute_metric,
    metric_names,
    predict,
)
from tests.support.synthetic import (
    FEATURES,
    binary_frame,
    logistic,
    multiclass_frame,
    regression_frame,
    ridge,
    tree_regressor,
)


def test_the_metric_table() -> None:
    assert metric_names("classification") == [
        "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "ece"
    ]  # fmt: skip
    assert metric_names("regression") == ["rmse", "mae", "mape", "r2"]
    assert {"log_loss", "ece", "rmse", "mae", "mape"} == LOWER_IS_BETTER
    assert all(METRICS[name].lower_is_better for name in LOWER_IS_BETTER)
    assert [n for n, m in METRICS.items() if m.needs_probabilities] == [
        "roc_auc", "pr_auc", "log_loss", "ece"
    ]  # fmt: skip


def test_binary_metrics_match_scikit_learn() -> None:
    frame = binary_frame()
    y = frame["y"].to_numpy()
    p = predict(logistic(frame), frame)
    assert p.scores is not None and p.scores.ndim == 1
    expected = {
        "accuracy": skm.accuracy_score(y, p.labels),
        "precision": skm.precision_score(y, p.labels),
        "recall": skm.recall_score(y, p.labels),
        "f1": skm.f1_score(y, p.labels),
        "roc_auc": skm.roc_auc_score(y, p.scores),
        "pr_auc": skm.average_precision_score(y, p.scores),
        "log_loss": skm.log_loss(y, p.scores),
    }
    for name, value in expected.items():
        assert compute_metric(name, y, p) == pytest.approx(value, rel=1e-12), name


def test_multiclass_metrics_match_scikit_learn() -> None:
    frame = multiclass_frame()
    y = frame["y"].to_numpy()
    p = predict(logistic(frame), frame)
    assert p.scores is not None and p.scores.shape == (len(frame), 3)
    assert list(p.classes) == ["a", "b", "c"]  # type: ignore[arg-type]
    onehot = label_binarize(y, classes=["a", "b", "c"])
    expected = {
        "accuracy": skm.accuracy_score(y, p.labels),
        "precision": skm.precision_score(y, p.labels, average="macro"),
        "recall": skm.recall_score(y, p.labels, average="macro"),
        "f1": skm.f1_score(y, p.labels, average="macro"),
        "roc_auc": skm.roc_auc_score(y, p.scores, multi_class="ovr", average="macro"),
        "pr_auc": skm.average_precision_score(onehot, p.scores, average="macro"),
        "log_loss": skm.log_loss(y, p.scores),
    }
    for name, value in expected.items():
        assert compute_metric(name, y, p, task="classification") == pytest.approx(
            value, rel=1e-12
        ), name


def test_regression_metrics_match_scikit_learn() -> None:
    frame = regression_frame()
    y = frame["y"].to_numpy()
    p = predict(tree_regressor(frame), frame)
    assert p.scores is None and p.classes is None
    expected = {
        "rmse": skm.root_mean_squared_error(y, p.labels),
        "mae": skm.mean_absolute_error(y, p.labels),
        "mape": skm.mean_absolute_percentage_error(y, p.labels),
        "r2": skm.r2_score(y, p.labels),
    }
    for name, value in expected.items():
        assert compute_metric(name, y, p, task="regression") == pytest.approx(value), name


def test_string_labels_score_the_second_class_as_positive() -> None:
    y = np.array(["no", "yes", "yes", "no"])
    p = Predictions(np.array(["no", "yes", "no", "no"]), np.array([0.2, 0.9, 0.4, 0.1]),
                    np.array(["no", "yes"]))  # fmt: skip
    assert compute_metric("recall", y, p) == 0.5
    assert compute_metric("precision", y, p) == 1.0
    assert compute_metric("roc_auc", y, p) == 1.0


def test_undefined_metrics_are_nan_not_invented() -> None:
    classes = np.array([0, 1])
    only_negatives = np.zeros(4, dtype=int)
    p = Predictions(np.zeros(4, dtype=int), np.array([0.1, 0.2, 0.3, 0.4]), classes)
    for name in ("roc_auc", "pr_auc", "recall"):
        assert math.isnan(compute_metric(name, only_negatives, p)), name
    assert compute_metric("accuracy", only_negatives, p) == 1.0
    # A multiclass slice where class c never occurs: the macro averages skip it.
    y = np.array(["a", "b", "a", "b"])
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]])
    p3 = Predictions(np.array(["a", "b", "a", "b"]), proba, np.array(["a", "b", "c"]))
    assert compute_metric("recall", y, p3) == 1.0
    assert compute_metric("roc_auc", y, p3) == 1.0
    single = Predictions(np.array([1.0]))
    assert math.isnan(compute_metric("r2", np.array([1.0]), single, task="regression"))


def test_unknown_metric_lists_the_valid_names_for_the_task() -> None:
    p = Predictions(np.array([0, 1]))
    with pytest.raises(EvaluationError, match="Unknown metric 'auc'") as caught:
        compute_metric("auc", [0, 1], p, task="classification")
    assert caught.value.hint is not None
    assert "roc_auc" in caught.value.hint and "rmse" not in caught.value.hint
    with pytest.raises(EvaluationError, match="rmse is a regression metric") as wrong_task:
        compute_metric("rmse", [0, 1], p, task="classification")
    assert "accuracy" in str(wrong_task.value)


def test_probability_metric_on_a_model_without_probabilities() -> None:
    frame = binary_frame(rows=500)
    p = predict(ridge(frame), frame)
    assert p.scores is None and list(p.classes) == [0, 1]  # type: ignore[arg-type]
    assert 0.5 < compute_metric("accuracy", frame["y"], p) <= 1.0
    with pytest.raises(EvaluationError, match="roc_auc needs predicted probabilities"):
        compute_metric("roc_auc", frame["y"], p)


def test_mismatched_lengths_and_unknown_labels_are_evaluation_errors() -> None:
    p = Predictions(np.array([0, 1, 1]), np.array([0.2, 0.8, 0.6]), np.array([0, 1]))
    with pytest.raises(EvaluationError, match="2 true values but 3 predictions"):
        compute_metric("accuracy", [0, 1], p)
    with pytest.raises(EvaluationError, match="Cannot compute log_loss"):
        compute_metric("log_loss", [0, 1, 7], p)


def test_predict_uses_the_signature_columns() -> None:
    frame = binary_frame(rows=300)
    model = logistic(frame, columns=["x2", "x1"])
    shuffled = frame[["region", *reversed(FEATURES), "y"]]
    assert np.array_equal(predict(model, shuffled).labels, predict(model, frame).labels)
    with pytest.raises(EvaluationError, match="lacks the model's input columns: x1"):
        predict(model, frame.drop(columns=["x1"]))
