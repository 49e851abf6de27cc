"""The judge's agreement with people: Cohen's kappa against scikit-learn, the confusion
matrix, the bootstrap interval. Pure computation: no provider, no store."""

from __future__ import annotations

import math
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from shipyard.llm.agreement import agreement, cohen_kappa, confusion

pairs = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, 5), min_size=n, max_size=n),
        st.lists(st.integers(1, 5), min_size=n, max_size=n),
    )
)


def _sklearn(human: list[int], judge: list[int], weights: str | None) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(human, judge, weights=weights))


@given(pairs, st.sampled_from([None, "linear", "quadratic"]))
def test_kappa_equals_sklearn(pair: tuple[list[int], list[int]], weights: str | None) -> None:
    human, judge = pair
    ours = cohen_kappa(human, judge, weights)  # type: ignore[arg-type]
    theirs = _sklearn(human, judge, weights)
    if ours is None:
        assert not math.isfinite(theirs)  # undefined for both
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


@given(pairs)
def test_confusion_matrix_equals_sklearn(pair: tuple[list[int], list[int]]) -> None:
    human, judge = pair
    labels, matrix = confusion(human, judge)
    assert labels == sorted(set(human) | set(judge))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a single label: sklearn warns, the matrix is right
        theirs = confusion_matrix(human, judge, labels=labels)
    assert matrix.tolist() == theirs.tolist()
    assert matrix.sum() == len(human)


def test_agreement_reports_kappa_matrix_and_a_bootstrap_interval_around_it() -> None:
    human = [5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 5, 4, 3, 2, 1, 5, 4, 3, 2, 1]
    judge = [5, 4, 4, 4, 3, 2, 2, 2, 1, 2, 5, 4, 3, 3, 1, 5, 5, 3, 2, 1]
    found = agreement(human, judge, resamples=500)
    assert found.kappa == pytest.approx(_sklearn(human, judge, None))
    assert found.low is not None and found.high is not None and found.kappa is not None
    assert found.low < found.kappa < found.high <= 1.0
    assert found.n == 20 and found.labels == [1, 2, 3, 4, 5]
    assert sum(map(sum, found.matrix)) == 20 and found.matrix[0][0] == 3
    again = agreement(human, judge, resamples=500)
    assert (again.low, again.high) == (found.low, found.high)  # a fixed seed: reproducible
    weighted = agreement(human, judge, weights="quadratic", resamples=200)
    assert weighted.kappa == pytest.approx(_sklearn(human, judge, "quadratic"))
    assert weighted.kappa is not None
    assert weighted.kappa > found.kappa  # near misses count as partial agreement


def test_perfect_and_undefined_agreement() -> None:
    perfect = agreement([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], resamples=200)
    assert perfect.kappa == 1.0 and perfect.high == 1.0
    same = agreement([4, 4, 4], [4, 4, 4], resamples=100)
    assert same.kappa is None and same.low is None  # one label throughout: undefined
    with pytest.raises(ValueError, match="3 human labels but 2 judge labels"):
        cohen_kappa([1, 2, 3], [1, 2])
