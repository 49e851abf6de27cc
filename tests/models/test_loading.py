"""Loading logged models: the native object, its flavour, load time, size and columns."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.pipeline import Pipeline

from shipyard.config import Config, Scorecard
from shipyard.errors import EvaluationError
from shipyard.evaluation import compare, load_for_evaluation, measure, predict
from shipyard.registry import Tracking
from tests.support.synthetic import FEATURES, binary_frame, logistic


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_a_trained_version_loads_natively_and_passes_the_example_scorecard(
    trained_project: Config, tmp_path: Path
) -> None:
    client = Tracking(trained_project).client
    source = client.get_model_version("churn", "1").source
    assert source is not None and source.startswith("models:/m-")
    loaded = load_for_evaluation(source)
    assert loaded.flavour == "sklearn" and isinstance(loaded.model, Pipeline)
    assert loaded.load_seconds > 0  # measured (how fast is the machine's business)
    copy = Path(mlflow.artifacts.download_artifacts(source, dst_path=str(tmp_path)))
    assert loaded.size_bytes == _folder_size(copy)
    golden = pd.read_csv(trained_project.root / "data" / "golden.csv")
    assert loaded.input_columns == [c for c in golden.columns if c != "churned"]

    declared = yaml.safe_load((trained_project.root / "scorecard.yaml").read_text())
    scorecard = Scorecard.model_validate(declared)
    assert scorecard.latency is not None
    quick = scorecard.model_copy(
        update={"latency": scorecard.latency.model_copy(update={"repeats": 10})}
    )
    m = measure(loaded, golden, target="churned", scorecard=quick, task="classification")
    assert m.size_mb == loaded.size_bytes / 1e6 and m.flavour == "sklearn"
    result = compare(quick, m, None)
    # Latency bounds are generous, but a loaded CI machine may still miss one.
    assert [row.name for row in result.failing if row.kind != "latency"] == []
    assert {row.kind for row in result.rows} >= {"primary", "margin", "fairness", "load", "size"}

    # The same folder, given as a local path, loads without a copy.
    again = load_for_evaluation(str(copy))
    assert again.size_bytes == loaded.size_bytes
    assert np.array_equal(predict(again, golden).labels, m.predictions.labels)


class Doubler(mlflow.pyfunc.PythonModel):
    """A plain pyfunc model: no native flavour to load."""

    # A DataFrame type hint: MLflow then neither validates nor warns about missing hints.
    def predict(self, context: object, model_input: pd.DataFrame, params: object = None) -> object:
        return model_input["x1"].to_numpy() * 2.0


def test_a_pyfunc_model_loads_as_pyfunc(tmp_path: Path) -> None:
    frame = binary_frame(rows=50)
    mlflow.pyfunc.save_model(
        str(tmp_path / "doubler"),
        python_model=Doubler(),
        input_example=frame[FEATURES].head(3),
        pip_requirements=["mlflow"],
    )
    loaded = load_for_evaluation((tmp_path / "doubler").as_uri())
    assert loaded.flavour == "python_function"
    assert loaded.input_columns == FEATURES
    assert loaded.size_bytes == _folder_size(tmp_path / "doubler")
    p = predict(loaded, frame)
    assert p.scores is None and np.allclose(p.labels, frame["x1"] * 2.0)


def test_an_sklearn_model_saved_to_a_folder(tmp_path: Path) -> None:
    frame = binary_frame(rows=200)
    model = logistic(frame).model
    mlflow.sklearn.save_model(
        model, str(tmp_path / "clf"), serialization_format="cloudpickle",
        pip_requirements=["scikit-learn"],
    )  # fmt: skip
    loaded = load_for_evaluation(str(tmp_path / "clf"))
    assert loaded.flavour == "sklearn" and loaded.input_columns is None
    assert predict(loaded, frame[FEATURES]).scores is not None


def test_unloadable_uris_are_evaluation_errors(trained_project: Config, tmp_path: Path) -> None:
    Tracking(trained_project)
    with pytest.raises(EvaluationError, match="Cannot fetch the model models:/nope/9") as caught:
        load_for_evaluation("models:/nope/9")
    assert "shipyard models show" in str(caught.value.hint)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="not an MLflow model"):
        load_for_evaluation(str(tmp_path / "empty"))
