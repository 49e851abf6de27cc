"""The flavour table: lookup order, registration, and a new flavour end to end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from shipyard.config import load_config
from shipyard.errors import EvaluationError
from shipyard.models import (
    Flavour,
    Predictor,
    detect_flavour,
    flavour_named,
    flavours,
    load_model,
    load_served_model,
    register_flavour,
    unregister_flavour,
)
from shipyard.models.flavours import PYFUNC, log_model, logged_flavours, pip_requirements
from shipyard.models.native import SklearnFlavour
from shipyard.registry import Tracking
from shipyard.registry.environment import capture_environment

BUILT_IN = ["xgboost", "lightgbm", "sklearn", PYFUNC]


def test_the_built_in_flavours_are_listed_most_specific_first() -> None:
    names = [flavour.name for flavour in flavours()]
    assert [name for name in names if name in BUILT_IN] == BUILT_IN
    assert names[-1] == PYFUNC  # the catch-all comes last
    assert all(flavour_named(name) is not None for name in BUILT_IN)
    assert flavour_named("no-such-flavour") is None


def test_detection_prefers_the_boosting_libraries_over_scikit_learn() -> None:
    import lightgbm
    import xgboost
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    assert detect_flavour(xgboost.XGBClassifier()).name == "xgboost"
    assert detect_flavour(lightgbm.LGBMRegressor()).name == "lightgbm"
    assert detect_flavour(make_pipeline(StandardScaler(), LogisticRegression())).name == "sklearn"
    assert detect_flavour(Halver()).name == PYFUNC


def test_a_logged_model_loads_with_its_most_specific_registered_flavour() -> None:
    listed = ["python_function", "sklearn", "xgboost", "onnx"]
    assert [flavour.name for flavour in logged_flavours(listed)] == ["xgboost", "sklearn", PYFUNC]
    assert logged_flavours(["onnx"]) == []


def test_a_name_is_registered_once() -> None:
    original = flavour_named("sklearn")
    with pytest.raises(ValueError, match="already registered"):
        register_flavour(SklearnFlavour())
    replacement = register_flavour(SklearnFlavour(), replace=True)
    try:
        assert flavour_named("sklearn") is replacement
    finally:
        assert original is not None
        register_flavour(original, replace=True)
    assert flavour_named("sklearn") is original


def test_requirements_are_the_flavours_packages_pinned_from_the_environment() -> None:
    from sklearn.linear_model import LogisticRegression

    env = capture_environment()
    model = LogisticRegression()
    pins = pip_requirements(detect_flavour(model), env, model)
    assert pins[0] == f"mlflow=={env.version_of('mlflow')}"
    assert f"scikit-learn=={env.version_of('scikit-learn')}" in pins
    assert not any(pin.startswith("xgboost==") for pin in pins)
    # A plain object also needs the distribution that provides its class.
    pyfunc = flavour_named(PYFUNC)
    assert pyfunc is not None
    plain = pip_requirements(pyfunc, env, np.random.default_rng(0))
    assert f"numpy=={env.version_of('numpy')}" in plain and "mlflow" in plain[0]


class Halver:
    """A model of a library Shipyard does not know: predicts half of one column."""

    def __init__(self, column: str = "x") -> None:
        self.column = column

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.column].to_numpy(dtype=float) / 2.0


class HalverFlavour(Flavour):
    """A new flavour, as a plugin would add it: stored as JSON, loaded back as a Halver."""

    name = "halver"
    packages = ("numpy", "pandas")
    priority = 5
    native = False

    def matches(self, model: Any) -> bool:
        return isinstance(model, Halver)

    def log(self, model: Any, **fields: Any) -> Any:
        from mlflow.models import Model

        return Model.log(artifact_path=None, flavor=self, halver=model, **fields)

    def save_model(
        self, path: str, mlflow_model: Any, halver: Halver, signature: Any = None, **_: Any
    ) -> None:
        """What ``mlflow.models.Model.log`` calls to write the model folder."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "halver.json").write_text(json.dumps({"column": halver.column}))
        mlflow_model.signature = signature
        mlflow_model.add_flavor(self.name, data="halver.json")
        mlflow_model.save(str(folder / "MLmodel"))

    def load(self, uri: str) -> Any:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
        return Halver(**json.loads((folder / "halver.json").read_text()))


@pytest.fixture
def halver_flavour() -> Iterator[Flavour]:
    flavour = register_flavour(HalverFlavour())
    yield flavour
    unregister_flavour(flavour.name)


def test_a_new_flavour_is_one_class_and_one_registration(
    halver_flavour: Flavour, tmp_path: Path
) -> None:
    (tmp_path / "shipyard.yaml").write_text("project: halving\n")
    tracking = Tracking(load_config(tmp_path / "shipyard.yaml", environ={}))
    frame = pd.DataFrame({"x": np.arange(20, dtype=float), "y": np.ones(20)})
    model = Halver()
    assert detect_flavour(model) is halver_flavour  # above the pyfunc catch-all
    with mlflow.start_run(experiment_id=tracking.experiment_id()):
        info = log_model(model, halver_flavour, sample=frame, requirements=["numpy"])
    mlflow.register_model(info.model_uri, "halves")

    loaded = load_model(info.model_uri)
    assert loaded.flavour == "halver" and isinstance(loaded.model, Halver)
    assert isinstance(loaded, Predictor) and loaded.inputs is not None
    assert list(loaded.inputs.columns) == ["x", "y"]
    np.testing.assert_array_equal(loaded.predict(frame).labels, frame["x"] / 2.0)
    served = load_served_model(tracking.client, "halves", "1")
    assert served.flavour == "halver" and served.needs_frame  # not native: takes frames
    np.testing.assert_array_equal(served.predict(frame.to_numpy()).labels, frame["x"] / 2.0)

    unregister_flavour("halver")  # without it, nothing can load the model
    with pytest.raises(EvaluationError, match="none of which Shipyard can load"):
        load_model(info.model_uri)
