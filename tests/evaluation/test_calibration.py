"""Expected calibration error: properties that hold for any data, and known values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from shipyard.errors import EvaluationError
from shipyard.evaluation import expected_calibration_error, reliability_curve

probabilities = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
bin_counts = st.integers(min_value=1, max_value=40)


@st.composite
def binary_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    rows = draw(st.integers(min_value=1, max_value=200))
    scores = draw(arrays(float, rows, elements=probabilities))
    labels = draw(arrays(np.int64, rows, elements=st.integers(0, 1)))
    return labels, scores


@st.composite
def multiclass_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    rows = draw(st.integers(min_value=1, max_value=100))
    classes = draw(st.integers(min_value=2, max_value=6))
    weights = draw(arrays(float, (rows, classes), elements=st.floats(0.0, 1e6, allow_nan=False)))
    weights[:, 0] += 1e-9  # never an all-zero row
    labels = draw(arrays(np.int64, rows, elements=st.integers(0, classes - 1)))
    return labels, weights / weights.sum(axis=1, keepdims=True)


@settings(max_examples=80, deadline=None)
@given(case=binary_cases(), bins=bin_counts)
def test_binary_ece_lies_in_the_unit_interval(
    case: tuple[np.ndarray, np.ndarray], bins: int
) -> None:
    labels, scores = case
    assert 0.0 <= expected_calibration_error(labels, scores, bins=bins) <= 1.0


@settings(max_examples=60, deadline=None)
@given(case=multiclass_cases(), bins=bin_counts)
def test_multiclass_ece_lies_in_the_unit_interval(
    case: tuple[np.ndarray, np.ndarray], bins: int
) -> None:
    labels, proba = case
    assert 0.0 <= expected_calibration_error(labels, proba, bins=bins) <= 1.0 + 1e-12


@settings(max_examples=60, deadline=None)
@given(case=binary_cases(), bins=bin_counts, seed=st.integers(0, 2**32 - 1))
def test_ece_ignores_row_order_and_bins_hold_every_row(
    case: tuple[np.ndarray, np.ndarray], bins: int, seed: int
) -> None:
    labels, scores = case
    order = np.random.default_rng(seed).permutation(len(labels))
    ece = expected_calibration_error(labels, scores, bins=bins)
    assert expected_calibration_error(labels[order], scores[order], bins=bins) == pytest.approx(
        ece, abs=1e-12
    )
    assert reliability_curve(labels, scores, bins=bins).counts.sum() == len(labels)


@settings(max_examples=60, deadline=None)
@given(case=binary_cases())
def test_one_bin_is_the_gap_between_accuracy_and_mean_confidence(
    case: tuple[np.ndarray, np.ndarray],
) -> None:
    labels, scores = case
    predicted = (scores > 0.5).astype(int)  # argmax: a tie at 0.5 goes to class 0
    confidence = np.maximum(scores, 1.0 - scores)
    expected = abs((predicted == labels).mean() - confidence.mean())
    assert expected_calibration_error(labels, scores, bins=1) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), bins=st.integers(2, 20))
def test_perfectly_calibrated_probabilities_have_a_small_ece(seed: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.random(20_000)
    labels = (rng.random(20_000) < scores).astype(int)  # P(y = 1) is exactly the score
    assert expected_calibration_error(labels, scores, bins=bins) < 0.03


def test_known_values() -> None:
    # Always 90 % sure, right half the time: ECE 0.4.
    labels = np.array([1, 0, 1, 0])
    assert expected_calibration_error(labels, np.full(4, 0.9)) == pytest.approx(0.4)
    # Confident and right: ECE 0.
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0
    # String classes and a probability matrix.
    proba = np.array([[0.8, 0.2], [0.3, 0.7]])
    value = expected_calibration_error(np.array(["a", "b"]), proba, np.array(["a", "b"]))
    assert value == pytest.approx(0.25)


def test_bad_probabilities_are_evaluation_errors() -> None:
    with pytest.raises(EvaluationError, match=r"must lie in \[0, 1\]"):
        expected_calibration_error(np.array([0, 1]), np.array([-2.0, 3.0]))
    with pytest.raises(EvaluationError, match="do not match 3 labels"):
        expected_calibration_error(np.array([0, 1, 1]), np.array([0.1, 0.9]))
