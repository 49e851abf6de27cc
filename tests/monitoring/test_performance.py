"""Labelled performance uses the scorecard's metrics; coverage, lag and concept drift."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from shipyard.config import BandSettings, MetricCriterion, Scorecard, SliceSpec
from shipyard.errors import DataError, EvaluationError
from shipyard.monitoring import Bands
from shipyard.monitoring.performance import (
    BandLike,
    Breach,
    concept_drift,
    label_coverage,
    label_lag,
    labelled_performance,
)

# --- labelled performance -----------------------------------------------------------------


def test_binary_metrics_equal_scikit_learn_on_the_positive_class() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = np.where(rng.random(600) < 1 / (1 + np.exp(-x[:, 0] * 2)), "yes", "no")
    model = LogisticRegression().fit(x[:400], y[:400])
    scores = model.predict_proba(x[400:])[:, 1]
    labels, truth = model.predict(x[400:]), y[400:]
    names = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"]
    values = labelled_performance(truth, labels, scores, names, "classification")
    positive = truth == "yes"
    assert values == pytest.approx(
        {
            "accuracy": skm.accuracy_score(truth, labels),
            "precision": skm.precision_score(truth, labels, pos_label="yes"),
            "recall": skm.recall_score(truth, labels, pos_label="yes"),
            "f1": skm.f1_score(truth, labels, pos_label="yes"),
            "roc_auc": skm.roc_auc_score(positive, scores),
            "pr_auc": skm.average_precision_score(positive, scores),
            "log_loss": skm.log_loss(positive, scores),
        }
    )


def test_multiclass_metrics_are_macro_averages() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(900, 2))
    y = np.digitize(x[:, 0] + 0.5 * rng.normal(size=900), [-0.5, 0.5])
    model = LogisticRegression().fit(x[:600], y[:600])
    proba, labels = model.predict_proba(x[600:]), model.predict(x[600:])
    values = labelled_performance(
        y[600:], labels, proba, ["f1", "roc_auc"], "classification", classes=model.classes_
    )
    assert values["f1"] == pytest.approx(skm.f1_score(y[600:], labels, average="macro"))
    assert values["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y[600:], proba, multi_class="ovr", average="macro")
    )


def test_regression_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 2))
    y = x @ [2.0, -1.0] + rng.normal(size=300)
    predicted = LinearRegression().fit(x, y).predict(x)
    values = labelled_performance(y, predicted, None, ["rmse", "mae", "r2"], "regression")
    assert values == pytest.approx(
        {
            "rmse": skm.root_mean_squared_error(y, predicted),
            "mae": skm.mean_absolute_error(y, predicted),
            "r2": skm.r2_score(y, predicted),
        }
    )


def test_a_single_class_window_gives_nan_where_the_scorecard_does() -> None:
    values = labelled_performance(
        [1, 1, 1],
        [1, 0, 1],
        [0.9, 0.4, 0.8],
        ["roc_auc", "recall", "precision"],
        "classification",
        classes=[0, 1],
    )
    assert np.isnan(values["roc_auc"])
    assert values["recall"] == pytest.approx(2 / 3)
    assert values["precision"] == 1.0


def test_wrong_metrics_are_refused_as_the_scorecard_refuses_them() -> None:
    with pytest.raises(EvaluationError, match="regression metric"):
        labelled_performance([1, 0], [1, 0], None, ["rmse"], "classification")
    with pytest.raises(EvaluationError, match="needs predicted probabilities"):
        labelled_performance([1, 0], [1, 0], None, ["roc_auc"], "classification")


# --- coverage and lag ---------------------------------------------------------------------


def test_label_coverage() -> None:
    coverage = label_coverage(5000, 3100)
    assert coverage.share == pytest.approx(0.62)
    assert coverage.to_dict() == {"predictions": 5000, "labelled": 3100, "share": 0.62}
    assert label_coverage(0, 0).to_dict()["share"] is None
    with pytest.raises(DataError, match="not a coverage"):
        label_coverage(10, 11)


def test_label_lag_quantiles_in_seconds() -> None:
    start = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    predicted = [start + timedelta(minutes=i) for i in range(101)]
    labelled = [p + timedelta(seconds=s) for p, s in zip(predicted, range(101), strict=True)]
    lag = label_lag(predicted, labelled)
    assert (lag.n, lag.p50, lag.p95, lag.max, lag.negative) == (101, 50.0, 95.0, 100.0, 0)


def test_label_lag_skips_unlabelled_rows_and_converts_time_zones() -> None:
    paris = timezone(timedelta(hours=1))
    predicted = pd.Series(pd.to_datetime(["2024-01-01 00:00"] * 3))
    labelled = [datetime(2024, 1, 1, 3, 0, tzinfo=paris), None, datetime(2023, 12, 31, 23, 59)]
    lag = label_lag(predicted, labelled)
    # 03:00+01:00 is 02:00 UTC: two hours; the second row has no label; the third is early.
    assert lag.n == 2
    assert lag.max == 7200.0
    assert lag.negative == 1
    numeric = label_lag(np.array([0.0, 10.0, 20.0]), np.array([5.0, np.nan, 30.0]))
    assert (numeric.n, numeric.p50, numeric.max) == (2, 7.5, 10.0)
    datetimes = np.array(["2024-01-01T00:00:00", "NaT"], dtype="datetime64[ns]")
    lagged = datetimes + np.timedelta64(1500, "ms")
    assert label_lag(datetimes, lagged).max == 1.5


def test_label_lag_of_no_labels_and_mismatched_rows() -> None:
    empty = label_lag([], [])
    assert empty.n == 0 and np.isnan(empty.p95)
    assert json.dumps(empty.to_dict()) == (
        '{"n": 0, "p50": null, "p95": null, "max": null, "negative": 0}'
    )
    with pytest.raises(DataError, match="2 prediction times but 1 label"):
        label_lag([1.0, 2.0], [3.0])


# --- concept drift ------------------------------------------------------------------------


def test_a_metric_below_its_scorecard_floor_is_a_retrain_breach() -> None:
    scorecard = Scorecard(
        primary=MetricCriterion(metric="roc_auc", min=0.85),
        metrics=[
            MetricCriterion(metric="recall", min=0.6),
            MetricCriterion(metric="recall", min=0.99, slice=SliceSpec(column="tier", value="vip")),
        ],
    )
    breaches = concept_drift({"roc_auc": 0.84, "recall": 0.7}, scorecard)
    assert breaches == [Breach("roc_auc", 0.84, "floor", "retrain", 0.85)]
    assert concept_drift({"roc_auc": 0.85, "recall": 0.6}, scorecard) == []
    assert concept_drift({"roc_auc": float("nan")}, scorecard) == []
    paused = concept_drift({"roc_auc": 0.5}, scorecard, floor_level="pause")
    assert paused[0].level == "pause"


def test_an_error_metric_above_its_ceiling_is_a_breach() -> None:
    criteria = [MetricCriterion(metric="rmse", max=2.0)]
    assert concept_drift({"rmse": 2.5}, criteria)[0].limit == 2.0
    assert concept_drift({"rmse": 1.5}, criteria) == []


def test_bands_classify_degradation_from_the_baseline_most_severe_first() -> None:
    bands: dict[str, BandLike] = {
        "roc_auc": Bands(0.02, 0.05, 0.10),
        "rmse": BandSettings(inspect=0.1, retrain=0.3, pause=0.6),
        "recall": {"inspect": 0.05, "retrain": 0.1, "pause": 0.2},
    }
    baseline = {"roc_auc": 0.90, "rmse": 1.0, "recall": 0.8}
    values = {"roc_auc": 0.87, "rmse": 1.7, "recall": 0.79}
    breaches = concept_drift(values, bands=bands, baseline=baseline)
    assert [(b.metric, b.level) for b in breaches] == [("rmse", "pause"), ("roc_auc", "inspect")]
    assert breaches[1].degradation == pytest.approx(0.03)
    assert breaches[1].limit == 0.02
    # An improvement is never a breach, whichever way the metric points.
    better = {"roc_auc": 0.95, "rmse": 0.5, "recall": 0.9}
    assert concept_drift(better, bands=bands, baseline=baseline) == []
    signal = breaches[0].to_dict()
    assert signal["name"] == "performance:rmse" and signal["score"] == 1.7
    with pytest.raises(DataError, match="no baseline"):
        concept_drift(values, bands=bands, baseline={"rmse": 1.0})
