"""Every built-in detector honours one contract; NaN, ±inf and unseen values are reported."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from shipyard.errors import ConfigError, DataError
from shipyard.monitoring import (
    DETECTORS,
    AutoDriftDetector,
    Bands,
    ChiSquareDetector,
    DatasetDrift,
    DriftDetector,
    DriftResult,
    KLDetector,
    KSDetector,
    PSIDetector,
    Reference,
    WassersteinDetector,
    ZTestDetector,
    detector,
    load_detector,
)


def _frame(seed: int, rows: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(shift, 1.0, rows),
            "age": rng.integers(18, 90, rows),
            "plan": rng.choice(np.array(["basic", "plus", "pro"]), rows, p=[0.5, 0.3, 0.2]),
            "churned": rng.random(rows) < 0.2 + shift / 4,
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _frame(1, 3000)


@pytest.fixture(scope="module")
def windows(reference: pd.DataFrame) -> list[pd.DataFrame]:
    """A window with exactly the reference's distribution, and a shifted one."""
    return [pd.concat([reference, reference], ignore_index=True), _frame(3, 2000, shift=0.8)]


# --- the shared contract ------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_detector_contract(
    method: str, reference: pd.DataFrame, windows: list[pd.DataFrame]
) -> None:
    unfitted = detector(method)
    assert isinstance(unfitted, DriftDetector)
    assert not [name for name in vars(unfitted) if name.endswith("_") and not name.startswith("_")]
    with pytest.raises(RuntimeError, match="not fitted"):
        unfitted.score(windows[0])

    before = reference.copy()
    fitted = unfitted.fit(reference)
    assert fitted is unfitted
    pd.testing.assert_frame_equal(reference, before)
    assert fitted.columns_ and set(fitted.columns_) <= set(reference.columns)

    quiet, shifted = (fitted.score(window) for window in windows)
    for drift in (quiet, shifted):
        assert isinstance(drift, DatasetDrift)
        assert drift.features == fitted.columns_
        assert all(isinstance(result, DriftResult) for result in drift.columns)
        assert drift.share == drift.drifted_count / drift.tested
    assert quiet.drifted_count == 0, [r for r in quiet.columns if r.drifted]
    assert shifted["amount" if "amount" in fitted.columns_ else "churned"].drifted

    # Settings survive get_params, and fitted state survives strict JSON.
    assert type(fitted)(**fitted.get_params()).get_params() == fitted.get_params()
    restored = load_detector(json.loads(json.dumps(fitted.to_dict(), allow_nan=False)))
    assert type(restored) is type(fitted)
    assert restored.score(windows[1]) == shifted


@pytest.mark.parametrize("method", sorted(DETECTORS))
def test_fit_once_score_many_equals_fitting_each_time(
    method: str, reference: pd.DataFrame, windows: list[pd.DataFrame]
) -> None:
    once = detector(method).fit(Reference.from_frame(reference))
    for window in windows * 2:
        assert once.score(window) == detector(method).fit(reference).score(window)


@given(hs.integers(0, 2**32 - 1), hs.integers(20, 3000))
@settings(max_examples=25, deadline=None)
def test_any_sample_against_itself_shows_no_drift(seed: int, rows: int) -> None:
    frame = _frame(seed, rows)
    for method in DETECTORS:
        drift = detector(method).fit(frame).score(frame)
        assert drift.drifted_count == 0, method
        for result in drift.columns:
            assert result.score is not None
            assert result.score == pytest.approx(0.0, abs=1e-9), (method, result.feature)
            assert result.p_value in (None, pytest.approx(1.0)), (method, result.feature)


@given(hs.integers(0, 2**32 - 1), hs.integers(200, 3000))
@settings(max_examples=25, deadline=None)
def test_any_large_shift_is_detected(seed: int, rows: int) -> None:
    frame = _frame(seed, rows)
    moved = frame.assign(amount=frame["amount"] + 10 * frame["amount"].std())
    for method in ("auto", "ks", "wasserstein", "psi", "kl", "jensenshannon"):
        assert detector(method).fit(frame).score(moved)["amount"].drifted, method


