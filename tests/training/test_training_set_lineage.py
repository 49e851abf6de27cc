"""Training on a point-in-time training set (the rides example): `shipyard features apply`
and `shipyard train` work, and the model version carries the training set's lineage in its
``shipyard.features`` tag, the tag serving reads to know which features to look up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.config import Config, load_config
from shipyard.data import load_snapshot
from shipyard.errors import ConfigError
from shipyard.features import load_repo
from shipyard.features.training_set import FEATURES_TAG
from shipyard.registry import Tracking, tags
from shipyard.training import train
from shipyard.training.context import TrainContext
from tests.support import project_of

RIDES = Path(__file__).resolve().parents[2] / "examples" / "rides"
FEATURES = [
    "driver_hourly_stats:conv_rate",
    "driver_hourly_stats:acc_rate",
    "driver_hourly_stats:avg_daily_trips",
    "ride_features:trips_per_km",
]
MODEL_COLUMNS = ["conv_rate", "acc_rate", "avg_daily_trips", "trips_per_km", "ride_distance_km"]


def _copy(destination: Path) -> Path:
    shutil.copytree(RIDES, destination, ignore=shutil.ignore_patterns(".shipyard", "mlruns"))
    return destination


def _shipyard(root: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def trained_rides(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The rides example copied, its features applied and its model trained by the CLI."""
    root = _copy(tmp_path_factory.mktemp("rides") / "rides")
    mp = pytest.MonkeyPatch()
    try:  # the module fixture runs outside the per-test environment: same rules here
        mp.setenv("LOGNAME", "tester")
        mp.setenv("SHIPYARD_SECURITY__CREDENTIALS", str(root.parent / "credentials.json"))
        applied = _shipyard(root, "features", "apply")
        assert "driver_hourly_stats" in applied and "ride_features" in applied
        _shipyard(root, "train")
    finally:
        mp.undo()
    return load_config(root / "shipyard.yaml", environ={})


def test_the_model_version_carries_the_training_sets_lineage(trained_rides: Config) -> None:
    version = Tracking(trained_rides).client.get_model_version("ride-acceptance", "1")
    lineage = json.loads(version.tags[FEATURES_TAG])
    repo = load_repo(trained_rides)
    assert lineage["features"] == FEATURES
    assert lineage["columns"] == {ref: ref.split(":")[1] for ref in FEATURES}
    assert lineage["views"] == {
        "driver_hourly_stats": repo.views["driver_hourly_stats"].version,
        "ride_features": repo.on_demand["ride_features"].version,
    }
    assert lineage["entity_keys"] == ["driver_id"]
    assert lineage["request_inputs"] == ["ride_distance_km"]
    assert lineage["mode"] == "event_time"
    assert len(lineage["entities_digest"]) == 64
    # The training set is the run's data: its snapshot digest is the data digest.
    assert version.tags[tags.DATA_DIGEST] == lineage["snapshot"]
    run = Tracking(trained_rides).client.get_run(version.run_id)
    assert run.data.tags[FEATURES_TAG] == version.tags[FEATURES_TAG]
    assert run.data.metrics["roc_auc"] > 0.6


def test_the_training_set_is_snapshotted_and_recorded(trained_rides: Config) -> None:
    version = Tracking(trained_rides).client.get_model_version("ride-acceptance", "1")
    digest = version.tags[tags.DATA_DIGEST]
    project = project_of(trained_rides)
    try:
        row = project.store.dataset(digest)
        snap = load_snapshot(digest, project.artifact_location)
    finally:
        project.close()
    assert row is not None and row.rows == 3000
    frame = snap.frame()
    assert list(frame.columns) == [
        "driver_id",
        "event_timestamp",
        "ride_distance_km",
        "accepted",
        *MODEL_COLUMNS[:4],
    ]


def test_the_model_takes_the_feature_columns_then_the_request_inputs(
    trained_rides: Config,
) -> None:
    import mlflow

    version = Tracking(trained_rides).client.get_model_version("ride-acceptance", "1")
    Tracking(trained_rides)  # points MLflow at the project's store
    info = mlflow.models.get_model_info(version.source)
    assert info.signature is not None
    assert info.signature.inputs.input_names() == MODEL_COLUMNS
    # every feature column admits a missing value (an unknown or expired entity)
    assert {c.type.name for c in info.signature.inputs.inputs} == {"double"}


