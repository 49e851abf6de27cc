"""Prediction drift: an exact vectorised bootstrap, a band that holds its false-alarm rate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression

from shipyard.errors import DataError
from shipyard.monitoring.prediction_drift import (
    PredictionDriftBand,
    PredictionDriftResult,
    bootstrap_distances,
)

WEIGHTS = np.array([1.0, -0.6, 0.8])


def _features(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(0.0, 1.0, size=(rows, 3))
    x[:, 0] += shift
    return x


@pytest.fixture(scope="module")
def model() -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = _features(rng, 4000)
    y = rng.random(4000) < 1 / (1 + np.exp(-(x @ WEIGHTS)))
    return LogisticRegression().fit(x, y)


def _scores(model: LogisticRegression, rng: np.random.Generator, rows: int, shift: float = 0.0):
    return model.predict_proba(_features(rng, rows, shift))[:, 1]


# --- the bootstrap ------------------------------------------------------------------------


@given(hs.integers(0, 2**32 - 1), hs.integers(2, 300), hs.integers(1, 200), hs.integers(1, 3))
@settings(max_examples=40, deadline=None)
def test_bootstrap_distances_equal_scipy_on_the_same_resamples(
    seed: int, rows: int, window: int, columns: int
) -> None:
    rng = np.random.default_rng(seed)
    # Rounded values give ties, which the run decomposition must handle.
    reference = np.round(rng.normal(size=(rows, columns)), 1)
    distances = bootstrap_distances(reference, window, n_boot=4, seed=seed)
    resamples = np.random.default_rng(seed).integers(0, rows, size=(4, window))
    expected = [
        np.mean(
            [sps.wasserstein_distance(reference[:, k], reference[r, k]) for k in range(columns)]
        )
        for r in resamples
    ]
    np.testing.assert_allclose(distances, expected, rtol=1e-9, atol=1e-12)


def test_bootstrap_on_a_large_reference() -> None:
    # How long it takes is in benchmarks/speed_bounds.py, not here.
    scores = np.random.default_rng(1).beta(2, 5, 100_000)
    distances = bootstrap_distances(scores, 5000, n_boot=1000, seed=0)
    assert len(distances) == 1000 and np.all(np.isfinite(distances)) and np.all(distances >= 0)


# --- the band -----------------------------------------------------------------------------


def test_no_shift_windows_breach_at_about_the_stated_rate(model: LogisticRegression) -> None:
    """Across references and fresh no-shift windows, inspect is reached ≈ 1 % of the time.

    Windows of the fitted size and of a quarter and four times that size (the band is
    rescaled) all count. The raw bootstrap quantile, without the finite-reference
    correction, breaches far more often when the reference is as small as the window.
    """
    window, breaches, raw_breaches, trials = 500, 0, 0, 0
    for seed in range(16):
        rng = np.random.default_rng(100 + seed)
        band = PredictionDriftBand(window, seed=seed).fit(_scores(model, rng, window))
        for size in (window // 4, window, 4 * window) * 60:
            result = band.score(_scores(model, rng, size))
            breaches += result.level != "ok"
            raw_breaches += size == window and result.score >= band.bootstrap_quantile_
            trials += 1
    rate = breaches / trials
    raw_rate = raw_breaches / (trials / 3)
    print(f"no-shift breach rate {rate:.4f} over {trials}; raw quantile {raw_rate:.4f}")
    assert 0.004 <= rate <= 0.018, rate
    assert raw_rate > 0.05


def test_shifted_windows_breach_and_bigger_shifts_reach_higher_levels(
    model: LogisticRegression,
) -> None:
    rng = np.random.default_rng(7)
    band = PredictionDriftBand(1000).fit(_scores(model, rng, 5000))
    levels = [band.score(_scores(model, rng, 1000, shift)).level for shift in (0.3, 0.6, 2.0)]
    assert levels[0] != "ok"
    assert levels[2] == "pause"
    order = ["ok", "inspect", "retrain", "pause"]
    assert [order.index(level) for level in levels] == sorted(order.index(lv) for lv in levels)


def test_levels_are_band_one_and_a_half_and_three_times(model: LogisticRegression) -> None:
    band = PredictionDriftBand(800).fit(_scores(model, np.random.default_rng(3), 3000))
    bands = band.bands_for(800)
    assert bands.inspect == pytest.approx(band.band_)
    assert bands.retrain == pytest.approx(1.5 * band.band_)
    assert bands.pause == pytest.approx(3.0 * band.band_)
    # A bigger window has a tighter band, a smaller one a wider band.
    assert band.bands_for(3200).inspect < bands.inspect < band.bands_for(200).inspect
    # The finite-reference correction: sqrt(1 + m / n).
    assert band.band_ == pytest.approx(band.bootstrap_quantile_ * np.sqrt(1 + 800 / 3000))


def test_result_reports_sizes_and_drops_non_finite_outputs(model: LogisticRegression) -> None:
    rng = np.random.default_rng(4)
    band = PredictionDriftBand(500).fit(_scores(model, rng, 2000))
    window = _scores(model, rng, 500)
    window[:3] = [np.nan, np.inf, -np.inf]
    result = band.score(window)
    assert isinstance(result, PredictionDriftResult)
    assert (result.n_reference, result.n_current, result.dropped) == (2000, 497, 3)
    assert result.score == pytest.approx(
        sps.wasserstein_distance(_scores(model, np.random.default_rng(4), 2000), window[3:])
    )
    assert json.loads(json.dumps(result.to_dict()))["bands"]["pause"] == result.bands.pause


# --- multi-class --------------------------------------------------------------------------


def test_a_binary_matrix_scores_as_its_positive_column(model: LogisticRegression) -> None:
    rng = np.random.default_rng(5)
    reference = model.predict_proba(_features(rng, 2000))
    window = model.predict_proba(_features(rng, 400, 0.5))
    matrix = PredictionDriftBand(400).fit(reference)
    column = PredictionDriftBand(400).fit(reference[:, 1])
    assert matrix.band_ == pytest.approx(column.band_)
    assert matrix.score(window).score == pytest.approx(column.score(window[:, 1]).score)


def test_multiclass_scores_see_mass_moving_between_classes() -> None:
    """Swapping two classes' probabilities keeps each row's max; per-class distances see it."""
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(3000, 3)) + np.array([1.0, 0.0, -1.0])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    reference, same, swapped = proba[:2000], proba[2000:], proba[2000:][:, [1, 0, 2]]
    band = PredictionDriftBand(1000).fit(reference)
    assert band.score(same).level == "ok"
    assert band.score(swapped).level == "pause"
    top = PredictionDriftBand(1000).fit(reference.max(axis=1))
    assert top.score(swapped.max(axis=1)).level == "ok"
    with pytest.raises(DataError, match="3 outputs per row"):
        band.score(same[:, 0])


# --- the contract -------------------------------------------------------------------------


def test_fitted_band_survives_strict_json(model: LogisticRegression) -> None:
    rng = np.random.default_rng(8)
    unfitted = PredictionDriftBand(600, n_boot=500, seed=3)
    assert not [k for k in vars(unfitted) if k.endswith("_")]
    with pytest.raises(RuntimeError, match="not fitted"):
        unfitted.score([0.5])
    fitted = unfitted.fit(_scores(model, rng, 3000))
    assert fitted is unfitted
    stored = json.loads(json.dumps(fitted.to_dict(), allow_nan=False))
    restored = PredictionDriftBand.from_dict(stored)
    window = _scores(model, rng, 600, 0.4)
    assert restored.score(window) == fitted.score(window)
    assert restored.get_params() == fitted.get_params()
    blank = PredictionDriftBand.from_dict(PredictionDriftBand(600).to_dict())
    with pytest.raises(RuntimeError, match="not fitted"):
        blank.score(window)


def test_the_bootstrap_is_reproducible_by_seed(model: LogisticRegression) -> None:
    scores = _scores(model, np.random.default_rng(9), 1500)
    first = PredictionDriftBand(300, seed=1).fit(scores).band_
    assert PredictionDriftBand(300, seed=1).fit(scores).band_ == first
    assert PredictionDriftBand(300, seed=2).fit(scores).band_ != first


def test_bad_settings_and_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="window_size"):
        PredictionDriftBand(0)
    with pytest.raises(ValueError, match="quantile"):
        PredictionDriftBand(10, quantile=1.0)
    with pytest.raises(ValueError, match="at least 5000"):
        PredictionDriftBand(10, n_boot=1000, quantile=0.999)
    with pytest.raises(DataError, match="at least 2"):
        PredictionDriftBand(10).fit([0.5, np.nan])
    with pytest.raises(DataError, match="shape"):
        PredictionDriftBand(10).fit(np.zeros((2, 2, 2)))
    band = PredictionDriftBand(10).fit(np.linspace(0, 1, 50))
    with pytest.raises(DataError, match="no finite outputs"):
        band.score([np.nan])


def test_a_constant_reference_breaches_only_on_a_change() -> None:
    band = PredictionDriftBand(20).fit(np.full(100, 0.3))
    assert band.band_ == 0.0
    assert band.score(np.full(20, 0.3)).level == "ok"
    assert band.score(np.r_[np.full(19, 0.3), 0.31]).level == "pause"
