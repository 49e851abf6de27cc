"""The Predictor contract: every registered flavour's loaded model keeps it.

Real models (scikit-learn, XGBoost, LightGBM, plain objects, MLflow ``PythonModel``s
and a raw booster), logged with real MLflow to a SQLite tracking store, loaded back
for evaluation (:func:`load_model`) and for serving (:func:`load_served_model`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from shipyard.config import load_config
from shipyard.models import (
    LoadedModel,
    Predictor,
    ServedModel,
    flavours,
    load_model,
    load_served_model,
)
from shipyard.models.flavours import PYFUNC, detect_flavour, load_native, log_model
from shipyard.models.signature import decode_columns
from shipyard.registry import Tracking

DATA = Path(__file__).resolve().parents[2] / "examples" / "churn" / "data" / "train.csv"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
TEXT = ["contract", "region"]


class TenureRule:
    """A plain object with ``predict``: no library flavour, so it is wrapped as pyfunc."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (X["tenure_months"] < 12).astype(int).to_numpy()


class CallRule(mlflow.pyfunc.PythonModel):
    """An MLflow ``PythonModel``: logged and loaded as it is."""

    # A DataFrame type hint: MLflow then neither validates nor warns about missing hints.
    def predict(self, context: object, model_input: pd.DataFrame, params: object = None) -> object:
        return (model_input["support_calls"] * 0.5).to_numpy()


@dataclass(frozen=True)
class Case:
    """A trained model, the flavour it loads as, and what its own library predicts."""

    flavour: str
    columns: list[str]
    model: Any
    expected: Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]


def _classifier(model: Any) -> Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray | None]]:
    def expected(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        proba = model.predict_proba(X)
        return model.classes_[proba.argmax(axis=1)], proba

    return expected


def _values(predict: Callable[[pd.DataFrame], Any]) -> Callable[..., Any]:
    return lambda X: (np.asarray(predict(X)), None)


def _train(frame: pd.DataFrame) -> dict[str, Case]:
    import lightgbm
    import xgboost
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    y = frame["churned"]
    numeric = frame[NUMERIC].astype(float)
    pipeline = Pipeline(
        [
            (
                "encode",
                ColumnTransformer(
                    [("text", OneHotEncoder(handle_unknown="ignore"), TEXT)],
                    remainder="passthrough",
                ),
            ),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    ).fit(frame[NUMERIC + TEXT], y)
    ridge = Ridge().fit(numeric, y.astype(float))
    boosted = xgboost.XGBClassifier(n_estimators=10, max_depth=2).fit(numeric, y)
    light = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(numeric, y)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2},
        xgboost.DMatrix(numeric, label=y),
        num_boost_round=5,
    )
    rule, calls = TenureRule(), CallRule()
    return {
        "pipeline": Case("sklearn", NUMERIC + TEXT, pipeline, _classifier(pipeline)),
        "ridge": Case("sklearn", NUMERIC, ridge, _values(ridge.predict)),
        "xgb": Case("xgboost", NUMERIC, boosted, _classifier(boosted)),
        "lgbm": Case("lightgbm", NUMERIC, light, _classifier(light)),
        "rule": Case(PYFUNC, NUMERIC, rule, _values(rule.predict)),
        "calls": Case(PYFUNC, NUMERIC, calls, _values(lambda X: calls.predict(None, X))),
        # A raw booster predicts from DMatrix only: it loads through pyfunc instead.
        "booster": Case(
            PYFUNC, NUMERIC, booster, _values(lambda X: booster.predict(xgboost.DMatrix(X)))
        ),
    }


@dataclass(frozen=True)
class Registry:
    """The trained cases, each registered as version 1 of a model named after it."""

    client: MlflowClient
    cases: dict[str, Case]
    frame: pd.DataFrame


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    from mlflow.models import infer_signature

    root = tmp_path_factory.mktemp("predictors")
    (root / "shipyard.yaml").write_text("project: predictors\n")
    tracking = Tracking(load_config(root / "shipyard.yaml", environ={}))
    frame = pd.read_csv(DATA).head(600)
    frame[NUMERIC] = frame[NUMERIC].astype(float)
    cases = _train(frame)
    for name, case in cases.items():
        sample = frame[case.columns].head(50)
        with mlflow.start_run(experiment_id=tracking.experiment_id()):
            if name == "booster":  # Shipyard's log_model infers the signature with predict
                labels, _ = case.expected(sample)
                info = mlflow.xgboost.log_model(
                    case.model,
                    name="model",
                    signature=infer_signature(sample, labels),
                    pip_requirements=["xgboost"],
                )
            else:
                flavour = detect_flavour(case.model)
                info = log_model(case.model, flavour, sample=sample, requirements=["mlflow"])
        mlflow.register_model(info.model_uri, name)
    yield Registry(tracking.client, cases, frame.sample(frac=1.0, random_state=3).head(80))


