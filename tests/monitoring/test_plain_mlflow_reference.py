"""A champion registered by plain MLflow code can be monitored.

Its reference is the file its run logged as its training dataset input, or the file
named once with ``shipyard monitor reference set NAME/V FILE`` (snapshotted, tagged on the
version, recorded as an audited event).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.cli import run
from shipyard.config import Config
from shipyard.errors import NotFoundError
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.models.served import load_served_model
from shipyard.monitoring.references import reference_set, set_reference
from shipyard.monitoring.run import run_monitor
from shipyard.registry import Tracking, tags
from tests.support import NUMERIC, TrainedExamples, project_of


@pytest.fixture
def project_root(trained_examples: TrainedExamples, tmp_path: Path) -> Config:
    """The churn example with its workspace created, nothing trained."""
    return trained_examples.copy(tmp_path / "churn")


def register_plain(config: Config, name: str, source: str | None) -> None:
    """Fit and register ``name`` the way plain MLflow code does, logging its training input."""
    import mlflow
    from mlflow.data.pandas_dataset import from_pandas
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(config.root / "data" / "train.csv")
    X = frame[NUMERIC].astype(float)
    model = LogisticRegression(max_iter=200).fit(X, frame["churned"])
    with mlflow.start_run(experiment_id=Tracking(config).experiment_id("plain-mlflow")):
        dataset = from_pandas(frame, source=source, name="customers")
        mlflow.log_input(dataset, context="training")
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            input_example=X.head(2),
            pip_requirements=["scikit-learn"],
        )


def log_predictions(config: Config, name: str, frame: pd.DataFrame) -> None:
    """What a server would have logged for ``frame``, one request per row."""
    with PredictionLogWriter(config.resolve(config.serving.logs)) as writer:
        for i, row in enumerate(frame[NUMERIC].to_numpy(dtype=np.float64)):
            writer.log(
                PredictionBatch(
                    request_id=f"plain-{i}",
                    time=datetime.now(UTC),
                    model=name,
                    version="1",
                    role="live",
                    columns=tuple(NUMERIC),
                    matrix=row.reshape(1, -1),
                    labels=np.array([0]),
                    probabilities=np.array([[0.6, 0.4]]),
                    latency_ms=1.0,
                    status="ok",
                )
            )


def test_the_reference_comes_from_the_runs_logged_dataset_input(project_root: Config) -> None:
    config = project_root
    register_plain(config, "plain", source="data/train.csv")
    project = project_of(config)
    model = load_served_model(project.client, "plain", "1")

    found = reference_set(config, project.client, model)

    assert "dataset input data/train.csv" in found.origin
    assert sorted(found.reference.columns) == sorted(NUMERIC)
    assert found.reference.rows == len(pd.read_csv(config.root / "data" / "train.csv"))
    # Monitoring runs end to end on it: a window of shifted traffic drifts on that feature.
    shifted = pd.read_csv(config.root / "data" / "golden.csv").head(600)
    shifted["monthly_charges"] = shifted["monthly_charges"] * 1.6 + 20
    log_predictions(config, "plain", shifted)
    result = run_monitor(project, "plain", version="1", window="last:600", alerts=False)
    levels = {f["feature"]: f["level"] for f in result.features}
    assert levels["monthly_charges"] in ("retrain", "pause"), levels
    assert levels["tenure_months"] == "ok"


def test_without_a_readable_input_the_error_names_the_command(project_root: Config) -> None:
    register_plain(project_root, "plain", source=None)  # MLflow records the code as source
    project = project_of(project_root)
    model = load_served_model(project.client, "plain", "1")

    with pytest.raises(NotFoundError) as caught:
        reference_set(project_root, project.client, model)

    assert "shipyard monitor reference set plain/1 FILE" in (caught.value.hint or "")


def test_reference_set_snapshots_tags_and_records_an_event(project_root: Config) -> None:
    config = project_root
    register_plain(config, "plain", source=None)
    project = project_of(config)

    change = set_reference(project, "plain", "1", Path("data/golden.csv"))

    version = project.client.get_model_version("plain", "1")
    assert version.tags[tags.REFERENCE_DIGEST] == change.digest
    assert change.rows == len(pd.read_csv(config.root / "data" / "golden.csv"))
    assert change.previous is None
    (event,) = project.store.events(kind="monitor.reference_set", subject="model:plain/1")
    assert event.payload["digest"] == change.digest
    found = reference_set(config, project.client, load_served_model(project.client, "plain", "1"))
    assert found.digest == change.digest and "reference" in found.origin
    # Setting it again says what it replaced.
    again = set_reference(project, "plain", "1", Path("data/train.csv"))
    assert again.previous == change.digest and again.digest != change.digest


def test_reference_set_refuses_data_without_the_models_inputs(project_root: Config) -> None:
    register_plain(project_root, "plain", source=None)
    bad = project_root.root / "labels-only.csv"
    pd.DataFrame({"churned": [0, 1]}).to_csv(bad, index=False)

    with pytest.raises(NotFoundError, match="no column"):
        set_reference(project_of(project_root), "plain", "1", bad)

    version = project_of(project_root).client.get_model_version("plain", "1")
    assert tags.REFERENCE_DIGEST not in version.tags


def test_the_cli_command(
    project_root: Config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    register_plain(project_root, "plain", source=None)
    monkeypatch.chdir(project_root.root)

    assert run(["monitor", "reference", "set", "plain/1", "data/golden.csv", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "plain" and printed["version"] == "1"
    assert len(printed["digest"]) == 64
    assert run(["monitor", "reference", "set", "plain/1", "data/golden.csv"]) == 0
    assert "plain/1 is now monitored against snapshot" in capsys.readouterr().out
    assert run(["monitor", "reference", "set", "plain", "data/golden.csv"]) == 3
    assert run(["monitor", "reference", "set", "plain/1", "nowhere.csv"]) == 4
