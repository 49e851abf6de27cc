"""Models registered without Shipyard's training, for the tests that need other kinds."""

from __future__ import annotations

from typing import Any

import pandas as pd

from shipyard.config import Config
from shipyard.registry import Tracking

__all__ = ["NUMERIC", "register_numeric", "register_with_plain_mlflow"]

NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]  # the example's numbers


def register_numeric(config: Config, name: str, fit: Any, flavour: str) -> pd.DataFrame:
    """Fit ``fit(X, y)`` on the example's numeric columns and register it with MLflow."""
    import importlib

    import mlflow
    from mlflow.models import infer_signature

    frame = pd.read_csv(config.root / "data" / "train.csv")
    X = frame[NUMERIC].astype(float)
    model = fit(X, frame["churned"])
    with mlflow.start_run(experiment_id=Tracking(config).experiment_id()):
        importlib.import_module(f"mlflow.{flavour}").log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(X, model.predict(X)),
            pip_requirements=[flavour],
        )
    return X


def register_with_plain_mlflow(config: Config, name: str) -> None:
    """Log and register a model the way existing MLflow code does, without Shipyard."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    tracking = Tracking(config)
    frame = pd.read_csv(config.root / "data" / "train.csv")
    X = frame[NUMERIC].astype(float)
    model = LogisticRegression(max_iter=200).fit(X, frame["churned"])
    with mlflow.start_run(experiment_id=tracking.experiment_id("plain-mlflow")):
        mlflow.log_input(mlflow.data.from_pandas(frame, name="customers"), context="training")
        mlflow.log_param("C", 1.0)
        mlflow.log_metric("train_accuracy", model.score(X, frame["churned"]))
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=X.head(2),
            pip_requirements=["scikit-learn"],
        )
