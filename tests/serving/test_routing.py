"""Champion/challenger weights, sticky routing and shadow isolation, through the app."""

from __future__ import annotations

import json
import threading
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

from shipyard.config import Config
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
from tests.support import (
    PATIENCE,
    TrainedExamples,
    in_process,
    register_numeric,
    wait_for,
)

NAME = "router"
# While HOLD is set, the held shadow's predictions wait until RELEASE is: a shadow
# slower than any live request, however fast or slow the machine is.
HOLD, RELEASE = threading.Event(), threading.Event()


class Held(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A shadow whose predictions wait, while a test holds them, until it lets them go."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        if HOLD.is_set():
            RELEASE.wait(PATIENCE)
        return np.zeros(len(model_input))


class Broken(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A shadow that always fails."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        raise RuntimeError("shadow exploded")


@dataclass
class Versions:
    config: Config
    models: dict[str, ServedModel]  # 1, 2: classifiers; 3: held; 4: broken
    rows: pd.DataFrame


@pytest.fixture(scope="module")
def versions(
    trained_examples: TrainedExamples, tmp_path_factory: pytest.TempPathFactory
) -> Versions:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB

    config = trained_examples.copy(tmp_path_factory.mktemp("routing") / "churn")
    X = register_numeric(config, NAME, LogisticRegression(max_iter=500).fit, "sklearn")
    register_numeric(config, NAME, GaussianNB().fit, "sklearn")
    signature = infer_signature(X, np.zeros(len(X)))
    for python_model in (Held(), Broken()):
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
    with in_process(app) as client:
        url = f"/v1/models/{NAME}:predict"
        for user in range(40):
            for _ in range(3):
                status, headers, _ = client.call(
                    url, body(versions.rows.head(1)), {"X-User": f"u{user}"}
                )
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
    with in_process(app) as client:
        split = json.dumps({"dataframe_split": rows.head(1).to_dict("split")}).encode()
        headers = {"Content-Type": "application/json"}
        answers = {
            client.call("/invocations", split, headers)[1]["x-model-version"] for _ in range(11)
        }
    key = str(float(rows.iloc[0]["tenure_months"]))
    assert answers == {slot.lineup.router.decide(key).version}


def test_weights_split_unkeyed_traffic(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 0.8), Route("2", "challenger", 0.2)))
    with in_process(create_app(ModelSlot(lineup(versions, plan)))) as client:
        url = f"/v1/models/{NAME}:predict"
        answered = Counter(
            client.call(url, body(versions.rows))[1]["x-model-version"] for _ in range(300)
        )
    assert set(answered) == {"1", "2"}
    assert 0.12 <= answered["2"] / 300 <= 0.28, answered


@pytest.mark.parametrize("shadow", ["3", "4"], ids=["held", "raising"])
def test_a_shadow_never_touches_the_live_response(
    versions: Versions, logs: PredictionLogWriter, shadow: str
) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0),), shadow_version=shadow, shadow_share=1)
    champion = versions.models["1"]
    app = create_app(ModelSlot(lineup(versions, plan)), log=logs, shadow_capacity=3)
    runner = app.state.shadows
    RELEASE.clear()
    HOLD.set()
    try:
        with in_process(app) as client:
            url = f"/v1/models/{NAME}:predict"
            for i in range(12):
                status, headers, payload = client.call(
                    url, body(versions.rows), {"X-Request-ID": f"r{i}"}
                )
                assert status == 200, payload
                assert headers["x-model-version"] == "1"
                want = champion.model.predict(versions.rows).tolist()
                assert json.loads(payload)["predictions"] == want
            # Twelve answers while the held shadow has not finished one prediction: the
            # shadow is off the request path, however fast or slow the machine is.
            assert runner.completed == 0
            RELEASE.set()
            runner.close()
    finally:
        HOLD.clear()
        RELEASE.set()
    logs.flush()
    table = query_log(
        logs.root, NAME, sql="SELECT role, status, count(*) AS n FROM log GROUP BY 1, 2"
    )
    counts = {(r["role"], r["status"]): r["n"] for r in table.to_pylist()}
    assert counts[("live", "ok")] == 12 * len(versions.rows)
    # Every copy is predicted or, when the queue of 3 is full, dropped and counted.
    assert runner.completed + runner.failed + runner.dropped == 12
    if shadow == "3":  # held: the queue fills, so some copies are dropped
        assert runner.dropped > 0 and runner.completed >= 1 and runner.failed == 0
        assert counts[("shadow", "ok")] == runner.completed * len(versions.rows)
    else:  # raising: what ran is logged as an error
        assert runner.failed >= 1 and runner.completed == 0
        assert counts[("shadow", "error")] == runner.failed * len(versions.rows)


def test_shadow_errors_show_in_metrics(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0),), shadow_version="4", shadow_share=1)
    app = create_app(ModelSlot(lineup(versions, plan)))
    with in_process(app) as client:
        for _ in range(3):
            client.call(f"/v1/models/{NAME}:predict", body(versions.rows))
        app.state.shadows.close()
        text = client.call("/metrics")[2].decode()
    sample = (
        'shipyard_requests_total{model="router",protocol="shadow",role="shadow",'
        'status="error",version="4"} 3.0'
    )
    assert sample in text
    assert 'shipyard_traffic_weight{model="router",role="shadow",version="4"} 1.0' in text


def test_a_pinned_version_is_served_only_when_in_the_lineup(versions: Versions) -> None:
    plan = TrafficPlan(routes=(Route("1", "champion", 1.0), Route("2", "challenger", 0.0)))
    with in_process(create_app(ModelSlot(lineup(versions, plan)))) as client:
        infer = f"/v2/models/{NAME}/versions/{{}}/infer"
        rows = versions.rows.to_numpy()
        request = {
            "inputs": [
                {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, i].tolist()}
                for i, c in enumerate(versions.rows.columns)
            ]
        }
        status, headers, _ = client.call(infer.format("2"), json.dumps(request).encode())
        assert status == 200 and headers["x-model-version"] == "2"
        assert headers["x-model-role"] == "challenger"
        status, _, payload = client.call(infer.format("7"), json.dumps(request).encode())
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
        wait_for(lambda: slot.lineup.plan.shadow_version == "3", what="the traffic change")
        plan = slot.lineup.plan
        assert {(r.version, r.role, r.weight) for r in plan.routes} == {
            ("1", "champion", 0.75),
            ("2", "challenger", 0.25),
        }
        # A challenger that cannot load is left out; the champion takes its share.
        write_traffic(store, NAME, TrafficSettings(challengers={"99": 0.5}))
        wait_for(lambda: "load_error" in slot.status, what="the load failure reported")
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
    with in_process(app) as client:
        url = f"/v1/models/{NAME}:predict"
        statuses = Counter(client.call(url, body(versions.rows.head(1)))[0] for _ in range(60))
    logs.flush()
    assert set(statuses) == {200, 500}
    rows = query_log(
        logs.root,
        NAME,
        sql="SELECT version, status, count(*) AS n FROM log WHERE role = 'live' GROUP BY ALL",
    ).to_pylist()
    logged = {(r["version"], r["status"]): r["n"] for r in rows}
    assert logged == {("1", "ok"): statuses[200], ("4", "error"): statuses[500]}
