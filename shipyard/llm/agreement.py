"""How far a judge agrees with people: Cohen's kappa, the confusion matrix, a bootstrap interval.

    agreement(human=[5, 4, 2], judge=[5, 3, 2], resamples=1000)
    # Agreement(kappa=0.5, low=..., high=..., n=3, labels=[2, 3, 4, 5], matrix=[[...]])

:func:`cohen_kappa` equals ``sklearn.metrics.cohen_kappa_score`` (unweighted, ``linear``
or ``quadratic`` weights), which the tests check on generated data; it is written here
so the serving dependencies need not include scikit-learn. Kappa is undefined (None)
when the expected disagreement is zero (both raters gave one and the same label
throughout). The interval is the percentile bootstrap over items, with a fixed seed so
a run is reproducible; resamples whose kappa is undefined are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from shipyard.jsonable import Record

__all__ = ["Agreement", "Weights", "agreement", "cohen_kappa", "confusion"]

Weights = Literal["linear", "quadratic"] | None


def confusion(
    human: Sequence[int], judge: Sequence[int], labels: Sequence[int] | None = None
) -> tuple[list[int], np.ndarray]:
    """The labels (sorted) and the confusion matrix: rows human, columns judge."""
    if len(human) != len(judge):
        raise ValueError(f"{len(human)} human labels but {len(judge)} judge labels")
    found = sorted(set(human) | set(judge)) if labels is None else list(labels)
    index = {label: i for i, label in enumerate(found)}
    matrix = np.zeros((len(found), len(found)), dtype=np.int64)
    for h, j in zip(human, judge, strict=True):
        matrix[index[h], index[j]] += 1
    return found, matrix


def _kappa(matrix: np.ndarray, weights: Weights) -> float | None:
    size = matrix.shape[0]
    total = matrix.sum()
    if total == 0:
        return None
    expected = np.outer(matrix.sum(axis=1), matrix.sum(axis=0)) / total
    if weights is None:
        w = np.ones((size, size)) - np.eye(size)
    else:
        grid = np.abs(np.subtract.outer(np.arange(size), np.arange(size))).astype(float)
        w = grid if weights == "linear" else grid**2
    denominator = float((w * expected).sum())
    if denominator == 0:
        return None
    return 1.0 - float((w * matrix).sum()) / denominator


def cohen_kappa(
    human: Sequence[int], judge: Sequence[int], weights: Weights = None
) -> float | None:
    """Cohen's kappa of two raters' labels (None when undefined)."""
    _, matrix = confusion(human, judge)
    return _kappa(matrix, weights)


@dataclass(frozen=True)
class Agreement(Record):
    """Agreement of the judge with people on the calibration slice."""

    kappa: float | None
    low: float | None
    high: float | None
    n: int
    labels: list[int]
    matrix: list[list[int]]
    weights: str | None = None
    resamples: int = 0


def agreement(
    human: Sequence[int],
    judge: Sequence[int],
    *,
    weights: Weights = None,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Agreement:
    """Kappa, the confusion matrix and a percentile bootstrap interval over the items."""
    labels, matrix = confusion(human, judge)
    kappa = _kappa(matrix, weights)
    low = high = None
    n = len(human)
    if n and resamples:
        rng = np.random.default_rng(seed)
        h, j = np.asarray(human), np.asarray(judge)
        index = {label: i for i, label in enumerate(labels)}
        hi = np.asarray([index[x] for x in h])
        ji = np.asarray([index[x] for x in j])
        size = len(labels)
        found: list[float] = []
        for _ in range(resamples):
            pick = rng.integers(0, n, n)
            sample = np.zeros((size, size), dtype=np.int64)
            np.add.at(sample, (hi[pick], ji[pick]), 1)
            value = _kappa(sample, weights)
            if value is not None:
                found.append(value)
        if found:
            tail = (1 - level) / 2 * 100
            low, high = (float(v) for v in np.percentile(found, [tail, 100 - tail]))
    return Agreement(
        kappa=kappa,
        low=low,
        high=high,
        n=n,
        labels=[int(x) for x in labels],
        matrix=matrix.tolist(),
        weights=weights,
        resamples=resamples,
    )
