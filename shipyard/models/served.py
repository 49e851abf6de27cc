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
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from shipyard.errors import NotFoundError, RequestError
from shipyard.jsonable import Record
from shipyard.models.flavours import flavour_named
from shipyard.models.predictor import (
    Batch,
    ModelMetadata,
    OutputSpec,
    Prediction,
    classes_of,
    frame_of,
)
from shipyard.models.signature import InputSpec, assemble

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient

__all__ = [
    "ArtifactCheck",
    "ArtifactVerdict",
    "Prediction",
    "ServedModel",
    "load_served_model",
    "quiet_feature_name_warning",
]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
# scikit-learn (and LightGBM's scikit-learn API) warn on every call with an array when the
# model was fitted on a DataFrame. The server calls with an array in the fitted column order
# on purpose, so the warning says nothing.
_FEATURE_NAMES_WARNING = r"X does not have valid feature names"


def quiet_feature_name_warning() -> None:
    """Ignore scikit-learn's "X does not have valid feature names" warning, process-wide.

    Installed once when a version loads for serving, instead of a ``catch_warnings`` around
    every predict. Only that message is filtered; every other warning still shows.
    """
    warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING, category=UserWarning)


@dataclass(frozen=True)
class ArtifactVerdict(Record):
    """What the load-time check of a version's files against its signed card found.

    ``state`` is ``verified`` (the files are the signed ones), ``unsigned`` (no signed
    card), ``mismatch`` (loaded anyway, as ``serving.verify_signatures: warn`` allows;
    ``detail`` says what differs) or ``unchecked`` (the check is off).
    """

    state: Literal["verified", "unsigned", "mismatch", "unchecked"]
    detail: str = ""


class ArtifactCheck(Protocol):
    """Checks ``name/version``'s local files before they load; raises to refuse them."""

    def __call__(self, name: str, version: str, folder: Path) -> ArtifactVerdict: ...


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One loaded model version and how to call it: a :class:`Predictor` for the hot path."""

    name: str
    version: str
    flavour: str
    model: Any
    spec: InputSpec
    needs_frame: bool
    load_seconds: float
    size_bytes: int = 0
    uri: str = ""
    verdict: ArtifactVerdict | None = None  # the signature check at load, when one ran

    @property
    def classes(self) -> np.ndarray | None:
        """Class labels for classifiers with ``predict_proba``, else ``None``."""
        return classes_of(self.model)

    @property
    def metadata(self) -> ModelMetadata:
        """Name, version, flavour, source and load cost."""
        return ModelMetadata(
            self.name, self.version, self.flavour, self.uri, self.load_seconds, self.size_bytes
        )

    @property
    def inputs(self) -> InputSpec:
        """The signature's columns, narrowed by what the model was probed to refuse."""
        return self.spec

    @property
    def outputs(self) -> OutputSpec:
        """Labels from ``classes_``, with probabilities when the model has ``predict_proba``."""
        classes = self.classes
        return OutputSpec(classes, classes is not None and hasattr(self.model, "predict_proba"))

    def predict(self, batch: Batch) -> Prediction:
        """Predict a decoded batch (rows in the spec's column order), or a DataFrame.

        A model that refuses the values (scikit-learn raises ``ValueError`` for NaN or
        values beyond float32, for example) is the client's problem: a 400, not a 500.
        """
        matrix = batch if isinstance(batch, np.ndarray) else self._matrix(batch)
        inputs = frame_of(matrix, self.spec) if self.needs_frame else matrix
        # No catch_warnings here: scikit-learn's feature-name warning is filtered once, at
        # load (quiet_feature_name_warning); a context per call costs more than predict's
        # own Python overhead and resets the interpreter's warning caches every time.
        classes = self._proba_classes
        try:
            if classes is not None:
                probabilities = np.asarray(self.model.predict_proba(inputs))
                return Prediction(classes[np.argmax(probabilities, axis=1)], probabilities)
            return Prediction(np.asarray(self.model.predict(inputs)), None)
        except ValueError as exc:
            text = str(exc).strip()
            reason = text.splitlines()[0] if text else type(exc).__name__
            raise RequestError(f"the model cannot score these inputs: {reason}") from None

    @cached_property
    def _proba_classes(self) -> np.ndarray | None:
        """Class labels when the model has ``predict_proba``, else ``None``: looked up once."""
        classes = self.classes
        return classes if classes is not None and hasattr(self.model, "predict_proba") else None

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """A DataFrame's input columns, checked and stacked as the decoder would."""
        missing = [column for column in self.spec.columns if column not in frame.columns]
        if missing:
            raise RequestError(f"the input is missing column '{missing[0]}'")
        return assemble([frame[column].to_numpy() for column in self.spec.columns], self.spec)


def load_served_model(
    client: MlflowClient, name: str, version: str, *, check: ArtifactCheck | None = None
) -> ServedModel:
    """Load ``name/version`` from the registry, ready for the hot path.

    ``check`` sees the downloaded files before they load, and may refuse them.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from shipyard.models.loading import load_model

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
    verdicts: list[ArtifactVerdict] = []

    def checked(folder: Path) -> None:
        if check is not None:
            verdicts.append(check(name, str(version), folder))

    loaded = load_model(source, name=name, version=str(version), check=checked)
    quiet_feature_name_warning()
    flavour = flavour_named(loaded.flavour)
    if flavour is not None:
        flavour.prepare_for_serving(loaded.model)
    has_text = any(dtype.kind == "O" for dtype in spec.dtypes)
    served = ServedModel(
        name=name,
        version=str(version),
        flavour=loaded.flavour,
        model=loaded.model,
        spec=spec,
        needs_frame=has_text or flavour is None or not flavour.native,
        load_seconds=loaded.load_seconds,
        size_bytes=loaded.size_bytes,
        uri=source,
        verdict=verdicts[0] if verdicts else None,
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
