"""Champion/challenger weights, sticky routing and shadow isolation on a real server."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.models import infer_signature

from shipyard.config import Config, load_config
from shipyard.delivery import TrafficSettings, write_traffic
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel, load_served_model
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.serving.app import create_app
from shipyard.serving.hot_swap import GenerationWatcher, Lineup, ModelSlot
from shipyard.serving.router import Route, Router, StickyKey, TrafficPlan
from shipyard.store import Store
from tests.models.test_served import register_numeric
from tests.serving.live import call, serve_in_thread

NAME = "router"
SHADOW_SLEEP = 0.4


class Sleepy(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A shadow that takes far longer than any live request may."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        time.sleep(SHADOW_SLEEP)
        return np.zeros(len(model_input))


class Broken(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A shadow that always fails."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        raise RuntimeError("shadow exploded")


@dataclass
class Versions:
    config: Config
    models: dict[str, ServedModel]  # 1, 2: classifiers; 3: sleepy; 4: broken
    rows: pd.DataFrame


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> Versions:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    from tests.conftest import copy_example

    project = copy_example(tmp_path_factory.mktemp("routing") / "churn")
    config = load_config(project / "shipyard.yaml", environ={})
    X = register_numeric(config, NAME, LogisticRegression(max_iter=500).fit, "sklearn")
    register_numeric(config, NAME, GaussianNB().fit, "sklearn")
    signature = infer_signature(X, np.zeros(len(X)))
    for python_model in (Sleepy(), Broken()):
        with mlflow.start_run(experiment_id=Tracking(config).experiment_id()):
            mlflow.pyfunc.log_model(
                name="model",
                python_model=python_model,
                signature=signature,
                registered_model_name=NAME,
                pip_requirements=["mlflow"],
            )
    client = Tracking(config).client
    models = {v: load_served_model(client, NAME, v) for v in ("1", "2", "3", "4")}
    return Versions(config, models, X.head(4))


def lineup(versions: Versions, plan: TrafficPlan) -> Lineup:
    wanted = {r.version for r in plan.routes} | {plan.shadow_version} - {None}
    return Lineup({v: versions.models[v] for v in wanted if v}, Router(plan))


def body(rows: pd.DataFrame) -> bytes:
    return json.dumps({"instances": rows.to_dict("records")}).encode()


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[PredictionLogWriter]:
    with PredictionLogWriter(tmp_path, roll_seconds=0.2) as writer:
        yield writer


def test_sticky_header_keeps_each_caller_on_one_version(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 0.5), Route("2", "challenger", 0.5)))
    app = create_app(ModelSlot(lineup(versions, plan)), sticky=StickyKey.parse("header:X-User"))
    seen: dict[str, set[str]] = {}
    with serve_in_thread(app) as host_port:
        url = f"http://{host_port}/v1/models/{NAME}:predict"
        for user in range(40):
            for _ in range(3):
                status, headers, _ = call(url, body(versions.rows.head(1)), {"X-User": f"u{user}"})
                assert status == 200
                seen.setdefault(f"u{user}", set()).add(headers["x-model-version"])
                assert headers["x-model-role"] in ("champion", "challenger")
    assert all(len(found) == 1 for found in seen.values()), seen
    on_challenger = sum(found == {"2"} for found in seen.values())
    assert 8 <= on_challenger <= 32  # 40 callers at 50 %: far outside this is a broken hash


def test_sticky_input_column_routes_by_the_first_rows_value(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 0.5), Route("2", "challenger", 0.5)))
    slot = ModelSlot(lineup(versions, plan))
    app = create_app(slot, sticky=StickyKey.parse("input:tenure_months"))
    rows = versions.rows
    with serve_in_thread(app) as host_port:
        url = f"http://{host_port}/invocations"
        split = json.dumps({"dataframe_split": rows.head(1).to_dict("split")}).encode()
        answers = {call(url, split, {"Content-Type": "application/json"})[1]["x-model-version"]}
        for _ in range(10):
            answers.add(
                call(url, split, {"Content-Type": "application/json"})[1]["x-model-version"]
            )
    key = str(float(rows.iloc[0]["tenure_months"]))
    assert answers == {slot.lineup.router.decide(key).version}


def test_weights_split_unkeyed_traffic(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 0.8), Route("2", "challenger", 0.2)))
    with serve_in_thread(create_app(ModelSlot(lineup(versions, plan)))) as host_port:
        url = f"http://{host_port}/v1/models/{NAME}:predict"
        answered = Counter(call(url, body(versions.rows))[1]["x-model-version"] for _ in range(300))
    assert set(answered) == {"1", "2"}
    assert 0.12 <= answered["2"] / 300 <= 0.28, answered


@pytest.mark.parametrize("shadow", ["3", "4"], ids=["sleeping", "raising"])
def test_a_shadow_never_touches_the_live_response(
    versions: Versions, logs: PredictionLogWriter, shadow: str
) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0),), shadow_version=shadow, shadow_share=1)
    champion = versions.models["1"]
    app = create_app(ModelSlot(lineup(versions, plan)), log=logs, shadow_capacity=3)
    latencies: list[float] = []
    with serve_in_thread(app) as host_port:
        url = f"http://{host_port}/v1/models/{NAME}:predict"
        for i in range(12):
            started = time.perf_counter()
            status, headers, payload = call(url, body(versions.rows), {"X-Request-ID": f"r{i}"})
            latencies.append(time.perf_counter() - started)
            assert status == 200, payload
            assert headers["x-model-version"] == "1"
            want = champion.model.predict(versions.rows).tolist()
            assert json.loads(payload)["predictions"] == want
        app.state.shadows.close()
    # Twelve requests in a row against a 0.4 s shadow: on the request path they would
    # take ≥ 0.4 s each; off it they take milliseconds.
    assert max(latencies) < SHADOW_SLEEP / 2, latencies
    runner = app.state.shadows
    logs.flush()
    table = query_log(
        logs.root, NAME, sql="SELECT role, status, count(*) AS n FROM log GROUP BY 1, 2"
    )
    counts = {(r["role"], r["status"]): r["n"] for r in table.to_pylist()}
    assert counts[("live", "ok")] == 12 * len(versions.rows)
    # Every copy is predicted or, when the queue of 3 is full, dropped and counted.
    assert runner.completed + runner.failed + runner.dropped == 12
    if shadow == "3":  # slow: the queue fills, so some copies are dropped
        assert runner.dropped > 0 and runner.completed >= 1 and runner.failed == 0
        assert counts[("shadow", "ok")] == runner.completed * len(versions.rows)
    else:  # raising: what ran is logged as an error
        assert runner.failed >= 1 and runner.completed == 0
        assert counts[("shadow", "error")] == runner.failed * len(versions.rows)


def test_shadow_errors_show_in_metrics(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0),), shadow_version="4", shadow_share=1)
    app = create_app(ModelSlot(lineup(versions, plan)))
    with serve_in_thread(app) as host_port:
        for _ in range(3):
            call(f"http://{host_port}/v1/models/{NAME}:predict", body(versions.rows))
        app.state.shadows.close()
        text = call(f"http://{host_port}/metrics")[2].decode()
    sample = (
        'shipyard_requests_total{model="router",protocol="shadow",role="shadow",'
        'status="error",version="4"} 3.0'
    )
    assert sample in text
    assert 'shipyard_traffic_weight{model="router",role="shadow",version="4"} 1.0' in text


def test_a_pinned_version_is_served_only_when_in_the_lineup(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0), Route("2", "challenger", 0.0)))
    with serve_in_thread(create_app(ModelSlot(lineup(versions, plan)))) as host_port:
        infer = f"http://{host_port}/v2/models/{NAME}/versions/{{}}/infer"
        rows = versions.rows.to_numpy()
        request = {
            "inputs": [
                {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, i].tolist()}
                for i, c in enumerate(versions.rows.columns)
            ]
        }
        status, headers, _ = call(infer.format("2"), json.dumps(request).encode())
        assert status == 200 and headers["x-model-version"] == "2"
        assert headers["x-model-role"] == "challenger"
        status, _, payload = call(infer.format("7"), json.dumps(request).encode())
        assert status == 404 and "Served versions: 1, 2" in json.loads(payload)["error"]


def test_traffic_settings_reach_the_server_through_the_control_plane(versions: Versions) -> None:
    config = versions.config
    store = Store(config.db_url, actor="tester")
    client = Tracking(config).client
    move_alias(store, client, NAME, "champion", "1", action="promote")
    slot = ModelSlot(versions.models["1"])
    watcher = GenerationWatcher(slot, store=store, client=client, interval=0.05)
    watcher.start()
    try:
        write_traffic(store, NAME, TrafficSettings(challengers={"2": 0.25}, shadow="3"))
        deadline = time.monotonic() + 5
        while slot.lineup.plan.shadow_version != "3":
            assert time.monotonic() < deadline, "traffic change did not arrive"
            time.sleep(0.01)
        plan = slot.lineup.plan
        assert {(r.version, r.role, r.weight) for r in plan.routes} == {
            ("1", "champion", 0.75),
            ("2", "challenger", 0.25),
        }
        # A challenger that cannot load is left out; the champion takes its share.
        write_traffic(store, NAME, TrafficSettings(challengers={"99": 0.5}))
        deadline = time.monotonic() + 5
        while "load_error" not in slot.status:
            assert time.monotonic() < deadline, "load failure not reported"
            time.sleep(0.01)
        assert [(r.version, r.weight) for r in slot.lineup.plan.routes] == [("1", 1.0)]
        assert slot.lineup.plan.shadow_version is None
        assert store.events(kind="serving.load_failed")[0].subject == f"model:{NAME}/99"
    finally:
        watcher.stop()
        write_traffic(store, NAME, TrafficSettings())


def test_a_failing_live_challenger_is_logged_as_errors(
    versions: Versions, logs: PredictionLogWriter
) -> None:
    """The error guardrail needs live failures in the log, not only the successes."""
    plan = TrafficPlan(routes=(Route("1", "champion", 0.5), Route("4", "challenger", 0.5)))
    app = create_app(ModelSlot(lineup(versions, plan)), log=logs)
    with serve_in_thread(app) as host_port:
        url = f"http://{host_port}/v1/models/{NAME}:predict"
        statuses = Counter(call(url, body(versions.rows.head(1)))[0] for _ in range(60))
    logs.flush()
    assert set(statuses) == {200, 500}
    rows = query_log(
        logs.root,
        NAME,
        sql="SELECT version, status, count(*) AS n FROM log WHERE role = 'live' GROUP BY ALL",
    ).to_pylist()
    logged = {(r["version"], r["status"]): r["n"] for r in rows}
    assert logged == {("1", "ok"): statuses[200], ("4", "error"): statuses[500]}
