"""A registered version with the ``shipyard.features`` tag, served end to end by ``build_server``.

The model is logged and registered with MLflow as training code would, tagged with the
features it reads; the server finds the tag, reads the project's definitions and its
SQLite online store, and answers the three protocols from entity keys. The prediction
log it writes is then read by ``shipyard logs query`` and scored by ``shipyard monitor
run``: the served features' extra fields (entity keys, ``feature_ts__<view>``) are input
fields like any other and break neither.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from shipyard.cli import run
from shipyard.config import Config, load_config
from shipyard.features.online import open_online_store
from shipyard.features.repo import load_repo
from shipyard.serving.features import TS_PREFIX, FeatureSpec
from shipyard.serving.server import ServeSpec, build_server
from tests.support import in_process, project_of, wait_for
from tests.support.features import driver_yaml, register_tagged_drivers, write_driver_stats

DRIVERS = 40
FRESH = time.time() - 600


@pytest.fixture(scope="module")
def project(trained_examples: Any, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The churn example's workspace, with the driver view, an online store and a model."""
    root = trained_examples.copy(tmp_path_factory.mktemp("served") / "churn").root
    write_driver_stats(root / "data")
    path = root / "shipyard.yaml"
    document = yaml.safe_load(path.read_text())
    document["features"] = driver_yaml()["features"]
    document.setdefault("monitoring", {})["min_rows"] = 20
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    config = load_config(path, environ={})
    _materialise(config)
    register_tagged_drivers(config)
    return config


def _materialise(config: Config) -> None:
    view = load_repo(config).views["driver_stats"]
    stamps = pa.array([int(FRESH * 1e6)] * DRIVERS, pa.timestamp("us", tz="UTC"))
    rng = np.random.default_rng(3)
    batch = pa.RecordBatch.from_pydict(
        {
            "driver_id": list(range(DRIVERS)),
            "event_timestamp": stamps,
            "created": stamps,
            "conv_rate": rng.uniform(0, 1, DRIVERS).tolist(),
            "trips": rng.integers(0, 50, DRIVERS).tolist(),
        }
    )
    store = open_online_store(config)
    try:
        store.write(view, ["driver_id"], batch)
    finally:
        store.close()


