"""Loading a logged model by URI: a :class:`LoadedModel`, the predictor of every flavour."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np

from shipyard.errors import EvaluationError
from shipyard.models.flavours import flavour_named, load_object, logged_flavours
from shipyard.models.predictor import (
    Batch,
    ModelMetadata,
    OutputSpec,
    Prediction,
    classes_of,
    frame_of,
)
from shipyard.models.signature import InputSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LoadedModel", "load_for_evaluation", "load_model"]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to predict, with what loading it cost: a :class:`Predictor`.

    ``model`` is the library object (e.g. a scikit-learn ``Pipeline``) for the sklearn,
    xgboost and lightgbm flavours, else MLflow's pyfunc model (or the plain object
    Shipyard wrapped in one). ``load_seconds`` times loading from local files, without
    the download; ``size_bytes`` is the size of the model's artifact folder on disk;
    ``input_columns`` come from the signature (``None`` without one), and ``spec`` too
    when the signature's column types are ones Shipyard decodes.
    """

    model: Any
    flavour: str
    load_seconds: float
    size_bytes: int
    input_columns: list[str] | None
    uri: str = ""
    name: str = ""
    version: str = ""
    spec: InputSpec | None = None

    def __post_init__(self) -> None:
        if self.spec is not None and self.input_columns != list(self.spec.columns):
            raise ValueError("input_columns must be the spec's columns")

    @property
    def metadata(self) -> ModelMetadata:
        """Name, version, flavour, source and load cost."""
        return ModelMetadata(
            self.name, self.version, self.flavour, self.uri, self.load_seconds, self.size_bytes
        )

    @property
    def inputs(self) -> InputSpec | None:
        """The declared input columns and types, when the signature gives them."""
        return self.spec

    @cached_property
    def outputs(self) -> OutputSpec:
        """Labels from ``classes_`` if the model has them; probabilities if ``predict_proba``."""
        return OutputSpec(
            classes_of(self.model), callable(getattr(self.model, "predict_proba", None))
        )

    def predict(self, batch: Batch) -> Prediction:
        """Predict a DataFrame (input columns by name) or a matrix in input column order.

        With ``predict_proba``, a row's label is the class with the highest probability,
        as scikit-learn classifiers decide, so one call gives both; a classifier without
        ``classes_`` labels rows by probability column.
        """
        if isinstance(batch, np.ndarray):
            return self._predict_matrix(batch)
        columns = self.input_columns
        if columns is not None and list(batch.columns) != columns:
            batch = batch[columns]
        return self._predict(batch)

    def _predict_matrix(self, matrix: np.ndarray) -> Prediction:
        spec = self.spec
        flavour = flavour_named(self.flavour)
        native = flavour is not None and flavour.native
        if spec is not None and (not native or spec.matrix_dtype.kind == "O"):
            return self._predict(frame_of(matrix, spec))
        with warnings.catch_warnings():
            # Fitted on a DataFrame, called with the same columns as an array: expected.
            warnings.filterwarnings("ignore", message=".*valid feature names.*")
            return self._predict(matrix)

    def _predict(self, inputs: pd.DataFrame | np.ndarray) -> Prediction:
        model = self.model
        if self.outputs.probabilities:
            proba = np.asarray(model.predict_proba(inputs), dtype=float)
            if proba.ndim != 2:
                raise EvaluationError(
                    f"predict_proba returned an array of shape {proba.shape}, not (rows, classes).",
                    hint="Log a classifier whose predict_proba follows scikit-learn's contract.",
                )
            classes = self.outputs.classes
            labels = proba.argmax(axis=1)
            return Prediction(labels if classes is None else classes[labels], proba)
        labels = np.asarray(model.predict(inputs))
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels.ravel()
        if labels.ndim != 1:
            raise EvaluationError(
                f"The model's predict returned an array of shape {labels.shape}, "
                "not one value per row.",
                hint="Log a model whose predict returns one label or value per row.",
            )
        return Prediction(labels, None)


