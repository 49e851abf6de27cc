"""Each drift statistic against SciPy or a value worked out by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.spatial import distance

from shipyard.monitoring import (
    chi_square,
    fill_empty_bins,
    jensen_shannon_distance,
    kl_divergence,
    ks_two_sample,
    psi,
    two_proportion_z,
    wasserstein_distance,
    wasserstein_distance_norm,
)

counts = hnp.arrays(np.int64, hs.integers(2, 12), elements=hs.integers(0, 1000))
samples = hnp.arrays(
    np.float64,
    hs.integers(1, 60),
    elements=hs.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


def _nonempty(array: np.ndarray) -> bool:
    return bool(array.sum() > 0)


def test_psi_by_hand() -> None:
    # shares 0.5/0.5 against 0.25/0.75:
    # (0.5 − 0.25)·ln(2) + (0.5 − 0.75)·ln(2/3) = 0.25·(ln 2 − ln 2/3) = 0.25·ln 3
    assert float(psi([50, 50], [25, 75])) == pytest.approx(0.25 * math.log(3), rel=1e-12)
    assert float(psi([10, 20, 30], [1, 2, 3])) == pytest.approx(0.0, abs=1e-15)


def test_empty_bins_filled_as_evidently_does() -> None:
    # Smallest non-empty share 0.5 > 1e-4: empty bins become 1e-4.
    assert fill_empty_bins([0.5, 0.5, 0.0]).tolist() == [0.5, 0.5, 1e-4]
    # Smallest non-empty share 5e-5 ≤ 1e-4: empty bins become 5e-5 / 1e6.
    filled = fill_empty_bins([1 - 5e-5, 5e-5, 0.0])
    assert filled[2] == pytest.approx(5e-11, rel=1e-12)
    # Row by row on a matrix.
    matrix = fill_empty_bins([[0.5, 0.5, 0.0], [1 - 5e-5, 5e-5, 0.0]])
    assert matrix[:, 2] == pytest.approx([1e-4, 5e-11], rel=1e-12)


def test_psi_of_an_unseen_category_uses_the_filler() -> None:
    # reference [1, 0] → [1, 1e-4]; current [0.5, 0.5]
    expected = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert float(psi([100, 0], [50, 50])) == pytest.approx(expected, rel=1e-12)


@given(counts.filter(_nonempty), counts.filter(_nonempty))
def test_kl_equals_scipy_entropy_of_filled_shares(
    reference: np.ndarray, current: np.ndarray
) -> None:
    size = min(len(reference), len(current))
    reference, current = reference[:size], current[:size]
    if reference.sum() == 0 or current.sum() == 0:
        return
    ref = fill_empty_bins(reference / reference.sum())
    cur = fill_empty_bins(current / current.sum())
    assert float(kl_divergence(reference, current)) == pytest.approx(
        stats.entropy(ref, cur), rel=1e-9, abs=1e-12
    )


def test_kl_by_hand() -> None:
    # KL([.5, .5] ‖ [.25, .75]) = .5 ln 2 + .5 ln(2/3)
    expected = 0.5 * math.log(2) + 0.5 * math.log(2 / 3)
    assert float(kl_divergence([1, 1], [1, 3])) == pytest.approx(expected, rel=1e-12)


@given(counts.filter(_nonempty), counts.filter(_nonempty))
def test_jensen_shannon_equals_scipy(reference: np.ndarray, current: np.ndarray) -> None:
    size = min(len(reference), len(current))
    reference, current = reference[:size], current[:size]
    if reference.sum() == 0 or current.sum() == 0:
        return
    ours = float(jensen_shannon_distance(reference, current))
    assert ours == pytest.approx(distance.jensenshannon(reference, current), abs=1e-9)
    assert ours == pytest.approx(float(jensen_shannon_distance(current, reference)), abs=1e-12)
    assert 0.0 <= ours <= math.sqrt(math.log(2)) + 1e-12


def test_jensen_shannon_of_disjoint_histograms_is_its_maximum() -> None:
    assert float(jensen_shannon_distance([5, 0], [0, 7])) == pytest.approx(math.sqrt(math.log(2)))


@given(counts.filter(_nonempty))
def test_histogram_statistics_are_zero_on_identical_shares(histogram: np.ndarray) -> None:
    assert float(psi(histogram, 3 * histogram)) == pytest.approx(0.0, abs=1e-12)
    assert float(kl_divergence(histogram, 3 * histogram)) == pytest.approx(0.0, abs=1e-12)
    assert float(jensen_shannon_distance(histogram, 3 * histogram)) == pytest.approx(0.0, abs=1e-6)


def test_statistics_vectorise_over_rows() -> None:
    reference = np.array([[10, 20, 30], [5, 5, 90], [1, 0, 1]])
    current = np.array([[12, 18, 30], [30, 30, 40], [0, 3, 1]])
    for statistic in (psi, kl_divergence, jensen_shannon_distance):
        rows = [float(statistic(r, c)) for r, c in zip(reference, current, strict=True)]
        assert statistic(reference, current) == pytest.approx(rows, rel=1e-12)


@given(
    hnp.arrays(np.int64, hs.integers(2, 8), elements=hs.integers(1, 500)),
    hs.integers(0, 2**32 - 1),
)
def test_chi_square_equals_scipy(reference: np.ndarray, seed: int) -> None:
    current = np.random.default_rng(seed).integers(0, 400, len(reference))
    if current.sum() == 0:
        return
    expected = reference * current.sum() / reference.sum()
    statistic, p_value = chi_square(reference, current)
    scipy_result = stats.chisquare(current, expected)
    assert float(statistic) == pytest.approx(scipy_result.statistic, rel=1e-9)
    assert float(p_value) == pytest.approx(scipy_result.pvalue, rel=1e-9, abs=1e-300)


def test_chi_square_of_an_unseen_category_is_certain_drift() -> None:
    statistic, p_value = chi_square([10, 10, 0], [10, 10, 1])
    assert math.isinf(float(statistic))
    assert float(p_value) == 0.0


def test_two_proportion_z_by_hand() -> None:
    # 30/100 against 50/100: pooled 0.4, se = sqrt(0.4·0.6·0.02)
    z, p_value = two_proportion_z(30, 100, 50, 100)
    expected = (0.3 - 0.5) / math.sqrt(0.4 * 0.6 * 0.02)
    assert float(z) == pytest.approx(expected, rel=1e-12)
    assert float(p_value) == pytest.approx(2 * (1 - stats.norm.cdf(abs(expected))), rel=1e-9)


def test_two_proportion_z_keeps_tiny_p_values() -> None:
    _, p_value = two_proportion_z(100, 1000, 400, 1000)
    assert 0.0 < float(p_value) < 1e-40  # 2·(1 − Φ(|z|)) would round this to 0


@given(samples, samples)
@settings(max_examples=60)
def test_ks_equals_scipy(reference: np.ndarray, current: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # SciPy's exact-to-asymptotic fallback
        scipy_result = stats.ks_2samp(reference, current)
    assert ks_two_sample(reference, current) == (scipy_result.statistic, scipy_result.pvalue)


@given(samples, samples)
def test_wasserstein_equals_scipy(reference: np.ndarray, current: np.ndarray) -> None:
    expected = stats.wasserstein_distance(reference, current)
    ours = wasserstein_distance(np.sort(reference), np.sort(current))
    assert ours == pytest.approx(expected, rel=1e-9, abs=1e-6)
    values, weights = np.unique(reference, return_counts=True)
    assert wasserstein_distance(values, np.sort(current), weights) == pytest.approx(
        expected, rel=1e-9, abs=1e-6
    )


def test_wasserstein_by_hand_and_normalised() -> None:
    # Moving every unit of mass from 0 to 3 costs 3.
    assert wasserstein_distance([0.0, 0.0], [3.0, 3.0]) == pytest.approx(3.0)
    reference = np.array([0.0, 2.0])  # std 1
    assert wasserstein_distance_norm(reference, [1.0, 3.0], 1.0) == pytest.approx(1.0)
    # A constant reference is normalised by 0.001, not 0.
    assert wasserstein_distance_norm([5.0, 5.0], [5.5, 5.5], 0.0) == pytest.approx(500.0)
