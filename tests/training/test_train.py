from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from shipyard.config import Config, load_config
from shipyard.errors import EntrypointError, TrainingFailed, ValidationFailed
from shipyard.registry import Tracking, tags
from shipyard.store import Store
from shipyard.training import train
from tests.support import project_of


def test_train_registers_a_traceable_version(trained_project: Config) -> None:
    client = Tracking(trained_project).client
    version = client.get_model_version("churn", "1")
    vtags = version.tags
    assert len(vtags[tags.DATA_DIGEST]) == 64
    assert len(vtags[tags.ENV_DIGEST]) == 64
    assert vtags[tags.TRIGGER] == "manual"
    assert vtags[tags.ENTRYPOINT] == "train:train"
    assert vtags[tags.SEED] == "42"

    run = client.get_run(version.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["n_estimators"] == "100"
    assert run.data.params["seed"] == "42"
    assert 0.6 < run.data.metrics["roc_auc"] <= 1.0
    assert run.data.metrics["training_duration_seconds"] > 0
    contexts = {
        t.value for i in run.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context"
    }
    assert contexts == {"training", "validation"}
    digests = {i.dataset.digest for i in run.inputs.dataset_inputs}
    assert vtags[tags.DATA_DIGEST][:32] in digests

    artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"model_card.md", "model_card.json", "environment", "shipyard"} <= artifacts


def test_the_logged_model_links_to_its_registered_version(trained_project: Config) -> None:
    # MLflow's UI links a logged model to its versions through this tag (MLflow 3).
    client = Tracking(trained_project).client
    version = client.get_model_version("churn", "1")
    model_id = (version.source or "").removeprefix("models:/")
    logged = client.get_logged_model(model_id)
    assert logged.source_run_id == version.run_id
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "churn", "version": 1}]


def test_model_card_and_environment_artifacts(trained_project: Config, tmp_path: Path) -> None:
    client = Tracking(trained_project).client
    run_id = client.get_model_version("churn", "1").run_id
    card = json.loads(
        Path(client.download_artifacts(run_id, "model_card.json", tmp_path)).read_text()
    )
    assert card["purpose"].startswith("Predict which customers")
    assert card["owner"] == "growth-analytics"
    assert card["data"]["rows"] == 3000
    assert card["params"]["max_depth"] == 3
    assert "roc_auc" in card["metrics"]
    assert {c["name"] for c in card["inputs"]} == {
        "tenure_months",
        "monthly_charges",
        "contract",
        "support_calls",
        "region",
    }
    markdown = Path(client.download_artifacts(run_id, "model_card.md", tmp_path)).read_text()
    assert markdown.startswith("# Model card: churn v1")
    freeze = Path(client.download_artifacts(run_id, "environment/requirements.txt", tmp_path))
    assert "scikit-learn==" in freeze.read_text()


def test_model_logged_with_explicit_pins(trained_project: Config, tmp_path: Path) -> None:
    import mlflow

    Tracking(trained_project)
    folder = mlflow.artifacts.download_artifacts("models:/churn/1", dst_path=str(tmp_path))
    requirements = (Path(folder) / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements
    assert "mlflow==" in requirements
    model = mlflow.pyfunc.load_model("models:/churn/1")
    assert model.metadata.signature is not None


def test_train_records_events(trained_project: Config) -> None:
    kinds = [e.kind for e in Store(trained_project.db_url, actor="tester").events(limit=20)]
    assert "model_version.registered" in kinds
    assert "run.finished" in kinds
    assert kinds.count("dataset.snapshotted") >= 2  # training and validation data


def _registered_versions(config: Config) -> int:
    client = Tracking(config).client
    return len(client.search_model_versions(f"name = '{config.model.name}'"))


def test_validation_failure_halts_before_training(initialised_example: Path) -> None:
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.data": "data/bad_batch.csv"},
    )
    with pytest.raises(ValidationFailed) as info:
        train(project_of(config))
    report = info.value.report
    checks = {(f.column, f.check) for f in report.failures}
    assert len(report.failures) >= 4, checks
    halted = Store(config.db_url, actor="tester").events(kind="training.halted")
    assert len(halted) == 1
    assert len(halted[0].payload["failures"]) == len(report.failures)
    assert _registered_versions(config) == 0


