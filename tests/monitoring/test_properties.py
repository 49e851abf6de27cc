"""Properties of the drift statistics and detectors that must hold for any data and seed.

``test_statistics.py`` checks each statistic against SciPy on small samples, JS symmetry
and zero on identical histograms; ``test_detectors.py`` that every detector finds no
drift between a frame and itself. Here: zero distance for identical samples (ties and
weights included), symmetry where it holds, invariance to row order, NaN and ±inf
dropped exactly as if the rows were not there, and SciPy parity through a fitted
detector (exact stored reference, JSON round trip, samples long enough to span
several slices of the Wasserstein integral).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.spatial import distance

from shipyard.monitoring import (
    DETECTORS,
    DatasetDrift,
    JensenShannonDetector,
    KSDetector,
    Reference,
    WassersteinDetector,
    detector,
    jensen_shannon_distance,
    kl_divergence,
    ks_two_sample,
    psi,
    wasserstein_distance,
)

seeds = hs.integers(0, 2**32 - 1)
finite = hs.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = hnp.arrays(np.float64, hs.integers(1, 80), elements=finite)
# Few distinct values: most points are ties.
tied = hnp.arrays(np.float64, hs.integers(1, 80), elements=hs.integers(-3, 3).map(float))
any_sample = hs.one_of(samples, tied)
histograms = hnp.arrays(np.int64, hs.integers(2, 12), elements=hs.integers(0, 1000)).filter(
    lambda counts: counts.sum() > 0
)
NUMERIC_METHODS = ("auto", "ks", "wasserstein", "psi", "kl", "jensenshannon")


def _ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's exact-to-asymptotic fallback
        return ks_two_sample(reference, current)


def _mixed_frame(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    """Continuous, integer, few-valued and categorical columns, optionally shifted."""
    return pd.DataFrame(
        {
            "amount": rng.lognormal(shift, 1.0, rows),
            "score": np.round(rng.normal(shift, 1.0, rows), 1),  # many ties
            "age": rng.integers(18, 90 + int(20 * shift), rows),
            "level": rng.choice([0.5, 1.5, 2.5], rows),
            "plan": rng.choice(np.array(["basic", "plus", "pro"]), rows),
            "churned": rng.random(rows) < 0.2 + shift / 4,
        }
    )


def _close(first: float | None, second: float | None) -> bool:
    if first is None or second is None:
        return first is second
    return first == pytest.approx(second, rel=1e-9, abs=1e-12)


def _scores(drift: DatasetDrift) -> dict[str, tuple[float | None, float | None, bool]]:
    return {r.feature: (r.score, r.p_value, r.drifted) for r in drift.columns}


# --- identical samples ---------------------------------------------------------------------


@given(any_sample)
def test_a_sample_is_at_zero_distance_from_itself(sample: np.ndarray) -> None:
    ordered = np.sort(sample)
    assert wasserstein_distance(ordered, ordered) == 0.0
    values, counts = np.unique(sample, return_counts=True)
    assert wasserstein_distance(values, ordered, counts) == 0.0
    statistic, p_value = _ks(sample, sample)
    assert statistic == 0.0 and p_value == pytest.approx(1.0)


@given(any_sample, hs.integers(2, 5))
def test_repeating_a_sample_keeps_it_at_zero_distance(sample: np.ndarray, times: int) -> None:
    """Only the distribution matters: the sample repeated has the same one."""
    repeated = np.sort(np.tile(sample, times))
    assert wasserstein_distance(np.sort(sample), repeated) == pytest.approx(0.0, abs=1e-9)
    assert _ks(sample, repeated)[0] == 0.0


# --- symmetry ------------------------------------------------------------------------------


@given(any_sample, any_sample)
def test_wasserstein_and_the_ks_statistic_are_symmetric(
    first: np.ndarray, second: np.ndarray
) -> None:
    a, b = np.sort(first), np.sort(second)
    assert wasserstein_distance(a, b) == pytest.approx(
        wasserstein_distance(b, a), rel=1e-12, abs=1e-9
    )
    assert _ks(first, second)[0] == _ks(second, first)[0]


@given(histograms, histograms)
def test_psi_is_symmetric_and_kl_is_not_required_to_be(
    first: np.ndarray, second: np.ndarray
) -> None:
    size = min(len(first), len(second))
    a, b = first[:size], second[:size]
    if a.sum() == 0 or b.sum() == 0:
        return
    # Σ (r − c)·ln(r / c) is unchanged when r and c swap, empty-bin filler included.
    assert float(psi(a, b)) == pytest.approx(float(psi(b, a)), rel=1e-12, abs=1e-12)
    assert float(kl_divergence(a, b)) >= -1e-12  # Gibbs: never negative, symmetric or not


@given(histograms, histograms, seeds)
def test_histogram_statistics_ignore_the_order_of_bins(
    first: np.ndarray, second: np.ndarray, seed: int
) -> None:
    size = min(len(first), len(second))
    a, b = first[:size], second[:size]
    if a.sum() == 0 or b.sum() == 0:
        return
    order = np.random.default_rng(seed).permutation(size)
    for statistic in (psi, kl_divergence, jensen_shannon_distance):
        assert float(statistic(a[order], b[order])) == pytest.approx(
            float(statistic(a, b)), rel=1e-12, abs=1e-12
        )


# --- row order -------------------------------------------------------------------------------


@given(seeds, hs.integers(30, 2500), hs.sampled_from([0.0, 0.4]))
@settings(max_examples=40, deadline=None)
def test_scores_do_not_depend_on_row_order(seed: int, rows: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    reference = _mixed_frame(rng, rows, 0.0)
    current = _mixed_frame(rng, rows + int(rng.integers(-20, 20)), shift)
    shuffled_reference = reference.sample(frac=1.0, random_state=rng).reset_index(drop=True)
    shuffled_current = current.sample(frac=1.0, random_state=rng).reset_index(drop=True)
    for method in DETECTORS:
        plain = _scores(detector(method).fit(reference).score(current))
        shuffled = _scores(detector(method).fit(shuffled_reference).score(shuffled_current))
        assert shuffled.keys() == plain.keys()
        for name, (score, p_value, drifted) in plain.items():
            other_score, other_p, other_drifted = shuffled[name]
            assert _close(other_score, score), (method, name)
            assert _close(other_p, p_value), (method, name)
            assert other_drifted == drifted, (method, name)


# --- NaN and ±inf ----------------------------------------------------------------------------


def _dirty(rng: np.random.Generator, values: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``values`` with NaN, +inf and -inf put in at random places; (nan, inf) counts."""
    size = len(values)
    nan, posinf, neginf = (int(rng.integers(0, max(2, size // 5))) for _ in range(3))
    junk = np.concatenate((np.full(nan, np.nan), np.full(posinf, np.inf), np.full(neginf, -np.inf)))
    mixed = np.concatenate((values, junk))
    return mixed[rng.permutation(len(mixed))], (nan, posinf + neginf)


@given(seeds, hs.integers(5, 2000), hs.sampled_from(NUMERIC_METHODS))
@settings(max_examples=60, deadline=None)
def test_nan_and_inf_count_as_absent_rows(seed: int, rows: int, method: str) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(0.0, 1.0, rows)
    current = rng.normal(rng.uniform(-0.5, 0.5), 1.0, int(rng.integers(5, 2000)))
    dirty_reference, reference_junk = _dirty(rng, reference)
    dirty_current, current_junk = _dirty(rng, current)
    clean = detector(method).fit({"x": reference}).score({"x": current})["x"]
    dirty = detector(method).fit({"x": dirty_reference}).score({"x": dirty_current})["x"]
    assert (dirty.method, dirty.drifted) == (clean.method, clean.drifted)
    assert _close(dirty.score, clean.score)
    assert _close(dirty.p_value, clean.p_value)
    assert (dirty.n_reference, dirty.n_current) == (rows, len(current))
    assert (dirty.reference_nan, dirty.reference_inf) == reference_junk
    assert (dirty.current_nan, dirty.current_inf) == current_junk


@given(seeds, hs.sampled_from(["reference", "current window"]))
@settings(max_examples=10, deadline=None)
def test_a_side_with_only_nan_and_inf_is_reported_for_every_method(seed: int, side: str) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, 300)
    junk, _ = _dirty(rng, np.empty(0))
    empty = junk if len(junk) else np.array([np.nan])
    reference, current = (empty, values) if side == "reference" else (values, empty)
    for method in NUMERIC_METHODS:
        drift = detector(method).fit({"x": reference}).score({"x": current})
        result = drift["x"]
        assert result.score is None and not result.drifted, method
        assert result.note == f"no finite values in the {side}", method
        assert drift.tested == 0 and not drift.drifted


# --- SciPy parity through a fitted detector -------------------------------------------------


@given(seeds, hs.integers(2, 150_000), hs.integers(2, 150_000), hs.sampled_from([None, 1, 3]))
@settings(max_examples=25, deadline=None)
def test_wasserstein_detector_equals_scipy(
    seed: int, reference_rows: int, current_rows: int, decimals: int | None
) -> None:
    """Past 65,536 merged points the integral is summed slice by slice; SciPy is not."""
    rng = np.random.default_rng(seed)
    reference = rng.standard_t(3, reference_rows)
    current = rng.standard_t(3, current_rows) * rng.uniform(0.5, 2.0) + rng.uniform(-1, 1)
    if decimals is not None:  # ties on both sides, and shared values
        reference, current = np.round(reference, decimals), np.round(current, decimals)
    fitted = WassersteinDetector().fit(
        Reference.from_json(Reference.from_frame({"x": reference}).to_json())
    )
    expected = stats.wasserstein_distance(reference, current) / max(float(np.std(reference)), 0.001)
    assert fitted.score({"x": current})["x"].score == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(seeds, hs.integers(1, 1500), hs.integers(1, 1500), hs.sampled_from([None, 0, 1]))
@settings(max_examples=25, deadline=None)
def test_ks_detector_equals_scipy(
    seed: int, reference_rows: int, current_rows: int, decimals: int | None
) -> None:
    """The stored reference (distinct values and counts) rebuilds the exact sample."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(0.0, 1.0, reference_rows)
    current = rng.normal(rng.uniform(-0.3, 0.3), 1.0, current_rows)
    if decimals is not None:
        reference, current = np.round(reference, decimals), np.round(current, decimals)
    result = KSDetector().fit({"x": reference}).score({"x": current})["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = stats.ks_2samp(reference, current)
    assert (result.score, result.p_value) == (expected.statistic, expected.pvalue)


@given(seeds, hs.integers(2, 12), hs.integers(50, 5000))
@settings(max_examples=25, deadline=None)
def test_jensen_shannon_of_categories_equals_scipy(seed: int, categories: int, rows: int) -> None:
    """Value shares over the union of categories, unseen ones included, as SciPy's JS distance."""
    rng = np.random.default_rng(seed)
    labels = np.array([f"c{k}" for k in range(categories + 2)])
    reference = rng.choice(labels[:categories], rows, p=rng.dirichlet(np.ones(categories)))
    current = rng.choice(labels, int(rng.integers(10, 5000)), p=rng.dirichlet(np.ones(len(labels))))
    ours = JensenShannonDetector().fit({"c": reference}).score({"c": current})["c"].score
    union = np.union1d(reference, current)
    expected = distance.jensenshannon(
        (reference[:, None] == union).sum(axis=0), (current[:, None] == union).sum(axis=0)
    )
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-12)
