"""Bin edges and histograms agree with NumPy, on any data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

from shipyard.monitoring.binning import (
    align_values,
    histograms,
    quantile_edges,
    reference_histogram,
    sturges_edges,
)

finite = hs.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = hnp.arrays(np.float64, hs.integers(1, 200), elements=finite)


@given(samples)
def test_sturges_edges_equal_numpy(sample: np.ndarray) -> None:
    expected = np.histogram_bin_edges(sample, bins="sturges")
    ours = sturges_edges(len(sample), float(sample.min()), float(sample.max()))
    np.testing.assert_array_equal(ours, expected)


def test_sturges_edges_of_a_constant_sample() -> None:
    np.testing.assert_array_equal(sturges_edges(50, 3.0, 3.0), [2.5, 3.5])


@given(samples, samples)
def test_histograms_equal_numpy_on_full_edges(first: np.ndarray, second: np.ndarray) -> None:
    edges = [np.histogram_bin_edges(column, bins="sturges") for column in (first, second, first)]
    ours = histograms([first, second, first], [e[1:-1] for e in edges], chunk_elements=150)
    for column, column_edges, counts in zip([first, second, first], edges, ours, strict=True):
        np.testing.assert_array_equal(counts, np.histogram(column, column_edges)[0])


@given(samples, hnp.arrays(np.float64, hs.integers(0, 6), elements=finite, unique=True))
def test_reference_histogram_equals_histograms_of_the_sample(
    sample: np.ndarray, interior: np.ndarray
) -> None:
    interior = np.sort(interior)
    values, counts = np.unique(sample, return_counts=True)
    ours = reference_histogram(values, np.cumsum(counts), interior)
    np.testing.assert_array_equal(ours, histograms([sample], [interior])[0])
    assert ours.sum() == len(sample)


def test_histograms_chunking_does_not_change_counts() -> None:
    rng = np.random.default_rng(7)
    columns = [rng.normal(size=size) for size in (10, 300, 0, 57, 1000)]
    interiors = [np.linspace(-1, 1, k) for k in (1, 3, 5, 9, 2)]
    whole = histograms(columns, interiors)
    for chunk in (1, 100, 400):
        pieces = histograms(columns, interiors, chunk_elements=chunk)
        for a, b in zip(whole, pieces, strict=True):
            np.testing.assert_array_equal(a, b)
    assert [len(counts) for counts in whole] == [2, 4, 6, 10, 3]


@given(hs.integers(2, 20), hs.integers(0, 2**32 - 1))
def test_quantile_edges_split_a_continuous_sample_into_equal_masses(bins: int, seed: int) -> None:
    sample = np.random.default_rng(seed).normal(size=2000)
    values, counts = np.unique(sample, return_counts=True)
    edges = quantile_edges(values, counts, bins)
    masses = reference_histogram(values, np.cumsum(counts), edges)
    assert len(masses) == bins
    assert masses.max() - masses.min() <= 1


def test_quantile_edges_never_leave_a_bin_empty_in_the_reference() -> None:
    # 70 % zeros: the first deciles collapse onto the minimum.
    sample = np.concatenate((np.zeros(700), np.arange(1.0, 301.0)))
    values, counts = np.unique(sample, return_counts=True)
    edges = quantile_edges(values, counts, 10)
    masses = reference_histogram(values, np.cumsum(counts), edges)
    assert masses[0] == 700
    assert (masses > 0).all()
    assert len(masses) == 4


def test_align_values_counts_unseen_values_numeric_and_text() -> None:
    aligned = align_values(
        np.array([1.0, 2.0, 3.0]),
        np.array([5, 5, 5]),
        np.array([0.5, 2.0, 3.0, 9.0]),
        np.array([1, 4, 6, 2]),
    )
    assert aligned.reference.tolist() == [5, 5, 5, 0, 0]
    assert aligned.current.tolist() == [0, 4, 6, 1, 2]
    assert (aligned.unseen, aligned.unseen_rows) == (2, 3)
    assert aligned.keys.tolist() == [1.0, 2.0, 3.0, 0.5, 9.0]

    text = align_values(
        np.array(["a", "b"], dtype=object),
        np.array([3, 4]),
        np.array(["b", "z"], dtype=object),
        np.array([2, 7]),
    )
    assert text.current.tolist() == [0, 2, 7]
    assert (text.unseen, text.unseen_rows) == (1, 7)


def test_align_values_against_an_empty_reference() -> None:
    aligned = align_values(
        np.array([]), np.array([], dtype=np.int64), np.array([1.0]), np.array([4])
    )
    assert (aligned.unseen, aligned.unseen_rows) == (1, 4)
    assert aligned.reference.tolist() == [0]


@pytest.mark.parametrize("bins", [2, 10])
def test_quantile_edges_of_a_two_valued_sample(bins: int) -> None:
    edges = quantile_edges(np.array([0.0, 1.0]), np.array([60, 40]), bins)
    assert edges.tolist() == [1.0]