CASES = ["pipeline", "ridge", "xgb", "lgbm", "rule", "calls", "booster"]


def test_every_registered_flavour_has_a_contract_case(registry: Registry) -> None:
    covered = {case.flavour for case in registry.cases.values()}
    # An LLM version answers through a provider: its contract is tests/models/test_llm_flavour.py.
    covered.add("shipyard_llm")
    assert {flavour.name for flavour in flavours()} <= covered
    assert set(registry.cases) == set(CASES)


def _keeps_the_contract(predictor: Predictor, case: Case, frame: pd.DataFrame) -> None:
    """Inputs, outputs and metadata as declared; predict as the library predicts."""
    assert isinstance(predictor, Predictor)
    spec = predictor.inputs
    assert spec is not None and list(spec.columns) == case.columns
    assert predictor.metadata.flavour == case.flavour
    labels, probabilities = case.expected(frame[case.columns])

    # A DataFrame with extra columns in another order …
    shuffled = frame[[*reversed(frame.columns)]]
    by_name = predictor.predict(shuffled)
    np.testing.assert_allclose(by_name.labels.astype(float), labels.astype(float), rtol=1e-6)
    outputs = predictor.outputs
    if probabilities is None:
        assert by_name.probabilities is None and not outputs.probabilities
    else:
        assert outputs.probabilities and outputs.classes is not None
        np.testing.assert_array_equal(outputs.classes, case.model.classes_)
        assert by_name.probabilities is not None
        assert by_name.probabilities.shape == (len(frame), len(outputs.classes))
        np.testing.assert_allclose(by_name.probabilities, probabilities, rtol=1e-6)
        assert set(np.unique(by_name.labels)) <= set(outputs.classes)

    # … and the decoded matrix a server builds from JSON predict the same.
    matrix = decode_columns({c: frame[c].tolist() for c in spec.columns}, spec)
    by_position = predictor.predict(matrix)
    if probabilities is None:  # values: a matrix and a frame may differ in the last ulp
        np.testing.assert_allclose(by_position.labels, by_name.labels, rtol=1e-12)
    else:
        np.testing.assert_array_equal(by_position.labels, by_name.labels)
        np.testing.assert_allclose(by_position.probabilities, by_name.probabilities, rtol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_loaded_models_are_predictors(registry: Registry, name: str) -> None:
    case = registry.cases[name]
    source = registry.client.get_model_version(name, "1").source
    assert source is not None
    loaded = load_model(source, name=name, version="1")
    assert isinstance(loaded, LoadedModel)
    _keeps_the_contract(loaded, case, registry.frame)
    metadata = loaded.metadata
    assert (metadata.name, metadata.version, metadata.uri) == (name, "1", source)
    assert metadata.size_bytes > 0 and metadata.load_seconds > 0


@pytest.mark.parametrize("name", CASES)
def test_served_models_are_the_same_predictors(registry: Registry, name: str) -> None:
    case = registry.cases[name]
    served = load_served_model(registry.client, name, "1")
    assert isinstance(served, ServedModel)
    _keeps_the_contract(served, case, registry.frame)
    source = registry.client.get_model_version(name, "1").source
    loaded = load_model(source or "")
    assert served.metadata.size_bytes == loaded.metadata.size_bytes
    assert (served.metadata.name, served.metadata.version) == (name, "1")
    assert served.needs_frame == (case.flavour == PYFUNC or name == "pipeline")


def test_load_native_gives_back_the_trained_object(registry: Registry) -> None:
    def source(name: str) -> str:
        return registry.client.get_model_version(name, "1").source or ""

    assert type(load_native(source("pipeline"), "sklearn")).__name__ == "Pipeline"
    assert isinstance(load_native(source("rule"), PYFUNC), TenureRule)
    # An unknown or raw-booster flavour name loads through pyfunc.
    frame = registry.frame[NUMERIC]
    for name, flavour in (("booster", "xgboost"), ("xgb", "no-such-flavour")):
        got = load_native(source(name), flavour)
        assert type(got).__name__ == "PyFuncModel"
        assert len(np.asarray(got.predict(frame))) == len(frame)