def test_dict_of_arrays_gives_the_same_result_as_a_frame(
    reference: pd.DataFrame, windows: list[pd.DataFrame]
) -> None:
    def as_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {name: frame[name].to_numpy() for name in frame.columns}

    from_arrays = AutoDriftDetector().fit(as_arrays(reference)).score(as_arrays(windows[1]))
    assert from_arrays == AutoDriftDetector().fit(reference).score(windows[1])


def test_columns_are_chosen_by_what_each_detector_can_test(reference: pd.DataFrame) -> None:
    assert KSDetector().fit(reference).columns_ == ("amount", "age", "churned")
    assert ChiSquareDetector().fit(reference).columns_ == ("plan", "churned")
    assert PSIDetector().fit(reference).columns_ == ("amount", "age", "plan", "churned")
    assert PSIDetector(columns=["plan"]).fit(reference).columns_ == ("plan",)
    with pytest.raises(DataError, match="cannot test column 'plan'"):
        WassersteinDetector(columns=["plan"]).fit(reference)
    with pytest.raises(DataError, match="not in the reference"):
        PSIDetector(columns=["nope"]).fit(reference)


def test_unknown_method_and_missing_current_column_are_explained(
    reference: pd.DataFrame,
) -> None:
    with pytest.raises(ConfigError, match="Unknown drift method 'hellinger'"):
        detector("hellinger")
    fitted = PSIDetector().fit(reference)
    with pytest.raises(DataError, match="no column 'plan'"):
        fitted.score(reference.drop(columns=["plan"]))
    with pytest.raises(DataError, match="should hold numbers"):
        fitted.score(reference.assign(amount="lots"))


# --- NaN, infinity, unseen values ---------------------------------------------------------


def test_nan_and_infinities_are_dropped_and_counted() -> None:
    reference = {"x": np.array([1.0, 2.0, np.nan, 3.0, np.inf, 4.0, 5.0] * 10)}
    current = {"x": np.array([1.0, np.nan, np.nan, -np.inf, 2.0, np.inf, np.inf, 3.0] * 5)}
    for method in ("ks", "wasserstein", "psi", "kl", "jensenshannon", "auto"):
        result = detector(method).fit(reference).score(current)["x"]
        counts = (result.reference_nan, result.reference_inf, result.n_reference)
        assert counts == (10, 10, 50), method
        counts = (result.current_nan, result.current_inf, result.n_current)
        assert counts == (10, 15, 15), method
        assert result.score is not None and np.isfinite(result.score)


def test_a_column_without_finite_values_is_reported_not_scored() -> None:
    reference = pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100.0)})
    current = pd.DataFrame({"x": np.full(80, np.nan), "y": np.arange(80.0) + 50})
    drift = WassersteinDetector().fit(reference).score(current)
    assert drift["x"].score is None and not drift["x"].drifted
    assert drift["x"].note == "no finite values in the current window"
    assert drift["x"].current_nan == 80
    assert drift.tested == 1 and drift.share == 1.0 and drift.drifted


def test_unseen_categories_are_counted() -> None:
    reference = {"plan": np.array(["basic"] * 50 + ["pro"] * 50, dtype=object)}
    current = {"plan": np.array(["basic"] * 40 + ["gold"] * 7 + ["trial"] * 3 + [None] * 2)}
    for method in ("psi", "kl", "jensenshannon", "chisquare", "z", "auto"):
        result = detector(method).fit(reference).score(current)["plan"]
        assert (result.unseen_categories, result.unseen_rows) == (2, 10), method
        assert result.current_nan == 2 and result.n_current == 50
        assert result.drifted, method
        json.dumps(result.to_dict(), allow_nan=False)  # an infinite chi-square included


def test_out_of_range_values_are_counted() -> None:
    reference = {"x": np.linspace(0.0, 1.0, 500)}
    current = {"x": np.concatenate((np.linspace(0.2, 0.8, 90), [-1.0, 2.0, 3.0]))}
    assert KLDetector().fit(reference).score(current)["x"].out_of_range == 3