def load_model(
    model_uri: str,
    *,
    name: str = "",
    version: str = "",
    check: Callable[[Path], None] | None = None,
) -> LoadedModel:
    """Fetch ``model_uri`` (``models:/…``, ``runs:/…`` or a local folder) and load it.

    ``name`` and ``version`` are recorded in its metadata when the caller knows them.
    ``check`` sees the local folder before anything in it is loaded (unpickling runs
    code), and refuses it by raising: the signature check of a server.
    """
    local, temporary = _local_copy(model_uri)
    try:
        if check is not None:
            check(local)
        loaded = _load_local(local, model_uri, name, version)
    except BaseException:
        if temporary:
            shutil.rmtree(local, ignore_errors=True)
        raise
    if temporary:
        flavour = flavour_named(loaded.flavour)
        if flavour is not None and flavour.native:
            # Native models live wholly in memory once loaded.
            shutil.rmtree(local, ignore_errors=True)
        else:
            # A pyfunc model may read its folder lazily: keep it while the model lives.
            with contextlib.suppress(TypeError):  # not every object takes a weakref
                weakref.finalize(loaded.model, shutil.rmtree, local, True)
    return loaded


def load_for_evaluation(model_uri: str) -> LoadedModel:
    """Fetch ``model_uri`` (``models:/…``, ``runs:/…`` or a local folder) and load it."""
    return load_model(model_uri)


def _local_copy(model_uri: str) -> tuple[Path, bool]:
    """A local folder holding the model, and whether it is a temporary copy."""
    parsed = urlparse(model_uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path)), False
    if parsed.scheme == "" and Path(model_uri).is_dir():
        return Path(model_uri), False
    import mlflow
    from mlflow.exceptions import MlflowException

    if parsed.scheme == "models":
        _raise_if_elsewhere(model_uri)  # before MLflow's client retries an unreachable bucket
    folder = Path(tempfile.mkdtemp(prefix="shipyard-evaluate-"))
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(folder))
    except (MlflowException, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        _raise_if_elsewhere(model_uri)
        text = getattr(exc, "message", None) or str(exc)
        raise EvaluationError(
            f"Cannot fetch the model {model_uri}: {text.strip().splitlines()[0]}",
            hint="Check the model URI; `shipyard models show REF` prints a version's source.",
        ) from None
    if not (Path(path) / "MLmodel").is_file():
        # MLflow "downloads" nothing from a local folder that is not on this host.
        shutil.rmtree(folder, ignore_errors=True)
        _raise_if_elsewhere(model_uri)
    return Path(path), True


def _raise_if_elsewhere(model_uri: str) -> None:
    """Raise the StorageError for a version whose files are on another host, if so."""
    from shipyard.registry.tracking import model_files_problem

    elsewhere = model_files_problem(model_uri)
    if elsewhere is not None:
        raise elsewhere


def _load_local(local: Path, model_uri: str, name: str, version: str) -> LoadedModel:
    from mlflow.models import Model

    if not (local / "MLmodel").is_file():
        raise EvaluationError(
            f"{model_uri} is not an MLflow model: it has no MLmodel file.",
            hint="Pass the URI of a logged model, e.g. models:/NAME/VERSION.",
        )
    meta = Model.load(str(local))
    candidates = logged_flavours(meta.flavors)
    if not candidates:
        raise EvaluationError(
            f"{model_uri} has the flavours {', '.join(meta.flavors)}, none of which Shipyard "
            "can load.",
            hint="Log the model with a python_function flavour (every mlflow.*.log_model "
            "adds one).",
        )
    started = time.perf_counter()
    flavour, model = load_object(str(local), candidates)
    load_seconds = time.perf_counter() - started
    spec = _spec(meta)
    return LoadedModel(
        model=model,
        flavour=flavour.name,
        load_seconds=load_seconds,
        size_bytes=_folder_size(local),
        input_columns=list(spec.columns) if spec is not None else _input_columns(meta),
        uri=model_uri,
        name=name,
        version=version,
        spec=spec,
    )


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _input_columns(meta: Any) -> list[str] | None:
    signature = meta.signature
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return None
    return [str(name) for name in signature.inputs.input_names()]


def _spec(meta: Any) -> InputSpec | None:
    """The signature as an input spec; ``None`` without one or for types the decoder lacks."""
    if meta.signature is None:
        return None
    try:
        return InputSpec.from_signature(meta.signature)
    except (ValueError, NotImplementedError):
        return None
