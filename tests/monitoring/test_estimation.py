"""CBPE: estimates within their band of the realised metrics, calibration only when it helps."""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from shipyard.errors import DataError, EvaluationError
from shipyard.monitoring.estimation import (
    CBPE,
    METRICS,
    Estimate,
    calibration_error,
    compare,
    expected_metrics,
    expected_roc_auc,
    simulate_metrics,
)

WEIGHTS, BIAS = np.array([1.2, -0.8, 0.5, 0.0]), -0.7


def _truth(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ WEIGHTS + BIAS)))


def _data(rng: np.random.Generator, rows: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """P(y | x) never changes; ``shift`` moves the first feature (covariate shift)."""
    x = rng.normal(0.0, 1.0, size=(rows, 4))
    x[:, 0] += shift
    return x, (rng.random(rows) < _truth(x)).astype(int)


def _overconfident(p: np.ndarray) -> np.ndarray:
    """Scores three times as far from 0.5 in log-odds: the ranking is kept, calibration lost."""
    return 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))


def _coverage(
    band_sigmas: float, shift: float, seeds: range, windows: int
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Share of windows whose realised metric is in the band; mean error; mean realised."""
    inside: dict[str, list[bool]] = {name: [] for name in METRICS}
    errors: dict[str, list[float]] = {name: [] for name in METRICS}
    realised_values: dict[str, list[float]] = {name: [] for name in METRICS}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        model = LogisticRegression().fit(*_data(rng, 20_000))
        x_ref, y_ref = _data(rng, 5000)
        cbpe = CBPE(band_sigmas=band_sigmas, n_simulations=300, seed=seed)
        cbpe.fit(y_ref, model.predict_proba(x_ref)[:, 1])
        for _ in range(windows):
            x, y = _data(rng, 1000, shift)
            scores = model.predict_proba(x)[:, 1]
            realised = cbpe.realised(y, scores)
            for name, row in compare(cbpe.estimate(scores), realised).items():
                inside[name].append(row.within)
                errors[name].append(row.error)
                realised_values[name].append(row.realised)
    return (
        {name: float(np.mean(v)) for name, v in inside.items()},
        {name: float(np.mean(v)) for name, v in errors.items()},
        {name: float(np.mean(v)) for name, v in realised_values.items()},
    )


# --- the band holds -----------------------------------------------------------------------


def test_band_covers_realised_metrics_at_about_its_nominal_rate_without_shift() -> None:
    """±1.96 standard errors should hold the realised metric in ≈ 95 % of windows."""
    coverage, errors, _ = _coverage(1.96, 0.0, range(6), 30)
    print(f"no shift, nominal 0.95: coverage {coverage}, mean error {errors}")
    assert all(0.88 <= share <= 0.99 for share in coverage.values()), coverage
    assert all(abs(error) < 0.01 for error in errors.values()), errors


def test_estimates_track_realised_metrics_under_covariate_shift() -> None:
    """P(x) moves, P(y | x) holds: the metrics move a lot, the estimates follow inside ±3 SE."""
    coverage, errors, realised = _coverage(3.0, -1.5, range(100, 104), 25)
    _, _, unshifted = _coverage(3.0, 0.0, range(100, 102), 10)
    print(f"shift, ±3 SE: coverage {coverage}, mean error {errors}, realised {realised}")
    moved = {name: realised[name] - unshifted[name] for name in METRICS}
    assert all(abs(moved[name]) > 0.05 for name in ("accuracy", "precision", "recall", "f1"))
    assert all(share >= 0.95 for share in coverage.values()), coverage
    assert all(abs(error) < 0.01 for error in errors.values()), errors


# --- calibration --------------------------------------------------------------------------


def test_exactly_calibrated_scores_are_mostly_left_alone() -> None:
    decisions = []
    for seed in range(12):
        x, y = _data(np.random.default_rng(seed), 4000)
        cbpe = CBPE(seed=seed).fit(y, _truth(x))
        assert cbpe.calibrated_ == (cbpe.ece_calibrated_ < cbpe.ece_raw_)
        decisions.append(cbpe.calibrated_)
    print(f"calibrated {sum(decisions)} of {len(decisions)} exactly calibrated models")
    assert sum(decisions) <= 3


def test_overconfident_scores_are_calibrated_and_only_then_estimated_well() -> None:
    rng = np.random.default_rng(20)
    x_ref, y_ref = _data(rng, 5000)
    cbpe = CBPE(seed=1).fit(y_ref, _overconfident(_truth(x_ref)))
    assert cbpe.calibrated_
    assert cbpe.ece_calibrated_ < cbpe.ece_raw_ / 2
    raw = CBPE.from_dict({**cbpe.to_dict(), "calibration": None})
    assert not raw.calibrated_
    calibrated_hits, raw_hits = [], []
    for _ in range(10):
        x, y = _data(rng, 1000)
        scores = _overconfident(_truth(x))
        realised = cbpe.realised(y, scores)
        calibrated_hits += [c.within for c in compare(cbpe.estimate(scores), realised).values()]
        raw_hits += [c.within for c in compare(raw.estimate(scores), realised).values()]
    assert np.mean(calibrated_hits) >= 0.95
    assert np.mean(raw_hits) <= 0.2


def test_the_calibration_map_is_scikit_learns_isotonic_regression() -> None:
    rng = np.random.default_rng(21)
    x, y = _data(rng, 3000)
    scores = _overconfident(_truth(x))
    cbpe = CBPE().fit(y, scores)
    assert cbpe.calibrated_
    isotonic = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, y)
    probe = np.r_[0.0, 1.0, rng.random(500)]
    np.testing.assert_allclose(cbpe.calibrate(probe), isotonic.predict(probe), atol=1e-12)


def test_calibration_error_is_the_binned_gap() -> None:
    positive = np.array([0, 1, 1, 1, 0, 0, 1, 1])
    probability = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    # Two equal-mass bins: |3 - 1.0| + |2 - 3.0| over 8 rows.
    assert calibration_error(positive, probability, bins=2) == pytest.approx(3 / 8)
    assert calibration_error(positive, probability, bins=2, by=-probability) == pytest.approx(3 / 8)


# --- the estimators -----------------------------------------------------------------------


@given(hs.integers(0, 2**32 - 1), hs.integers(2, 40))
@settings(max_examples=50, deadline=None)
def test_expected_roc_auc_is_the_ratio_of_expected_pair_counts(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.random(rows)
    scores = np.round(rng.random(rows), 1)  # ties
    greater = (scores[:, None] > scores[None, :]) + 0.5 * (scores[:, None] == scores[None, :])
    weight = p[:, None] * (1 - p)[None, :]
    np.fill_diagonal(weight, 0.0)
    assert expected_roc_auc(p, scores) == pytest.approx((weight * greater).sum() / weight.sum())


def test_simulated_metrics_equal_scikit_learn_on_each_draw() -> None:
    rng = np.random.default_rng(22)
    p, scores = rng.random(300), np.round(rng.random(300), 2)
    predicted = scores > 0.5
    simulated = simulate_metrics(
        p, predicted, scores, METRICS, n_simulations=5, rng=np.random.default_rng(3)
    )
    draws = np.random.default_rng(3).random((5, 300)) < p
    for i, y in enumerate(draws):
        assert simulated["accuracy"][i] == pytest.approx(skm.accuracy_score(y, predicted))
        assert simulated["precision"][i] == pytest.approx(skm.precision_score(y, predicted))
        assert simulated["recall"][i] == pytest.approx(skm.recall_score(y, predicted))
        assert simulated["f1"][i] == pytest.approx(skm.f1_score(y, predicted))
        assert simulated["roc_auc"][i] == pytest.approx(skm.roc_auc_score(y, scores))


def test_expected_metrics_are_the_centre_of_the_simulated_ones() -> None:
    rng = np.random.default_rng(23)
    p = rng.beta(2, 3, 2000)
    scores, predicted = p, p > 0.5
    expected = expected_metrics(p, predicted, scores)
    simulated = simulate_metrics(
        p, predicted, scores, METRICS, n_simulations=400, rng=np.random.default_rng(0)
    )
    for name in METRICS:
        spread = simulated[name].std()
        assert abs(expected[name] - simulated[name].mean()) < 4 * spread / np.sqrt(400), name


# --- the contract -------------------------------------------------------------------------


def test_estimates_survive_strict_json_and_string_labels() -> None:
    rng = np.random.default_rng(24)
    x, y = _data(rng, 2000)
    labels = np.where(y == 1, "churn", "stay")
    scores = _overconfident(_truth(x))
    unfitted = CBPE(metrics=("recall", "roc_auc"), threshold=0.4)
    with pytest.raises(RuntimeError, match="not fitted"):
        unfitted.estimate(scores)
    cbpe = unfitted.fit(labels, scores)
    assert cbpe is unfitted and list(cbpe.classes_) == ["churn", "stay"]
    restored = CBPE.from_dict(json.loads(json.dumps(cbpe.to_dict(), allow_nan=False)))
    window = _overconfident(_truth(_data(rng, 500)[0]))
    estimated = cbpe.estimate(window)
    assert restored.estimate(window) == estimated
    assert set(estimated) == {"recall", "roc_auc"}
    assert all(isinstance(e, Estimate) and e.low <= e.value <= e.high for e in estimated.values())
    # "stay" is classes[1], the positive class, as in the scorecard.
    realised = restored.realised(np.where(window > 0.4, "stay", "churn"), window)
    assert realised["recall"] == 1.0


def test_compare_reports_the_error_and_whether_it_is_within_the_band() -> None:
    estimated = {
        "f1": Estimate(0.8, 0.75, 0.85, 0.0167),
        "roc_auc": Estimate(0.9, 0.88, 0.92, 0.01),
    }
    rows = compare(estimated, {"f1": 0.86, "roc_auc": 0.9, "accuracy": 0.7})
    assert set(rows) == {"f1", "roc_auc"}
    assert rows["f1"].error == pytest.approx(0.06) and not rows["f1"].within
    assert rows["roc_auc"].within
    assert json.loads(json.dumps(rows["f1"].to_dict()))["realised"] == 0.86


def test_band_widens_as_the_window_shrinks() -> None:
    rng = np.random.default_rng(25)
    x, y = _data(rng, 3000)
    cbpe = CBPE().fit(y, _truth(x))
    widths = [cbpe.estimate(_truth(_data(rng, n)[0]))["f1"] for n in (4000, 1000, 250)]
    assert all(a.high - a.low < b.high - b.low for a, b in pairwise(widths))


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(EvaluationError, match="cannot estimate log_loss"):
        CBPE(metrics=("log_loss",))
    with pytest.raises(DataError, match="binary reference"):
        CBPE().fit([0, 1, 2], [0.1, 0.5, 0.9])
    with pytest.raises(DataError, match=r"probabilities in \[0, 1\]"):
        CBPE().fit([0, 1], [-0.5, 2.0])
    with pytest.raises(DataError, match="2 reference labels but 3"):
        CBPE().fit([0, 1], [0.1, 0.5, 0.9])
    tiny = CBPE().fit([0, 1, 1], [0.2, 0.6, 0.9])
    assert not tiny.calibrated_  # one negative row: no folds to measure calibration on
    with pytest.raises(DataError, match="empty window"):
        tiny.estimate([])