def _bodies(rows: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    """The same rows in KServe V1, Open Inference V2 and MLflow ``/invocations``."""
    v1 = json.dumps({"instances": rows}).encode()
    split = {
        "columns": ["driver_id", "speed"],
        "data": [[r["driver_id"], r["speed"]] for r in rows],
    }
    v2 = {
        "inputs": [
            {
                "name": "driver_id",
                "shape": [len(rows)],
                "datatype": "INT64",
                "data": [r["driver_id"] for r in rows],
            },
            {
                "name": "speed",
                "shape": [len(rows)],
                "datatype": "FP64",
                "data": [r["speed"] for r in rows],
            },
        ]
    }
    return [
        ("/v1/models/drivers:predict", v1),
        ("/v2/models/drivers/infer", json.dumps(v2).encode()),
        ("/invocations", json.dumps({"dataframe_split": split}).encode()),
    ]


@pytest.fixture(scope="module")
def served_log(project: Config) -> list[dict[str, Any]]:
    """Serve 60 requests (20 per protocol, one unknown driver each time), then stop."""
    server = build_server(ServeSpec.of(project, "drivers/1"))
    assert isinstance(server.app.state.service.slot.current.spec, FeatureSpec)
    answers: list[tuple[int, bytes]] = []
    with in_process(server.app) as client:
        for i in range(20):
            rows = [{"driver_id": i, "speed": 40.0 + i}, {"driver_id": 1000 + i, "speed": 50.0}]
            for path, body in _bodies(rows):
                status, _, payload = client.call(path, body, {"Content-Type": "application/json"})
                answers.append((status, payload))
    assert all(status == 200 for status, _ in answers), answers[:3]
    return [{"status": status} for status, _ in answers]


def test_the_server_reads_the_tag_and_answers_every_protocol(served_log: list[Any]) -> None:
    assert len(served_log) == 60


def test_logs_query_shows_the_served_features_keys_and_event_times(
    project: Config,
    served_log: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(project.root)
    assert run(["logs", "query", "drivers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 120  # 60 requests of two rows
    by_driver = {row["inputs"]["driver_id"]: row["inputs"] for row in rows}
    known, unknown = by_driver[3], by_driver[1003]
    assert set(known) == {"conv_rate", "trips", "speed", "driver_id", f"{TS_PREFIX}driver_stats"}
    assert known[f"{TS_PREFIX}driver_stats"] == pytest.approx(FRESH, abs=1e-3)
    assert 0 <= known["conv_rate"] <= 1
    assert unknown["conv_rate"] is None or np.isnan(unknown["conv_rate"])
    # NaN when nothing was served (DuckDB orders NaN above every number: test it with isnan).
    sql = f"SELECT count(*) AS n FROM log WHERE NOT isnan(inputs.{TS_PREFIX}driver_stats)"
    assert run(["logs", "query", "drivers", "--sql", sql, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"n": 60}]
    assert run(["logs", "query", "drivers"]) == 0  # the table view too
    assert f"{TS_PREFIX}driver_stats" in capsys.readouterr().out


def test_logs_query_flat_spreads_the_inputs_and_shows_event_times_as_utc(
    project: Config,
    served_log: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(project.root)
    assert run(["logs", "query", "drivers", "--flat", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert "inputs" not in rows[0]
    known = next(row for row in rows if row["inputs.driver_id"] == 3)
    assert known[f"inputs.{TS_PREFIX}driver_stats"] == pytest.approx(FRESH, abs=1e-3)
    assert run(["logs", "query", "drivers", "--flat", "--limit", "200"]) == 0
    shown = capsys.readouterr().out
    stamp = datetime.fromtimestamp(FRESH, UTC).strftime("%Y-%m-%d %H:%M")
    assert f"inputs.{TS_PREFIX}driver_stats" in shown
    assert stamp in shown


def test_monitor_run_scores_a_window_of_served_features(
    project: Config,
    served_log: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(project.root)
    code = run(["monitor", "run", "drivers", "--version", "1", "--no-alerts", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    text = json.dumps(result)
    assert "conv_rate" in text and "speed" in text  # the model's inputs are scored
    assert f"{TS_PREFIX}driver_stats" not in text  # the extra fields are not features


def test_a_request_without_the_entity_key_is_a_400_naming_it(project: Config) -> None:
    server = build_server(ServeSpec.of(project, "drivers/1", log_predictions=False))
    with in_process(server.app) as client:
        for path, body in _bodies([{"driver_id": 1, "speed": 1.0}]):
            body = body.replace(b"driver_id", b"driver")
            status, _, payload = client.call(path, body, {"Content-Type": "application/json"})
            assert status == 400, (path, payload)
            assert b"driver_id" in payload, (path, payload)


def test_a_version_swapped_in_by_the_watcher_is_served_from_entity_keys(
    project: Config, served_log: list[Any]
) -> None:
    # Last in this module: it registers drivers/2 and makes it the champion.
    from shipyard.registry.aliases import move_alias

    control = project_of(project)
    move_alias(control.store, control.client, "drivers", "champion", "1", action="promote")
    server = build_server(ServeSpec.of(project, "drivers", log_predictions=False))
    slot = server.app.state.service.slot
    assert server.following and slot.current.version == "1"
    second = register_tagged_drivers(project)
    move_alias(control.store, control.client, "drivers", "champion", second, action="promote")
    path, body = _bodies([{"driver_id": 2, "speed": 50.0}])[0]
    with in_process(server.app) as client:
        wait_for(lambda: slot.current.version == second, what=f"drivers/{second} swapped in")
        status, headers, payload = client.call(path, body)
    control.close()
    assert isinstance(slot.current.spec, FeatureSpec)
    assert status == 200, payload
    assert headers["x-model-version"] == second
