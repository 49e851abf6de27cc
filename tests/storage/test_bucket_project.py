"""A project whose artifact_root is a bucket: train on one host, load on another.

S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST API
to the real boto3/s3fs/pyarrow clients (MLflow's own S3 artifact repository included).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest

from shipyard.config import StorageSettings
from shipyard.data import load_snapshot
from shipyard.errors import StorageError
from shipyard.evaluation.evaluate import evaluate_version
from shipyard.governance.cards import verify_version
from shipyard.models.loading import load_model
from shipyard.models.served import load_served_model
from shipyard.registry import ModelRef
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import GenerationWatcher, ModelSlot
from shipyard.storage import artifact_location
from shipyard.store.traffic import TrafficSettings, write_traffic
from shipyard.training import train
from shipyard.training.reproduce import reproduce
from tests.support import call, copy_example, load, project_of, serve_in_thread, wait_for
from tests.support.s3 import S3Server, moto_server


def in_bucket(root: Path, s3: S3Server, bucket: str, **more: object) -> object:
    """The churn example at ``root`` with its files under ``bucket``/team."""
    return load(
        root,
        {"artifact_root": f"{bucket}/team", "storage.endpoint_url": s3.endpoint_url, **more},
    )


@pytest.mark.postgres
def test_a_version_trained_on_one_host_loads_on_another_from_the_bucket(
    s3: S3Server, tmp_path: Path, postgres_url: str
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients. One PostgreSQL, one bucket, two folders."""
    bucket = s3.bucket("team")
    first_root = copy_example(tmp_path / "host-a")
    second_root = copy_example(tmp_path / "host-b")
    first = project_of(in_bucket(first_root, s3, bucket, database_url=postgres_url))  # type: ignore[arg-type]
    result = train(first)
    first.close()

    keys = s3.keys(bucket)
    assert f"team/datasets/{result.data_digest}/data.parquet" in keys
    assert any(k.startswith("team/mlflow/") and k.endswith("/MLmodel") for k in keys)
    assert not (first_root / ".shipyard" / "artifacts").exists()  # nothing kept locally
    first_root.rename(tmp_path / "gone")  # host A's disk is not host B's

    second = project_of(in_bucket(second_root, s3, bucket, database_url=postgres_url))  # type: ignore[arg-type]
    assert second.client is not None  # MLflow's global tracking URI is now host B's
    model = load_model("models:/churn/1", name="churn", version="1")
    golden = pd.read_csv(second_root / "data" / "golden.csv").drop(columns=["churned"])
    assert len(model.model.predict(golden.head(5))) == 5
    snap = load_snapshot(result.data_digest, artifact_location(second.config))
    assert snap.data_url.startswith(f"{bucket}/team/datasets/")
    assert len(snap.frame()) == snap.rows
    report = reproduce(second, ModelRef("churn", version="1"))
    assert report.reproduced, report.differences
    evaluation = evaluate_version(second, ModelRef("churn", version="1"))
    assert evaluation.report_path is not None
    assert evaluation.report_path.startswith(f"{bucket}/team/reports/churn-v1-")
    html = artifact_location(second.config).read_text(
        evaluation.report_path.removeprefix(f"{bucket}/team/")
    )
    assert html.startswith("<!doctype html>")
    assert not (second_root / ".shipyard" / "artifacts").exists()
    assert not (second_root / ".shipyard" / "reports").exists()
    second.close()


def test_a_server_that_loses_the_bucket_keeps_serving_and_says_degraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients. It stops while the server runs."""
    with ExitStack() as bucket_up:
        s3 = bucket_up.enter_context(moto_server())
        for name, value in s3.environment().items():
            monkeypatch.setenv(name, value)
        bucket = s3.bucket("serve")
        project = project_of(in_bucket(copy_example(tmp_path / "p"), s3, bucket))  # type: ignore[arg-type]
        train(project)
        train(project)
        client = project.client
        slot = ModelSlot(load_served_model(client, "churn", "1"))
        endpoint = s3.endpoint_url
    # The bucket is gone now (the server stopped); version 1 is already in memory.
    watcher = GenerationWatcher(
        slot,
        store=project.store,
        client=client,
        interval=0.05,
        storage=StorageSettings(endpoint_url=endpoint, timeout_seconds=1),  # type: ignore[call-arg]
    )
    watcher.start()
    rows = pd.read_csv(project.config.root / "data" / "golden.csv").head(2)
    body = json.dumps({"instances": rows.drop(columns=["churned"]).to_dict("records")}).encode()
    try:
        with serve_in_thread(create_app(slot)) as url:
            write_traffic(project.store, "churn", TrafficSettings(challengers={"2": 0.5}))

            def storage_degraded() -> object:
                ready = json.loads(call(f"{url}/v2/health/ready")[2])
                return ready if "storage" in ready["degraded"] else None

            ready = wait_for(storage_degraded, what="readiness to report the bucket")
            assert ready["ready"] is True  # type: ignore[index]
            text = ready["degraded"]["storage"]  # type: ignore[index]
            assert "churn/2" in text and f"bucket '{bucket.removeprefix('s3://')}'" in text
            assert "Cannot reach" in text
            headers = {"Content-Type": "application/json"}
            assert call(f"{url}/v1/models/churn:predict", body, headers)[0] == 200
            assert slot.lineup.plan.routes[0].version == "1"
        # Commands say the same, at once: not "no signed card" or MLflow's retries.
        gone = f"Cannot reach bucket '{bucket.removeprefix('s3://')}'"
        with pytest.raises(StorageError, match=gone):
            load_model("models:/churn/2")
        with pytest.raises(StorageError, match=gone):
            verify_version(project, client.get_model_version("churn", "2"))
        with pytest.raises(StorageError, match=gone):
            reproduce(project, ModelRef("churn", version="2"))
    finally:
        watcher.stop()
        project.close()


def test_the_endpoint_in_shipyard_yaml_is_enough(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 is moto's standalone server on 127.0.0.1, a stand-in for AWS speaking the S3 REST
    API to the real boto3/s3fs/pyarrow clients. Only storage.endpoint_url names it: s3fs
    gets it from the settings and MLflow's S3 repository from MLFLOW_S3_ENDPOINT_URL."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name)
    bucket = s3.bucket("yaml")
    project = project_of(in_bucket(copy_example(tmp_path / "p"), s3, bucket))  # type: ignore[arg-type]
    result = train(project)
    keys = s3.keys(bucket)
    assert f"team/datasets/{result.data_digest}/data.parquet" in keys
    assert any(k.startswith("team/mlflow/") and k.endswith("/MLmodel") for k in keys)
    model = load_model(f"models:/churn/{result.version}")
    golden = pd.read_csv(project.config.root / "data" / "golden.csv").drop(columns=["churned"])
    assert len(model.model.predict(golden.head(3))) == 3
    project.close()
