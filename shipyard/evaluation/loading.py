"""Loading a logged model for evaluation: the library object, its load time and its size."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from shipyard.errors import EvaluationError

__all__ = ["NATIVE_FLAVOURS", "LoadedModel", "load_for_evaluation"]

# Checked in this order: XGBoost and LightGBM models can carry the sklearn flavour too.
NATIVE_FLAVOURS = ("xgboost", "lightgbm", "sklearn")
PYFUNC = "python_function"


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready to predict, with what loading it cost.

    ``model`` is the library object (e.g. a scikit-learn ``Pipeline``) for the sklearn,
    xgboost and lightgbm flavours, else MLflow's pyfunc model (or the plain object
    Shipyard wrapped in one). ``load_seconds`` times loading from local files, without
    the download; ``size_bytes`` is the size of the model's artifact folder on disk;
    ``input_columns`` come from the signature (``None`` without one).
    """

    model: Any
    flavour: str
    load_seconds: float
    size_bytes: int
    input_columns: list[str] | None
    uri: str = ""


def load_for_evaluation(model_uri: str) -> LoadedModel:
    """Fetch ``model_uri`` (``models:/…``, ``runs:/…`` or a local folder) and load it."""
    local, temporary = _local_copy(model_uri)
    try:
        loaded = _load_local(local, model_uri)
    except BaseException:
        if temporary:
            shutil.rmtree(local, ignore_errors=True)
        raise
    if temporary:
        if loaded.flavour in NATIVE_FLAVOURS:
            # Native models live wholly in memory once loaded.
            shutil.rmtree(local, ignore_errors=True)
        else:
            # A pyfunc model may read its folder lazily: keep it while the model lives.
            with contextlib.suppress(TypeError):  # not every object takes a weakref
                weakref.finalize(loaded.model, shutil.rmtree, local, True)
    return loaded


def _local_copy(model_uri: str) -> tuple[Path, bool]:
    """A local folder holding the model, and whether it is a temporary copy."""
    parsed = urlparse(model_uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path)), False
    if parsed.scheme == "" and Path(model_uri).is_dir():
        return Path(model_uri), False
    import mlflow
    from mlflow.exceptions import MlflowException

    folder = Path(tempfile.mkdtemp(prefix="shipyard-evaluate-"))
    try:
        path = mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(folder))
    except (MlflowException, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        text = getattr(exc, "message", None) or str(exc)
        raise EvaluationError(
            f"Cannot fetch the model {model_uri}: {text.strip().splitlines()[0]}",
            hint="Check the model URI; `shipyard models show REF` prints a version's source.",
        ) from None
    return Path(path), True


def _load_local(local: Path, model_uri: str) -> LoadedModel:
    from mlflow.models import Model

    from shipyard.registry.flavours import load_native

    if not (local / "MLmodel").is_file():
        raise EvaluationError(
            f"{model_uri} is not an MLflow model: it has no MLmodel file.",
            hint="Pass the URI of a logged model, e.g. models:/NAME/VERSION.",
        )
    meta = Model.load(str(local))
    flavour = next((name for name in NATIVE_FLAVOURS if name in meta.flavors), PYFUNC)
    if flavour == PYFUNC and PYFUNC not in meta.flavors:
        raise EvaluationError(
            f"{model_uri} has the flavours {', '.join(meta.flavors)}, none of which Shipyard "
            "can load.",
            hint="Log the model with a python_function flavour (every mlflow.*.log_model "
            "adds one).",
        )
    started = time.perf_counter()
    model = load_native(str(local), flavour)
    if flavour != PYFUNC and type(model).__name__ == "Booster":
        # A raw booster predicts from DMatrix/arrays only; pyfunc adapts data frames.
        flavour = PYFUNC
        model = load_native(str(local), flavour)
    load_seconds = time.perf_counter() - started
    return LoadedModel(
        model=model,
        flavour=flavour,
        load_seconds=load_seconds,
        size_bytes=_folder_size(local),
        input_columns=_input_columns(meta),
        uri=model_uri,
    )


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _input_columns(meta: Any) -> list[str] | None:
    signature = meta.signature
    if signature is None or signature.inputs is None or not signature.inputs.has_input_names():
        return None
    return [str(name) for name in signature.inputs.input_names()]
