"""Loading a registered version for serving: the native model, its input spec, its hot path.

Models that take a plain matrix (numeric inputs: scikit-learn, XGBoost, LightGBM) are
called with the decoded NumPy array directly. Models whose inputs include text columns
(e.g. a scikit-learn ``Pipeline`` whose ``ColumnTransformer`` selects columns by name)
and pyfunc models need a DataFrame; for them, and only them, one is built per batch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import NotFoundError, RequestError
from shipyard.models.signature import InputSpec

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["Prediction", "ServedModel", "load_served_model"]

_NATIVE = ("sklearn", "xgboost", "lightgbm")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Prediction:
    """Labels (or regression values) and, for classifiers, class probabilities."""

    labels: np.ndarray
    probabilities: np.ndarray | None


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One loaded model version and how to call it."""

    name: str
    version: str
    flavour: str
    model: Any
    spec: InputSpec
    needs_frame: bool
    load_seconds: float

    @property
    def classes(self) -> np.ndarray | None:
        """Class labels for classifiers with ``predict_proba``, else ``None``."""
        found = getattr(self.model, "classes_", None)
        return None if found is None else np.asarray(found)

    def predict(self, matrix: np.ndarray) -> Prediction:
        """Predict a decoded batch (rows in the spec's column order).

        A model that refuses the values (scikit-learn raises ``ValueError`` for NaN or
        values beyond float32, for example) is the client's problem: a 400, not a 500.
        """
        inputs = self._frame(matrix) if self.needs_frame else matrix
        with warnings.catch_warnings():
            # Fitted on a DataFrame, called with the same columns as an array: expected.
            warnings.filterwarnings("ignore", message=".*valid feature names.*")
            classes = self.classes
            try:
                if classes is not None and hasattr(self.model, "predict_proba"):
                    probabilities = np.asarray(self.model.predict_proba(inputs))
                    return Prediction(classes[np.argmax(probabilities, axis=1)], probabilities)
                return Prediction(np.asarray(self.model.predict(inputs)), None)
            except ValueError as exc:
                text = str(exc).strip()
                reason = text.splitlines()[0] if text else type(exc).__name__
                raise RequestError(f"the model cannot score these inputs: {reason}") from None

    def _frame(self, matrix: np.ndarray) -> Any:
        import pandas as pd

        frame = pd.DataFrame(matrix, columns=list(self.spec.columns))
        for column, dtype in zip(self.spec.columns, self.spec.dtypes, strict=True):
            if dtype.kind != "O":
                frame[column] = frame[column].astype(dtype)
        return frame


def load_served_model(client: MlflowClient, name: str, version: str) -> ServedModel:
    """Load ``name/version`` from the registry, ready for the hot path."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from shipyard.models.loading import load_for_evaluation

    try:
        source = client.get_model_version(name, version).source or f"models:/{name}/{version}"
        signature = mlflow.models.get_model_info(source).signature
    except MlflowException as exc:
        raise NotFoundError(
            f"Cannot load {name}/{version}: {exc.message}",
            hint="Check the version with `shipyard models show NAME/VERSION`.",
        ) from None
    if signature is None:
        raise NotFoundError(
            f"{name}/{version} has no signature, so requests cannot be validated.",
            hint="Log the model with a signature (shipyard train always does).",
        )
    spec = InputSpec.from_signature(signature)
    loaded = load_for_evaluation(source)
    _single_threaded(loaded.model)
    has_text = any(dtype.kind == "O" for dtype in spec.dtypes)
    served = ServedModel(
        name=name,
        version=str(version),
        flavour=loaded.flavour,
        model=loaded.model,
        spec=spec,
        needs_frame=has_text or loaded.flavour not in _NATIVE,
        load_seconds=loaded.load_seconds,
    )
    return replace(served, spec=_probe(served))


def _probe(served: ServedModel) -> InputSpec:
    """What the model refuses that its signature allows: NaN, or values beyond float32.

    One plain row (zeros, empty strings) is predicted, then the same row with every float
    column NaN, then 1e39. What fails is refused by the decoder from then on, with a 400
    naming the column, and the OpenAPI document says so. A model that cannot score the
    plain row teaches nothing; its spec stays as the signature says.
    """
    spec = served.spec
    floats = [i for i, dtype in enumerate(spec.dtypes) if dtype.kind == "f"]
    if not floats:
        return spec
    plain = np.empty((1, len(spec.columns)), dtype=spec.matrix_dtype)
    for index, dtype in enumerate(spec.dtypes):
        plain[0, index] = "" if dtype.kind == "O" else dtype.type(0)

    def refuses(value: float) -> bool:
        probe = plain.copy()
        probe[0, floats] = value
        try:
            served.predict(probe)
        except Exception:
            return True
        return False

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            served.predict(plain)
        except Exception:
            return spec
        allow_nan = spec.allow_nan
        if any(allow_nan) and refuses(math.nan):
            allow_nan = tuple(a and spec.dtypes[i].kind != "f" for i, a in enumerate(allow_nan))
        max_abs = _FLOAT32_MAX if refuses(1e39) else None
    return replace(spec, allow_nan=allow_nan, max_abs=max_abs)


def _single_threaded(model: Any) -> None:
    """Serve XGBoost/LightGBM with one thread per predict call.

    A server predicts a few rows at a time: extra threads cost more to start and
    synchronise than they save, and they compete with the server for the same cores
    (measured on LightGBM, one row: 1.06 ms of CPU with its default threads, 0.42 ms
    with one). Predictions are identical.
    """
    params = model.get_params() if hasattr(model, "get_params") else {}
    if "n_jobs" in params and type(model).__module__.split(".")[0] in ("lightgbm", "xgboost"):
        model.set_params(n_jobs=1)