def test_a_run_with_neither_data_nor_a_training_set_says_what_to_do(tmp_path: Path) -> None:
    root = _copy(tmp_path / "rides")
    (root / "train.py").write_text(
        "from sklearn.dummy import DummyClassifier\n\n"
        "def train(ctx):\n"
        "    return DummyClassifier().fit([[0], [1]], [0, 1])\n"
    )
    project = project_of(load_config(root / "shipyard.yaml", environ={}))
    try:
        with pytest.raises(ConfigError, match="No training data") as caught:
            train(project)
    finally:
        project.close()
    assert "ctx.training_set" in (caught.value.hint or "")


def test_a_training_set_error_in_a_run_keeps_its_own_message(tmp_path: Path) -> None:
    root = _copy(tmp_path / "rides")
    text = (root / "train.py").read_text()
    (root / "train.py").write_text(
        text.replace("driver_hourly_stats:acc_rate", "driver_hourly_stats:speed")
    )
    project = project_of(load_config(root / "shipyard.yaml", environ={}))
    try:
        with pytest.raises(ConfigError, match="no feature 'speed'") as caught:
            train(project)
        failed = project.store.events(kind="run.failed")
    finally:
        project.close()
    assert "conv_rate, acc_rate, avg_daily_trips" in (caught.value.hint or "")
    assert len(failed) == 1 and "speed" in failed[0].payload["error"]


def test_ctx_training_set_outside_a_run_is_a_clear_error() -> None:
    import pandas as pd

    ctx = TrainContext(train=pd.DataFrame(), params={}, seed=1)
    with pytest.raises(ConfigError, match="shipyard train"):
        ctx.training_set("data/rides.parquet", FEATURES)


def test_models_lineage_shows_the_training_sets_views_and_entities(trained_rides: Config) -> None:
    from shipyard.registry import lineage, parse_ref

    project = project_of(trained_rides)
    found = lineage(project.client, parse_ref("ride-acceptance/1"))
    assert set(found.features["views"]) == {"driver_hourly_stats", "ride_features"}
    assert found.features["entity_keys"] == ["driver_id"]
    assert found.features["mode"] == "event_time"
    assert len(found.features["entities_digest"]) >= 12
    assert found.to_dict()["features"]["features"] == FEATURES
    project.close()


def test_a_version_trained_on_a_training_set_reproduces_from_its_recorded_rows(
    trained_rides: Config,
) -> None:
    """`shipyard reproduce` hands ctx.training_set the recorded snapshot, not a new join."""
    from shipyard.registry import parse_ref
    from shipyard.training.reproduce import reproduce

    project = project_of(trained_rides)
    report = reproduce(project, parse_ref("ride-acceptance/1"))
    assert report.reproduced, report.differences
    assert report.predictions_compared == 3000 and report.predictions_differing == 0
    assert report.metrics, "the run's metrics were compared"
    project.close()


def test_the_rides_model_is_served_with_online_features(trained_rides: Config) -> None:
    """The example end to end: fresh data, materialised, served from driver_id alone.

    Runs last in this module: it rewrites the copy's data to end at the current hour (the
    committed data is from 2024, past the view's 2 h ttl today). The definitions, and so
    the view versions the model was trained on, are unchanged."""
    from shipyard.serving.server import ServeSpec, build_server
    from tests.support import in_process

    root = trained_rides.root
    done = subprocess.run(
        [sys.executable, "make_data.py", "--recent"], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    project = project_of(trained_rides)
    from shipyard.features.materialize import materialize

    copied = materialize(project)
    assert sum(result.rows for result in copied) > 0
    server = build_server(ServeSpec.of(trained_rides, "ride-acceptance/1", log_predictions=False))
    body = {"instances": [{"driver_id": 1003, "ride_distance_km": 4.2}]}
    with in_process(server.app) as client:
        status, _, payload = client.call(
            "/v1/models/ride-acceptance:predict",
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 200, payload
        assert len(json.loads(payload)["predictions"]) == 1
        _, _, metrics = client.call("/metrics", None, {})
    hits = [
        line
        for line in metrics.decode().splitlines()
        if line.startswith("shipyard_feature_lookups_total")
        and 'outcome="hit"' in line
        and 'view="driver_hourly_stats"' in line
    ]
    assert hits and float(hits[0].rsplit(" ", 1)[1]) == 1.0, hits
    project.close()
