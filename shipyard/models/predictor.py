"""The one interface to a model: predict on a batch, with declared inputs, outputs and metadata.

Evaluation, serving, monitoring and continuous training hold a :class:`Predictor`. A
flavour loader (:mod:`shipyard.models.flavours`) makes one from a logged model; a
future LLM predictor implements the same four members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.models.signature import InputSpec

__all__ = [
    "Batch",
    "ModelMetadata",
    "OutputSpec",
    "Prediction",
    "Predictor",
    "classes_of",
    "frame_of",
]

Batch: TypeAlias = "np.ndarray | pd.DataFrame"
"""Rows to predict: a DataFrame with the input columns by name, or a 2-D array in their order."""


@dataclass(frozen=True)
class Prediction:
    """Labels (or regression values) and, for classifiers, class probabilities.

    ``probabilities`` has one row per input row and one column per class, in the order of
    the predictor's ``outputs.classes``. The batcher splits a prediction field-wise by
    rows: every field with one entry per row must be an array.
    """

    labels: np.ndarray
    probabilities: np.ndarray | None


@dataclass(frozen=True, eq=False)
class OutputSpec:
    """What a predictor returns per row: a label from ``classes``, or a value.

    ``classes`` is ``None`` for regressors (and classifiers that do not list their
    classes); ``probabilities`` says whether :meth:`Predictor.predict` fills
    :attr:`Prediction.probabilities`.
    """

    classes: np.ndarray | None = None
    probabilities: bool = False


@dataclass(frozen=True)
class ModelMetadata:
    """Which model this is and what loading it cost.

    ``name`` and ``version`` are the registered ones ("" for a model loaded from a URI or
    folder alone); ``uri`` is where it was loaded from; ``load_seconds`` times loading
    from local files (no download); ``size_bytes`` is the size of its artifact folder.
    """

    name: str
    version: str
    flavour: str
    uri: str = ""
    load_seconds: float = 0.0
    size_bytes: int = 0


@runtime_checkable
class Predictor(Protocol):
    """A loaded model, whatever its flavour."""

    @property
    def metadata(self) -> ModelMetadata:
        """Name, version, flavour, source and load cost."""
        ...

    @property
    def inputs(self) -> InputSpec | None:
        """The declared input columns and types; ``None`` when the model declares none."""
        ...

    @property
    def outputs(self) -> OutputSpec:
        """What :meth:`predict` returns per row."""
        ...

    def predict(self, batch: Batch) -> Prediction:
        """Predict every row of ``batch``."""
        ...


def frame_of(matrix: np.ndarray, spec: InputSpec) -> pd.DataFrame:
    """A decoded matrix as a DataFrame with the spec's column names and dtypes."""
    import pandas as pd

    frame = pd.DataFrame(matrix, columns=list(spec.columns))
    for column, dtype in zip(spec.columns, spec.dtypes, strict=True):
        if dtype.kind != "O":
            frame[column] = frame[column].astype(dtype)
    return frame


def classes_of(model: Any) -> np.ndarray | None:
    """A library object's class labels (scikit-learn's ``classes_``), if it has them."""
    found = getattr(model, "classes_", None)
    return None if found is None else np.asarray(found)
