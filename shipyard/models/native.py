"""The library flavours: scikit-learn, XGBoost and LightGBM, loaded as the library's object."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from shipyard.models.flavours import Flavour, register_flavour

if TYPE_CHECKING:
    from mlflow.models.model import ModelInfo

__all__ = ["LightGBMFlavour", "SklearnFlavour", "XGBoostFlavour"]


class SklearnFlavour(Flavour):
    """scikit-learn estimators and pipelines, stored with skops."""

    name = "sklearn"
    packages = ("scikit-learn", "numpy", "scipy", "pandas", "skops", "cloudpickle")
    priority = 10

    def matches(self, model: Any) -> bool:
        """Any scikit-learn estimator (a ``Pipeline`` included)."""
        from sklearn.base import BaseEstimator

        return isinstance(model, BaseEstimator)

    def log(self, model: Any, **fields: Any) -> ModelInfo:
        """Log with skops, trusting the types of the model Shipyard just trained."""
        import mlflow.sklearn
        import skops.io

        trusted = list(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
        return mlflow.sklearn.log_model(model, skops_trusted_types=trusted, **fields)

    def load(self, uri: str) -> Any:
        """The estimator as it was trained."""
        import mlflow.sklearn

        return mlflow.sklearn.load_model(uri)


class _BoostingFlavour(Flavour):
    """A gradient-boosting library whose scikit-learn estimators have their own flavour."""

    module: ClassVar[str]
    priority = 20  # its estimators are scikit-learn estimators too: check it first

    def matches(self, model: Any) -> bool:
        """Objects of the library's own classes."""
        return type(model).__module__.split(".")[0] == self.module

    def log(self, model: Any, **fields: Any) -> ModelInfo:
        """Log with the library's MLflow flavour."""
        return importlib.import_module(f"mlflow.{self.name}").log_model(model, **fields)

    def load(self, uri: str) -> Any:
        """The estimator (or raw booster) as it was trained."""
        return importlib.import_module(f"mlflow.{self.name}").load_model(uri)

    def usable(self, model: Any) -> bool:
        """A raw ``Booster`` predicts from the library's matrix type only: not usable."""
        return type(model).__name__ != "Booster"

    def prepare_for_serving(self, model: Any) -> None:
        """Predict with one thread.

        A server predicts a few rows at a time: extra threads cost more to start and
        synchronise than they save, and they compete with the server for the same cores
        (measured on LightGBM, one row: 1.06 ms of CPU with its default threads, 0.42 ms
        with one). Predictions are identical.
        """
        if hasattr(model, "get_params") and "n_jobs" in model.get_params():
            model.set_params(n_jobs=1)


class XGBoostFlavour(_BoostingFlavour):
    """XGBoost's scikit-learn estimators (``XGBClassifier``, ``XGBRegressor`` …)."""

    name = "xgboost"
    module = "xgboost"
    packages = ("xgboost", "numpy", "scipy", "pandas", "scikit-learn")


class LightGBMFlavour(_BoostingFlavour):
    """LightGBM's scikit-learn estimators (``LGBMClassifier``, ``LGBMRegressor`` …)."""

    name = "lightgbm"
    module = "lightgbm"
    packages = ("lightgbm", "numpy", "scipy", "pandas", "scikit-learn")


register_flavour(XGBoostFlavour())
register_flavour(LightGBMFlavour())
register_flavour(SklearnFlavour())
