"""The fast paths of drift statistics give what the plain NumPy/SciPy computation gives.

``sorted_counts`` stands in for ``np.unique(..., return_counts=True)`` at ``fit``; the
Wasserstein integral runs a slice of the merged support at a time, carrying the running
reference count from one slice to the next, so it is checked on samples long enough to
span several slices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp
from scipy import stats

from shipyard.monitoring import Reference, chi_square, two_proportion_z, wasserstein_distance
from shipyard.monitoring.reference import sorted_counts

# A few values, many repeats, signed zeros and extremes: ties are the hard case.
tied = hnp.arrays(
    np.float64,
    hs.integers(0, 200),
    elements=hs.sampled_from([-0.0, 0.0, 1.5, -3.0, 1e300, -1e-300, 7.0]),
)
spread = hnp.arrays(np.float64, hs.integers(0, 200), elements=hs.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(hs.one_of(tied, spread))
def test_sorted_counts_equals_numpy_unique(sample: np.ndarray) -> None:
    values, counts = sorted_counts(np.sort(sample))
    expected_values, expected_counts = np.unique(sample, return_counts=True)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(counts, expected_counts)
    assert counts.sum() == len(sample)


def test_all_distinct_values_are_kept_with_counts_of_one() -> None:
    ordered = np.arange(10.0)
    values, counts = sorted_counts(ordered)
    np.testing.assert_array_equal(values, ordered)
    assert counts.dtype == np.int8
    assert counts.tolist() == [1] * 10


@pytest.mark.parametrize("ties", [False, True])
def test_wasserstein_across_many_slices_equals_scipy(ties: bool) -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(0.0, 1.0, 150_000)
    current = rng.normal(0.2, 1.3, 90_000)
    if ties:  # rounded: most points tie with others on both sides
        reference, current = np.round(reference, 2), np.round(current, 2)
    values, counts = np.unique(reference, return_counts=True)
    ours = wasserstein_distance(values, np.sort(current), counts)
    expected = stats.wasserstein_distance(reference, current)
    assert ours == pytest.approx(expected, rel=1e-9)
    unweighted = wasserstein_distance(np.sort(reference), np.sort(current))
    assert unweighted == pytest.approx(expected, rel=1e-9)


def test_reference_counts_drop_nan_and_inf_and_keep_ties() -> None:
    raw = np.array([2.0, np.nan, 1.0, np.inf, 2.0, -np.inf, -np.inf, 1.0, 2.0, 0.5])
    column = Reference.from_frame(pd.DataFrame({"x": raw}))["x"]
    assert column.values.tolist() == [0.5, 1.0, 2.0]
    assert column.counts.tolist() == [1, 2, 3]
    assert (column.nan_count, column.posinf_count, column.neginf_count) == (1, 1, 2)
    finite = raw[np.isfinite(raw)]
    assert column.std == pytest.approx(float(np.std(finite)), rel=1e-15)
    clean = Reference.from_frame(pd.DataFrame({"x": finite}))["x"]
    assert clean.values.tolist() == column.values.tolist()
    assert (clean.nan_count, clean.posinf_count, clean.neginf_count) == (0, 0, 0)


def test_tails_equal_scipy_stats() -> None:
    # chi_square and two_proportion_z take their tails from scipy.special, which is
    # what scipy.stats.chi2.sf and norm.sf compute underneath.
    rng = np.random.default_rng(3)
    reference = rng.integers(1, 500, (200, 6))
    current = rng.integers(0, 500, (200, 6))
    statistic, p_value = chi_square(reference, current)
    np.testing.assert_array_equal(p_value, stats.chi2.sf(statistic, 5))
    _, single = chi_square([[5]], [[7]])
    assert np.isnan(single).all()  # no degree of freedom, as scipy.stats says
    z, p = two_proportion_z(rng.integers(0, 50, 300), 100, rng.integers(0, 50, 300), 120)
    np.testing.assert_array_equal(p, 2.0 * stats.norm.sf(np.abs(z)))
