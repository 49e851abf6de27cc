"""measure(): every number a scorecard asks for, on all rows, slices and groups."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from shipyard.errors import EvaluationError
from shipyard.evaluation import compute_metric, predict
from tests.support.synthetic import (
    binary_frame,
    card,
    logistic,
    measured,
    multiclass_frame,
    regression_frame,
    ridge,
    tree_regressor,
)

SLICED = card(
    primary={"metric": "roc_auc", "min": 0.7},
    metrics=[
        {"metric": "recall", "slice": {"column": "region", "value": "west"}, "min": 0.5},
        {"metric": "accuracy", "slice": {"query": "x1 < 0 and region != 'north'"}},
        {"metric": "f1"},
    ],
    calibration={"max_ece": 0.1, "bins": 15},
    fairness=[{"metric": "recall", "column": "region", "max_gap": 0.2}],
)


def test_metrics_overall_on_slices_and_groups() -> None:
    frame = binary_frame()
    model = logistic(frame)
    m = measured(model, frame, SLICED)
    p = predict(model, frame)
    y = frame["y"].to_numpy()
    assert list(m.metrics) == ["accuracy", "roc_auc", "pr_auc", "log_loss", "ece", "f1"]
    assert m.primary == "roc_auc" and m.rows == len(frame) and m.ece_bins == 15
    assert m.metrics["roc_auc"] == skm.roc_auc_score(y, p.scores)  # type: ignore[arg-type]
    west = (frame["region"] == "west").to_numpy()
    assert m.slices["region == 'west'"].rows == west.sum()
    assert m.value("recall", "region == 'west'") == skm.recall_score(y[west], p.labels[west])
    query = frame.eval("x1 < 0 and region != 'north'").to_numpy()
    assert m.value("accuracy", "x1 < 0 and region != 'north'") == pytest.approx(
        skm.accuracy_score(y[query], p.labels[query])
    )
    fairness = m.fairness["recall gap across region"]
    assert set(fairness.groups) == {"north", "south", "west"}
    assert fairness.ignored == {"east": "12 rows < 20"}
    for group, value in fairness.groups.items():
        rows = (frame["region"] == group).to_numpy()
        assert value == skm.recall_score(y[rows], p.labels[rows])
        assert fairness.rows[group] == rows.sum()
    assert fairness.gap == max(fairness.groups.values()) - min(fairness.groups.values())
    assert m.latency is None and m.size_mb == 2.0 and m.load_seconds == 0.05


def test_to_dict_is_json_and_has_no_arrays_or_nan() -> None:
    frame = binary_frame(rows=600)
    frame.loc[frame["region"] == "west", "y"] = 0  # recall on west is undefined
    m = measured(logistic(frame), frame, SLICED)
    assert math.isnan(m.slices["region == 'west'"].metrics["recall"])
    data = m.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert "y_true" not in data and "predictions" not in data
    assert data["slices"]["region == 'west'"]["metrics"]["recall"] is None
    assert json.loads(text)["fairness"]["recall gap across region"]["ignored"]["west"] == (
        "recall undefined"
    )


def test_multiclass_and_regression_standard_sets() -> None:
    frame = multiclass_frame(rows=600)
    m = measured(logistic(frame), frame, card(primary={"metric": "f1"}))
    assert list(m.metrics) == ["accuracy", "roc_auc", "pr_auc", "log_loss", "ece", "f1"]
    reg = regression_frame(rows=600)
    r = measured(tree_regressor(reg), reg, card(metrics=[{"metric": "mape"}]), "regression")
    assert list(r.metrics) == ["rmse", "mae", "r2", "mape"]
    y = reg["y"].to_numpy()
    assert r.metrics["rmse"] == pytest.approx(skm.root_mean_squared_error(y, r.predictions.labels))


def test_latency_is_measured_at_both_batch_sizes() -> None:
    frame = binary_frame(rows=40)
    scorecard = card(latency={"batch_size": 64, "repeats": 12, "max_p99_ms": 1000})
    m = measured(logistic(frame), frame, scorecard)
    assert m.latency is not None
    assert m.latency.batch_size == 64
    assert len(m.latency.single_ms) == len(m.latency.batch_ms) == 12
    assert (m.latency.single_ms > 0).all()
    assert m.latency.p50_ms <= m.latency.p95_ms <= m.latency.p99_ms
    assert set(m.latency.to_dict()["batch_ms"]) == {"p50", "p95", "p99"}


def test_without_probabilities_the_standard_set_shrinks() -> None:
    frame = binary_frame(rows=400)
    m = measured(ridge(frame), frame, card(primary={"metric": "accuracy"}))
    assert list(m.metrics) == ["accuracy"]
    with pytest.raises(EvaluationError, match="roc_auc needs predicted probabilities"):
        measured(ridge(frame), frame, card(primary={"metric": "roc_auc"}))
    with pytest.raises(EvaluationError, match="calibration criterion, and the model has no"):
        measured(ridge(frame), frame, card(calibration={"max_ece": 0.1}))


@pytest.mark.parametrize(
    ("scorecard", "message"),
    [
        (card(primary={"metric": "auc"}), "Unknown metric 'auc'"),
        (card(primary={"metric": "rmse"}), "rmse is a regression metric"),
        (card(fairness=[{"metric": "recal", "column": "region", "max_gap": 0.1}]), "'recal'"),
        (
            card(metrics=[{"metric": "recall", "slice": {"query": "x1 <"}}]),
            r"slice query 'x1 <' failed",
        ),
        (
            card(metrics=[{"metric": "recall", "slice": {"query": "nope > 1"}}]),
            "slice query 'nope > 1' failed",
        ),
        (
            card(metrics=[{"metric": "recall", "slice": {"query": "x1 + 1"}}]),
            "not a condition on rows",
        ),
        (
            card(metrics=[{"metric": "recall", "slice": {"column": "region", "value": "mars"}}]),
            r"slice region == 'mars' selects no rows",
        ),
        (
            card(metrics=[{"metric": "recall", "slice": {"query": "x1 > 100"}}]),
            "slice x1 > 100 selects no rows",
        ),
        (
            card(metrics=[{"metric": "recall", "slice": {"column": "planet", "value": "x"}}]),
            "names the column 'planet'",
        ),
        (card(fairness=[{"metric": "recall", "column": "planet", "max_gap": 0.1}]), "'planet'"),
    ],
)
def test_bad_scorecards_are_evaluation_errors(scorecard: object, message: str) -> None:
    frame = binary_frame(rows=200)
    with pytest.raises(EvaluationError, match=message) as caught:
        measured(logistic(frame), frame, scorecard)  # type: ignore[arg-type]
    assert caught.value.hint


def test_empty_slice_hint_lists_the_column_values() -> None:
    frame = binary_frame(rows=200)
    scorecard = card(metrics=[{"metric": "recall", "slice": {"column": "region", "value": "W"}}])
    with pytest.raises(EvaluationError) as caught:
        measured(logistic(frame), frame, scorecard)
    assert "'west'" in str(caught.value.hint)


def test_bad_golden_sets_are_evaluation_errors() -> None:
    frame = binary_frame(rows=200)
    model = logistic(frame)
    with pytest.raises(EvaluationError, match="no target column 'y'"):
        measured(model, frame.drop(columns=["y"]), card())
    gaps = frame.astype({"y": float})
    gaps.loc[3, "y"] = np.nan
    with pytest.raises(EvaluationError, match="1 missing values"):
        measured(model, gaps, card())
    unknown = frame.copy()
    unknown.loc[:4, "y"] = 7
    with pytest.raises(EvaluationError, match="5 target values are classes the model does not"):
        measured(model, unknown, card())
    with pytest.raises(EvaluationError, match="applies to classifiers only"):
        measured(model, frame, card(calibration={"max_ece": 0.1}), "regression")
    with pytest.raises(EvaluationError, match="no rows"):
        measured(model, frame.head(0), card())
    with pytest.raises(EvaluationError, match="failed to predict the golden set: ValueError"):
        measured(model, frame.assign(x1="many"), card())
    words = multiclass_frame(rows=100)
    with pytest.raises(EvaluationError, match="not numeric"):
        measured(logistic(words), words, card(), "regression")


def test_measure_on_a_large_golden_set() -> None:
    # How long it takes beyond predict is in benchmarks/speed_bounds.py, not here.
    frame = binary_frame(rows=10_000)
    model = logistic(frame)
    m = measured(model, frame, SLICED)
    assert len(m.y_true) == 10_000
    assert compute_metric("accuracy", m.y_true, m.predictions) == m.metrics["accuracy"]
