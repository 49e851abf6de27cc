"""Choosing the MLflow flavour for a trained model, logging it, and loading it back."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shipyard.registry.environment import Environment

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.models.model import ModelInfo

__all__ = ["Flavour", "detect_flavour", "load_native", "log_model", "pip_requirements"]


@dataclass(frozen=True)
class Flavour:
    """An MLflow flavour and the distributions a model of it needs at serving time."""

    name: str
    packages: tuple[str, ...]


SKLEARN = Flavour("sklearn", ("scikit-learn", "numpy", "scipy", "pandas", "skops", "cloudpickle"))
XGBOOST = Flavour("xgboost", ("xgboost", "numpy", "scipy", "pandas", "scikit-learn"))
LIGHTGBM = Flavour("lightgbm", ("lightgbm", "numpy", "scipy", "pandas", "scikit-learn"))
# The wrapper that serves a plain object is pickled by reference to Shipyard.
PYFUNC = Flavour("python_function", ("cloudpickle", "numpy", "pandas", "shipyard-mlops"))


def detect_flavour(model: Any) -> Flavour:
    """The most specific flavour for ``model``; pyfunc for anything with ``predict``."""
    module = type(model).__module__.split(".")[0]
    # XGBoost and LightGBM estimators subclass scikit-learn's: check them first.
    if module == "xgboost":
        return XGBOOST
    if module == "lightgbm":
        return LIGHTGBM
    from sklearn.base import BaseEstimator

    if isinstance(model, BaseEstimator):
        return SKLEARN
    return PYFUNC


def pip_requirements(flavour: Flavour, env: Environment, model: Any) -> list[str]:
    """Pinned requirements taken from the captured environment (no MLflow inference)."""
    names = ["mlflow", *flavour.packages]
    if flavour is PYFUNC:
        names.extend(_distributions_of(model))
    pins: list[str] = []
    for name in dict.fromkeys(names):
        version = env.version_of(name)
        if version is not None:
            pins.append(f"{name}=={version}")
    return pins


def _distributions_of(model: Any) -> list[str]:
    from importlib.metadata import packages_distributions

    top = type(model).__module__.split(".")[0]
    return list(packages_distributions().get(top, []))


class _PredictWrapper:
    """Serves any object with ``predict`` through MLflow's pyfunc interface."""

    def __init__(self, model: Any) -> None:
        self.model = model

    # No type hints on the inputs: MLflow would read them as the model's input type.
    def predict(self, context, model_input, params=None):
        return self.model.predict(model_input)


def log_model(
    model: Any,
    flavour: Flavour,
    *,
    sample: pd.DataFrame,
    requirements: list[str],
    name: str = "model",
) -> ModelInfo:
    """Log ``model`` to the active run with signature and input example."""
    import mlflow
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold NaN; the signature is still right.
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(sample, model.predict(sample))
        common: dict[str, Any] = {
            "name": name,
            "signature": signature,
            "input_example": sample.head(5),
            "pip_requirements": requirements,
        }
        if flavour is SKLEARN:
            return mlflow.sklearn.log_model(
                model, skops_trusted_types=_skops_trusted_types(model), **common
            )
        if flavour is XGBOOST:
            return mlflow.xgboost.log_model(model, **common)
        if flavour is LIGHTGBM:
            return mlflow.lightgbm.log_model(model, **common)
        python_model = model if isinstance(model, mlflow.pyfunc.PythonModel) else None
        if python_model is None:
            python_model = _pyfunc_class()(model)
        return mlflow.pyfunc.log_model(python_model=python_model, **common)


@lru_cache(maxsize=1)
def _pyfunc_class() -> type:
    from mlflow.pyfunc import PythonModel

    class PredictWrapper(_PredictWrapper, PythonModel):
        pass

    return PredictWrapper


def _skops_trusted_types(model: Any) -> list[str]:
    """Types skops must trust to load the model back: our own, just trained."""
    import skops.io

    return list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


def load_native(model_uri: str, flavour_name: str) -> Any:
    """Load a logged model as the library object it was trained as (pyfunc otherwise)."""
    import mlflow

    loaders = {
        "sklearn": "mlflow.sklearn",
        "xgboost": "mlflow.xgboost",
        "lightgbm": "mlflow.lightgbm",
    }
    if flavour_name in loaders:
        import importlib

        return importlib.import_module(loaders[flavour_name]).load_model(model_uri)
    loaded = mlflow.pyfunc.load_model(model_uri)
    inner = loaded.unwrap_python_model() if hasattr(loaded, "unwrap_python_model") else None
    if isinstance(inner, _PredictWrapper):
        return inner.model
    return loaded
