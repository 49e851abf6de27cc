"""What a model predicted for a set of rows: labels, probabilities and the classes they refer to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shipyard.errors import EvaluationError

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.models.loading import LoadedModel

__all__ = ["Predictions", "model_inputs", "predict"]


@dataclass(frozen=True, eq=False)
class Predictions:
    """A model's output on some rows.

    ``labels`` are the predicted classes (classification) or values (regression).
    ``scores`` hold probabilities when the model has ``predict_proba``: for a binary
    classifier the 1-D probability of ``classes[1]``, otherwise the 2-D matrix with one
    column per class in ``classes`` order; ``None`` for regressors and for classifiers
    without probabilities.
    """

    labels: np.ndarray
    scores: np.ndarray | None = None
    classes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def probabilities(self) -> np.ndarray | None:
        """Scores as a 2-D matrix, one column per class (binary scores expanded)."""
        if self.scores is None:
            return None
        if self.scores.ndim == 1:
            return np.column_stack([1.0 - self.scores, self.scores])
        return self.scores

    def subset(self, rows: np.ndarray) -> Predictions:
        """The predictions for ``rows`` (a boolean mask or integer positions)."""
        scores = None if self.scores is None else self.scores[rows]
        return Predictions(self.labels[rows], scores, self.classes)


def predict(loaded: LoadedModel, X: pd.DataFrame) -> Predictions:
    """Predict ``X`` with ``loaded``: ``predict_proba`` when the model has it, else ``predict``.

    With probabilities, the label of a row is the class with the highest probability,
    as scikit-learn classifiers decide, so one call gives both.
    """
    features = model_inputs(loaded, X)
    model = loaded.model
    predict_proba = getattr(model, "predict_proba", None)
    if callable(predict_proba):
        proba = np.asarray(predict_proba(features), dtype=float)
        if proba.ndim != 2:
            raise EvaluationError(
                f"predict_proba returned an array of shape {proba.shape}, not (rows, classes).",
                hint="Log a classifier whose predict_proba follows scikit-learn's contract.",
            )
        known = getattr(model, "classes_", None)
        classes = np.asarray(known) if known is not None else np.arange(proba.shape[1])
        labels = classes[proba.argmax(axis=1)]
        scores = proba[:, 1] if proba.shape[1] == 2 else proba
        return Predictions(labels, scores, classes)
    labels = np.asarray(model.predict(features))
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.ravel()
    if labels.ndim != 1:
        raise EvaluationError(
            f"The model's predict returned an array of shape {labels.shape}, "
            "not one value per row.",
            hint="Log a model whose predict returns one label or value per row.",
        )
    known = getattr(model, "classes_", None)
    return Predictions(labels, None, None if known is None else np.asarray(known))


def model_inputs(loaded: LoadedModel, X: pd.DataFrame) -> pd.DataFrame:
    """``X`` restricted to the model's input columns, in signature order."""
    wanted = loaded.input_columns
    if wanted is None or list(X.columns) == wanted:
        return X
    missing = [column for column in wanted if column not in X.columns]
    if missing:
        raise EvaluationError(
            f"The data lacks the model's input columns: {', '.join(missing)}.",
            hint="Evaluate on data with every column the model was trained on "
            f"({', '.join(wanted)}).",
        )
    return X[wanted]
