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
    prediction = loaded.predict(model_inputs(loaded, X))
    classes = loaded.outputs.classes
    proba = prediction.probabilities
    if proba is None:
        return Predictions(prediction.labels, None, classes)
    if classes is None:
        classes = np.arange(proba.shape[1])
    scores = proba[:, 1] if proba.shape[1] == 2 else proba
    return Predictions(prediction.labels, scores, classes)


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