# --- bands, thresholds, dataset share -----------------------------------------------------


def test_psi_and_kl_bands_follow_the_shipped_defaults() -> None:
    assert PSIDetector().bands == Bands(0.10, 0.25, 0.40)
    assert KLDetector().bands == Bands(0.05, 0.15, 0.30)
    bands = Bands(0.10, 0.25, 0.40)
    assert [bands.classify(s) for s in (0.0, 0.1, 0.3, 0.4, 9)] == [
        "ok",
        "inspect",
        "retrain",
        "pause",
        "pause",
    ]
    with pytest.raises(ValueError, match="inspect ≤ retrain ≤ pause"):
        Bands(0.3, 0.2, 0.4)


def test_psi_band_of_a_categorical_shift() -> None:
    reference = {"plan": np.repeat(np.array(["a", "b"]), [500, 500])}
    # PSI of 0.5/0.5 → 0.2/0.8 = 0.3·ln(2.5) + 0.3·ln(1.6) ≈ 0.416: pause
    current = {"plan": np.repeat(np.array(["a", "b"]), [200, 800])}
    result = PSIDetector().fit(reference).score(current)["plan"]
    assert result.score == pytest.approx(0.3 * np.log(2.5) + 0.3 * np.log(1.6))
    assert (result.band, result.drifted, result.threshold) == ("pause", True, 0.10)


def test_z_test_gives_p_one_for_the_same_constant() -> None:
    reference = {"flag": np.ones(300, dtype=bool)}
    result = ZTestDetector().fit(reference).score({"flag": np.ones(100, dtype=bool)})["flag"]
    assert (result.p_value, result.drifted) == (1.0, False)
    result = ZTestDetector().fit(reference).score({"flag": np.zeros(100, dtype=bool)})["flag"]
    assert result.p_value is not None and result.p_value < 1e-50 and result.drifted


# --- the stored reference -----------------------------------------------------------------


def test_reference_json_round_trip_is_exact_and_strict(reference: pd.DataFrame) -> None:
    frame = reference.assign(amount=reference["amount"].where(reference.index % 7 > 0))
    frame.loc[3, "amount"] = np.inf
    stored = Reference.from_frame(frame)
    text = stored.to_json()
    assert "NaN" not in text and "Infinity" not in text
    loaded = Reference.from_json(text)
    assert loaded.rows == stored.rows and list(loaded.columns) == list(stored.columns)
    for name, column in stored.columns.items():
        again = loaded[name]
        assert again.values.tolist() == column.values.tolist()
        assert again.counts.tolist() == column.counts.tolist()
        assert (again.nan_count, again.inf_count, again.std) == (
            column.nan_count,
            column.inf_count,
            column.std,
        )
    assert loaded["amount"].nan_count == 429 and loaded["amount"].posinf_count == 1


def test_a_sketched_reference_is_small_close_and_flagged() -> None:
    rng = np.random.default_rng(11)
    reference = {"x": rng.normal(size=200_000)}
    current = {"x": rng.normal(0.3, 1.0, 50_000)}
    exact = WassersteinDetector().fit(reference).score(current)["x"]
    sketch = Reference.from_frame(reference, max_points=2000)
    approximate = WassersteinDetector().fit(sketch).score(current)["x"]
    assert sketch["x"].distinct == 2000 and sketch["x"].n == 200_000
    assert approximate.approximate and not exact.approximate
    assert exact.score is not None and approximate.score is not None
    assert approximate.score == pytest.approx(exact.score, abs=0.005)
    assert len(sketch.to_json()) < 60_000
    with pytest.raises(DataError, match="too small"):
        Reference.from_frame(reference, max_points=10)


def test_datetime_columns_are_left_out_unless_asked_for() -> None:
    frame = pd.DataFrame({"when": pd.date_range("2024-01-01", periods=5), "x": np.arange(5.0)})
    assert list(Reference.from_frame(frame).columns) == ["x"]
    with pytest.raises(DataError, match="holds datetimes"):
        Reference.from_frame(frame, columns=["when"])