def test_failing_training_function_marks_run_failed(initialised_example: Path) -> None:
    (initialised_example / "broken.py").write_text(
        textwrap.dedent("""
        def train(ctx):
            raise RuntimeError("diverged at epoch 3")
    """)
    )
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.entrypoint": "broken:train"},
    )
    with pytest.raises(TrainingFailed, match="diverged at epoch 3") as info:
        train(project_of(config))
    assert "Nothing was registered" in (info.value.hint or "")
    client = Tracking(config).client
    runs = client.search_runs([Tracking(config).experiment_id()])
    assert [r.info.status for r in runs] == ["FAILED"]
    traceback_file = client.download_artifacts(runs[0].info.run_id, "error/traceback.txt")
    assert "diverged at epoch 3" in Path(traceback_file).read_text()
    assert _registered_versions(config) == 0
    assert (
        Store(config.db_url, actor="tester")
        .events(kind="run.failed")[0]
        .payload["error"]
        .startswith("RuntimeError")
    )


def test_train_function_returning_no_model_fails(initialised_example: Path) -> None:
    (initialised_example / "empty.py").write_text("def train(ctx):\n    return None\n")
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.entrypoint": "empty:train"},
    )
    with pytest.raises(TrainingFailed, match="predict"):
        train(project_of(config))


@pytest.mark.parametrize(
    ("entrypoint", "message"),
    [
        ("nosuchmodule:train", "Cannot import module 'nosuchmodule'"),
        ("train:nosuchfunction", "has no attribute 'nosuchfunction'"),
        ("train", "not of the form module:function"),
    ],
)
def test_bad_entrypoint_is_reported_before_any_run(
    initialised_example: Path, entrypoint: str, message: str
) -> None:
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.entrypoint": entrypoint},
    )
    with pytest.raises(EntrypointError, match=message):
        train(project_of(config))


KINDS = textwrap.dedent("""
    import numpy as np

    class MeanModel:
        def fit(self, y):
            self.mean_ = float(np.mean(y))
            return self

        def predict(self, X):
            return np.full(len(X), self.mean_)

    def numeric(ctx):
        X, y = ctx.features()
        return X.select_dtypes("number"), y

    def xgb(ctx):
        import xgboost
        X, y = numeric(ctx)
        return xgboost.XGBClassifier(n_estimators=5, max_depth=2, random_state=ctx.seed).fit(X, y)

    def lgbm(ctx):
        import lightgbm
        X, y = numeric(ctx)
        return lightgbm.LGBMClassifier(n_estimators=5, random_state=ctx.seed, verbose=-1).fit(X, y)

    def plain(ctx):
        _, y = ctx.features()
        return MeanModel().fit(y)
""")


@pytest.mark.parametrize(
    ("entrypoint", "flavour"),
    [("kinds:xgb", "xgboost"), ("kinds:lgbm", "lightgbm"), ("kinds:plain", "python_function")],
)
def test_flavour_follows_the_model_library(
    initialised_example: Path, entrypoint: str, flavour: str
) -> None:
    (initialised_example / "kinds.py").write_text(KINDS)
    # Models trained on numeric columns only: drop the categoricals from the data.
    import pandas as pd

    frame = pd.read_csv(initialised_example / "data" / "train.csv")
    frame.drop(columns=["contract", "region"]).to_csv(
        initialised_example / "numeric.csv", index=False
    )
    config = load_config(
        initialised_example / "shipyard.yaml",
        environ={},
        overrides={"train.entrypoint": entrypoint, "train.data": "numeric.csv"},
    )
    config = config.model_copy(
        update={
            "train": config.train.model_copy(update={"validation_data": None, "data_schema": None})
        }
    )
    result = train(project_of(config))
    assert result.flavour == flavour
    import mlflow

    model = mlflow.pyfunc.load_model(result.model_uri)
    predictions = model.predict(frame.drop(columns=["contract", "region", "churned"]).head(7))
    assert len(predictions) == 7


@pytest.mark.postgres
def test_train_on_postgres(example_project: Path, postgres_url: str) -> None:
    config = load_config(
        example_project / "shipyard.yaml", environ={}, overrides={"database_url": postgres_url}
    )
    result = train(project_of(config))
    assert result.version == "1"
    client = Tracking(config).client
    assert client.get_model_version("churn", "1").tags[tags.DATA_DIGEST] == result.data_digest
    kinds = {e.kind for e in Store(postgres_url, actor="tester").events()}
    assert {"model_version.registered", "run.finished", "dataset.snapshotted"} <= kinds
