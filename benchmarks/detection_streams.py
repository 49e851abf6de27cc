"""The streams of ``benchmarks/detection.py``, each with a model trained on its start.

Every stream has one known change point. Its first ``train`` samples train a small
scikit-learn model, the next ones (up to ``start``) are its golden set (the baseline
accuracy and the reference predictions), and from ``start`` on the model predicts every
sample as a deployed model would:

- ``agrawal``: river's ``Agrawal`` with classification function 0, switched abruptly to
  function 2 (a fresh generator) at the change; a decision tree. River's
  ``ConceptDriftStream`` cannot make a width-1 switch (its sigmoid overflows far from
  the position), so the two generators are spliced, which is what width 1 means.
- ``sea``: river's ``SEA`` variant 0 (threshold 8) switched to variant 3 (threshold 9.5);
  a decision tree.
- ``gauss-0.2`` / ``gauss-0.5``: five independent N(0, 1) features and a logistic label
  (weights 1, −1, 0.5, 0.5, −0.5); at the change one feature (seed mod 5) moves its mean
  by 0.2σ (0.5σ). The concept P(y | x) is unchanged; a logistic regression.
- ``covariate``: four N(0, 1) features, y = 1 when x1 > x0² − 1 (5 % of labels
  flipped); at the change x0 becomes N(1, 1), a pure covariate shift (P(y | x) is
  unchanged) that the misspecified logistic regression turns into an accuracy drop
  (about 0.73 → 0.67).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["STREAMS", "Deployment", "Split", "deploy"]


@dataclass(frozen=True)
class Split:
    """Where a stream of ``samples`` samples trains, starts being monitored and changes."""

    samples: int
    train: int
    start: int
    change: int

    @classmethod
    def scaled(cls, samples: int, change: int | None = None) -> Split:
        """The benchmark's proportions: 30,000 samples train on 4,000, golden 4,000–5,000,
        monitored from 5,000, change at 20,000."""
        start = samples // 6
        return cls(samples, start * 4 // 5, start, change or round(samples * 2 / 3))


@dataclass(frozen=True)
class Deployment:
    """One stream and its deployed model: what the monitors and the baselines see.

    Arrays hold every sample (index = sample number); the monitored part is
    ``[split.start, split.samples)``. ``scores`` are P(y = 1).
    """

    stream: str
    seed: int
    split: Split
    inputs: pd.DataFrame
    labels: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray
    reference: pd.DataFrame
    reference_scores: np.ndarray
    golden_accuracy: float
    shifted: str | None  # the feature whose distribution changes, where one does

    @property
    def errors(self) -> np.ndarray:
        """The model's 0/1 error on every sample."""
        return (self.predictions != self.labels).astype(np.float64)


Generated = tuple[pd.DataFrame, np.ndarray, str | None]


def _river(first: Any, second: Any, split: Split, names: list[str] | None = None) -> Generated:
    """``split.change`` samples of ``first``, then the rest of ``second``."""
    rows: list[dict[str, Any]] = []
    labels: list[int] = []
    for source, count in ((first, split.change), (second, split.samples - split.change)):
        for x, y in source.take(count):
            rows.append(x)
            labels.append(int(y))
    frame = pd.DataFrame(rows)
    frame.columns = names or [str(c) for c in frame.columns]
    return frame, np.asarray(labels), None


def _agrawal(seed: int, split: Split) -> Generated:
    from river.datasets import synth

    return _river(synth.Agrawal(0, seed=seed), synth.Agrawal(2, seed=seed + 10_000), split)


def _sea(seed: int, split: Split) -> Generated:
    from river.datasets import synth

    names = ["x0", "x1", "x2"]
    return _river(synth.SEA(0, seed=seed), synth.SEA(3, seed=seed + 10_000), split, names)


def _gauss(shift: float) -> Callable[[int, Split], Generated]:
    def generate(seed: int, split: Split) -> Generated:
        rng = np.random.default_rng([seed, 1, round(shift * 100)])  # each stream its own
        x = rng.normal(size=(split.samples, 5))
        logit = x @ np.array([1.0, -1.0, 0.5, 0.5, -0.5])
        y = (rng.random(split.samples) < 1 / (1 + np.exp(-logit))).astype(int)
        shifted = seed % 5
        x[split.change :, shifted] += shift  # the features have σ = 1
        frame = pd.DataFrame(x, columns=[f"x{k}" for k in range(5)])
        return frame, y, f"x{shifted}"

    return generate


def _covariate(seed: int, split: Split) -> Generated:
    rng = np.random.default_rng([seed, 2])
    x = rng.normal(size=(split.samples, 4))
    x[split.change :, 0] += 1.0
    y = (x[:, 1] > x[:, 0] ** 2 - 1).astype(int)
    y = np.where(rng.random(split.samples) < 0.05, 1 - y, y)
    return pd.DataFrame(x, columns=[f"x{k}" for k in range(4)]), y, "x0"


def _tree() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=10, random_state=0)


def _logistic() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


# name -> (generator, model factory, kind of change)
STREAMS: dict[str, tuple[Callable[[int, Split], Generated], Callable[[], Any], str]] = {
    "agrawal": (_agrawal, _tree, "concept"),
    "sea": (_sea, _tree, "concept"),
    "gauss-0.2": (_gauss(0.2), _logistic, "shift"),
    "gauss-0.5": (_gauss(0.5), _logistic, "shift"),
    "covariate": (_covariate, _logistic, "covariate"),
}


def deploy(stream: str, seed: int, split: Split) -> Deployment:
    """Generate ``stream``, train its model on the first ``split.train`` samples, predict all."""
    generate, model_factory, _kind = STREAMS[stream]
    inputs, labels, shifted = generate(seed, split)
    model = model_factory().fit(inputs.iloc[: split.train], labels[: split.train])
    probabilities = model.predict_proba(inputs)
    classes = np.asarray(model.classes_)
    predictions = classes[probabilities.argmax(axis=1)]
    # P(y = 1); a model that saw one class only gives 0 or 1 for every row.
    scores = probabilities[:, 1] if len(classes) == 2 else (predictions == 1).astype(float)
    golden = slice(split.train, split.start)
    return Deployment(
        stream=stream,
        seed=seed,
        split=split,
        inputs=inputs,
        labels=labels,
        predictions=predictions,
        scores=scores,
        reference=inputs.iloc[: split.train].reset_index(drop=True),
        reference_scores=scores[golden],
        golden_accuracy=float((predictions[golden] == labels[golden]).mean()),
        shifted=shifted,
    )
