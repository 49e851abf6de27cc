"""Served features: a model with the features tag reads entity keys, the store fills the rest.

A real project (views declared in ``shipyard.yaml``), a real SQLite online store holding
rows written with the store's own ``write``, a real scikit-learn model, and the app
called in process in the three protocols. The log is read back from its Parquet files.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from shipyard.config import Config
from shipyard.features.online_redis import RedisOnlineStore
from shipyard.features.online_sqlite import SqliteOnlineStore
from shipyard.features.repo import load_repo
from shipyard.logs.pii import PiiPolicy
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel
from shipyard.models.signature import InputSpec
from shipyard.serving.app import create_app
from shipyard.serving.features import TS_PREFIX, FeatureAttacher, FeatureSpec
from shipyard.serving.hot_swap import Lineup, ModelSlot
from shipyard.serving.router import Route, Router, StickyKey, TrafficPlan
from shipyard.serving.server import feature_pii
from tests.support import in_process, wait_for
from tests.support.features import driver_project, driver_yaml

NOW = time.time()
FRESH = NOW - 600  # 10 minutes old: within the 2 h ttl
STALE = NOW - 3 * 3600  # 3 hours old: expired


def _views() -> list[dict[str, Any]]:
    base = driver_yaml()["features"]["views"][0]
    stats = base | {"pii": ["trips"]}
    rank = base | {
        "name": "driver_rank",
        "features": {"rank": "float64"},
        "missing": "default",
        "defaults": {"rank": -1.0},
    }
    block = base | {"name": "driver_block", "features": {"blocked": "float64"}, "missing": "reject"}
    return [stats, rank, block]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("served-features")
    config = driver_project(root, features={"views": _views()})
    (config.root / "features.py").write_text(ON_DEMAND)
    return config


# An on-demand view beside the yaml views: the same function offline and online.
ON_DEMAND = """
from shipyard.features import Feature, on_demand


@on_demand(
    sources=["driver_stats:conv_rate"],
    features=[Feature("conv_pct", "float64")],
    request_inputs=[Feature("bonus", "float64")],
)
def conv_pct(columns):
    return {"conv_pct": columns["conv_rate"] * 100 + columns["bonus"]}
"""


@pytest.fixture(scope="module")
def store(project: Config) -> SqliteOnlineStore:
    """The online store with drivers 1 (fresh), 2 (expired stats) and 3 (no rank row)."""
    repo = load_repo(project)
    online = SqliteOnlineStore(project.root / "online.db")

    def write(view: str, ids: list[int], times: list[float], **values: list[Any]) -> None:
        stamps = pa.array([int(t * 1e6) for t in times], pa.timestamp("us", tz="UTC"))
        batch = pa.RecordBatch.from_pydict(
            {"driver_id": ids, "event_timestamp": stamps, "created": stamps, **values}
        )
        online.write(repo.views[view], ["driver_id"], batch)

    write(
        "driver_stats",
        [1, 2, 3],
        [FRESH, STALE, FRESH],
        conv_rate=[0.5, 0.7, 0.9],
        trips=[10, 20, 30],
    )
    write("driver_rank", [1, 2], [FRESH, FRESH], rank=[4.0, 5.0])
    write("driver_block", [1, 2], [FRESH, FRESH], blocked=[0.0, 1.0])
    return online


def _model(name: str, columns: list[str]) -> ServedModel:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, len(columns)))
    fitted = make_pipeline(SimpleImputer(), LinearRegression()).fit(X, X.sum(axis=1))
    spec = InputSpec.from_columns([(c, "double") for c in columns])
    return ServedModel(name, "1", "sklearn", fitted, spec, False, 0.0)


TAG = {
    "features": ["driver_stats:conv_rate", "driver_stats:trips", "driver_rank:rank"],
    "columns": {"driver_stats:trips": "trip_count"},
    "entity_keys": ["driver_id"],
    "request_inputs": ["speed"],
    "mode": "event_time",
}


@pytest.fixture(scope="module")
def attacher(project: Config, store: SqliteOnlineStore) -> FeatureAttacher:
    return FeatureAttacher(project, store=store)


@pytest.fixture(scope="module")
def served(attacher: FeatureAttacher) -> ServedModel:
    model = _model("drivers", ["conv_rate", "trip_count", "rank", "speed"])
    return attacher.with_plan(model, TAG)


def request_for(
    protocol: str, rows: list[dict[str, Any]], model: str = "drivers"
) -> tuple[str, bytes]:
    """Path and body asking for ``rows`` (key → value) in ``protocol``."""
    if protocol == "kserve_v1":
        return f"/v1/models/{model}:predict", json.dumps({"instances": rows}).encode()
    columns = list(rows[0])
    if protocol == "mlflow":
        split = {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
        return "/invocations", json.dumps({"dataframe_split": split}).encode()
    kinds = {int: "INT64", float: "FP64", str: "BYTES"}
    inputs = [
        {
            "name": c,
            "shape": [len(rows)],
            "datatype": kinds[type(rows[0][c])],
            "data": [r[c] for r in rows],
        }
        for c in columns
    ]
    return f"/v2/models/{model}/infer", json.dumps({"inputs": inputs}).encode()


PROTOCOLS = ["kserve_v1", "open_inference_v2", "mlflow"]


def test_the_request_spec_is_the_entity_keys_and_the_request_inputs(served: ServedModel) -> None:
    spec = served.spec
    assert isinstance(spec, FeatureSpec) and spec.plan is not None
    assert spec.columns == ("conv_rate", "trip_count", "rank", "speed")
    request = spec.plan.request_spec
    assert request.columns == ("driver_id", "speed")
    assert request.dtypes[0] == np.dtype(np.int64)  # from the source's schema
    assert spec.plan.extra_columns == (
        "driver_id",
        f"{TS_PREFIX}driver_stats",
        f"{TS_PREFIX}driver_rank",
    )


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_protocol_predicts_from_entity_keys(served: ServedModel, protocol: str) -> None:
    path, body = request_for(
        protocol, [{"driver_id": 1, "speed": 2.0}, {"driver_id": 3, "speed": 1.0}]
    )
    with in_process(create_app(served)) as client:
        status, _, payload = client.call(path, body, {"Content-Type": "application/json"})
    assert status == 200, payload
    answer = json.loads(payload)
    if protocol == "open_inference_v2":
        predictions = answer["outputs"][0]["data"]
    else:
        predictions = answer["predictions"]
    # The same matrix sent as the model's own columns gives the same predictions.
    matrix = np.array([[0.5, 10, 4.0, 2.0], [0.9, 30, -1.0, 1.0]])
    assert np.allclose(predictions, served.model.predict(matrix))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_missing_entity_key_is_a_400_naming_it(served: ServedModel, protocol: str) -> None:
    path, body = request_for(protocol, [{"speed": 2.0}])
    with in_process(create_app(served)) as client:
        status, _, payload = client.call(path, body, {"Content-Type": "application/json"})
    assert status == 400
    assert "driver_id" in _message(payload)


def test_unknown_expired_and_defaulted_entities_are_served_by_policy_and_counted(
    served: ServedModel, tmp_path: Path
) -> None:
    rows = [
        {"driver_id": 1, "speed": 1.0},  # every view fresh
        {"driver_id": 2, "speed": 1.0},  # driver_stats expired → null; rank fresh
        {"driver_id": 9, "speed": 1.0},  # unknown everywhere → null, rank default
    ]
    path, body = request_for("kserve_v1", rows)
    with PredictionLogWriter(tmp_path, roll_seconds=0.2) as log:
        with in_process(create_app(served, log=log)) as client:
            status, _, payload = client.call(path, body)
            assert status == 200, payload
            _, _, metrics = client.call("/metrics")
        log.flush()
    text = metrics.decode()
    series = 'shipyard_feature_lookups_total{model="drivers",outcome="%s",view="%s"}'
    assert f"{series % ('hit', 'driver_stats')} 1.0" in text
    assert f"{series % ('expired', 'driver_stats')} 1.0" in text
    assert f"{series % ('unknown', 'driver_stats')} 1.0" in text
    assert f"{series % ('unknown', 'driver_rank')} 1.0" in text
    assert "shipyard_feature_lookup_seconds_count" in text
    logged = query_log(tmp_path, "drivers", sql="SELECT request_id, inputs FROM log ORDER BY 1")
    inputs = [row["inputs"] for row in logged.to_pylist()]
    fresh, expired, unknown = inputs
    assert fresh["conv_rate"] == 0.5 and fresh["trip_count"] == 10 and fresh["rank"] == 4.0
    assert fresh["driver_id"] == 1 and fresh["speed"] == 1.0
    assert fresh[f"{TS_PREFIX}driver_stats"] == pytest.approx(FRESH, abs=1e-3)
    assert _missing(expired["conv_rate"]) and _missing(expired["trip_count"])
    assert _missing(expired[f"{TS_PREFIX}driver_stats"])
    assert expired["rank"] == 5.0
    assert _missing(unknown["conv_rate"]) and unknown["rank"] == -1.0  # the view's default
    assert _missing(unknown[f"{TS_PREFIX}driver_rank"])  # a default is not a served row


def _message(payload: bytes) -> str:
    error = json.loads(payload)["error"]
    return error if isinstance(error, str) else error["message"]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def test_the_reject_policy_answers_404_naming_the_entity(attacher: FeatureAttacher) -> None:
    tag = {"features": ["driver_stats:conv_rate", "driver_block:blocked"]}
    served = attacher.with_plan(_model("blocks", ["conv_rate", "blocked"]), tag)
    path, body = request_for("kserve_v1", [{"driver_id": 1}, {"driver_id": 7}], model="blocks")
    with in_process(create_app(served)) as client:
        ok_status, _, _ = client.call(*request_for("kserve_v1", [{"driver_id": 2}], model="blocks"))
        status, _, payload = client.call(path, body)
    assert ok_status == 200
    assert status == 404
    message = _message(payload)
    assert "driver_block" in message and "driver_id=7" in message


def test_on_demand_views_run_on_the_looked_up_values_and_request_inputs(
    attacher: FeatureAttacher, tmp_path: Path
) -> None:
    tag = {
        "features": ["conv_pct:conv_pct", "driver_stats:trips"],
        "columns": {"conv_pct:conv_pct": "pct"},
    }
    served = attacher.with_plan(_model("pct", ["pct", "trips"]), tag)
    assert served.spec.plan.request_spec.columns == ("driver_id", "bonus")  # type: ignore[attr-defined]
    rows = [{"driver_id": 1, "bonus": 1.0}, {"driver_id": 2, "bonus": 2.0}]
    with PredictionLogWriter(tmp_path, roll_seconds=0.2) as log:
        with in_process(create_app(served, log=log)) as client:
            status, _, payload = client.call(*request_for("kserve_v1", rows, model="pct"))
        log.flush()
    assert status == 200, payload
    logged = query_log(tmp_path, "pct", sql="SELECT request_id, inputs FROM log ORDER BY 1")
    fresh, expired = [row["inputs"] for row in logged.to_pylist()]
    assert fresh["pct"] == pytest.approx(51.0) and fresh["trips"] == 10
    assert fresh["bonus"] == 1.0 and fresh["driver_id"] == 1  # what a recompute needs
    assert _missing(expired["pct"])  # NaN in, NaN out: conv_rate expired for driver 2


def test_a_missing_value_for_a_model_that_refuses_nan_is_a_404_saying_so(
    attacher: FeatureAttacher,
) -> None:
    model = _model("strict", ["conv_rate", "trips"])
    spec = replace(model.spec, allow_nan=(False, False))  # as the load-time probe finds it
    served = attacher.with_plan(replace(model, spec=spec), {"features": ["driver_stats:*"]})
    with in_process(create_app(served)) as client:
        ok, _, _ = client.call(*request_for("kserve_v1", [{"driver_id": 1}], model="strict"))
        status, _, payload = client.call(
            *request_for("kserve_v1", [{"driver_id": 1}, {"driver_id": 2}], model="strict")
        )
    assert ok == 200
    assert status == 404  # driver 2's stats expired: null, which this model cannot take
    message = _message(payload)
    assert "driver_id=2" in message and "row 1" in message


def test_pii_features_are_masked_in_the_log(
    project: Config, served: ServedModel, attacher: FeatureAttacher, tmp_path: Path
) -> None:
    settings = project.pii.model_copy(update={"secret": tmp_path / "pii.key"})
    policy = PiiPolicy.from_config(project.model_copy(update={"pii": settings}))
    policy = feature_pii(policy, served, attacher)
    assert policy.tag_of("trip_count") == "pii"  # driver_stats tags trips as pii
    path, body = request_for("kserve_v1", [{"driver_id": 1, "speed": 1.0}])
    with PredictionLogWriter(tmp_path / "logs", roll_seconds=0.2, pii=policy) as log:
        with in_process(create_app(served, log=log)) as client:
            status, _, _ = client.call(path, body)
        log.flush()
    assert status == 200
    (inputs,) = [r["inputs"] for r in query_log(tmp_path / "logs", "drivers").to_pylist()]
    assert inputs["trip_count"] == policy.hash_value(10)
    assert inputs["conv_rate"] == 0.5  # not tagged: as served


def test_a_challenger_on_other_views_is_enriched_for_its_own_spec(
    served: ServedModel, attacher: FeatureAttacher, tmp_path: Path
) -> None:
    tag = {"features": ["driver_stats:conv_rate", "driver_block:blocked"]}
    challenger = replace(
        attacher.with_plan(_model("drivers", ["conv_rate", "blocked"]), tag), version="2"
    )
    assert challenger.spec != served.spec
    plan = TrafficPlan((Route("1", "champion", 1.0), Route("2", "challenger", 0.0)))
    slot = ModelSlot(Lineup({"1": served, "2": challenger}, Router(plan)))
    rows = [{"driver_id": 1, "speed": 1.0}]
    with PredictionLogWriter(tmp_path, roll_seconds=0.2) as log:
        with in_process(create_app(slot, log=log)) as client:
            path, body = request_for("open_inference_v2", [{"driver_id": 1}])
            pinned = path.replace("/infer", "/versions/2/infer")
            status, headers, payload = client.call(pinned, body)
            assert status == 200, payload
            assert headers["x-model-version"] == "2"
            status, headers, payload = client.call(*request_for("kserve_v1", rows))
            assert status == 200, payload
            assert headers["x-model-version"] == "1"
        log.flush()
    logged = query_log(tmp_path, "drivers", sql="SELECT version, inputs FROM log ORDER BY 1")
    first, second = logged.to_pylist()
    assert first["inputs"]["rank"] == 4.0 and first["inputs"]["trip_count"] == 10
    assert second["inputs"]["blocked"] == 0.0 and second["inputs"]["conv_rate"] == 0.5
    assert second["inputs"][f"{TS_PREFIX}driver_block"] == pytest.approx(FRESH, abs=1e-3)


def test_a_shadow_on_other_views_logs_its_own_keys_and_event_times(
    served: ServedModel, attacher: FeatureAttacher, tmp_path: Path
) -> None:
    """The skew check recomputes a shadow's features too: its rows carry keys and times."""
    tag = {
        "features": ["driver_stats:conv_rate", "driver_block:blocked"],
        "request_inputs": ["speed"],
    }
    shadow = replace(
        attacher.with_plan(_model("drivers", ["conv_rate", "blocked", "speed"]), tag), version="2"
    )
    plan = TrafficPlan((Route("1", "champion", 1.0),), shadow_version="2", shadow_share=1.0)
    slot = ModelSlot(Lineup({"1": served, "2": shadow}, Router(plan)))
    log = PredictionLogWriter(tmp_path, roll_seconds=0.2)

    def both_logged() -> bool:
        log.flush()
        return len(query_log(tmp_path, "drivers", sql="SELECT role FROM log")) == 2

    with log, in_process(create_app(slot, log=log)) as client:
        rows = [{"driver_id": 1, "speed": 1.0}]
        status, _, payload = client.call(*request_for("kserve_v1", rows))
        assert status == 200, payload
        wait_for(both_logged, what="the live and the shadow rows in the log")
    logged = query_log(tmp_path, "drivers", sql="SELECT role, inputs FROM log ORDER BY 1")
    live, copy = logged.to_pylist()
    assert (live["role"], copy["role"]) == ("live", "shadow")
    assert copy["inputs"]["driver_id"] == 1 and copy["inputs"]["blocked"] == 0.0
    assert copy["inputs"][f"{TS_PREFIX}driver_block"] == pytest.approx(FRESH, abs=1e-3)
    assert live["inputs"].get(f"{TS_PREFIX}driver_block") is None  # the live model's: not read
    assert live["inputs"][f"{TS_PREFIX}driver_stats"] == pytest.approx(FRESH, abs=1e-3)


class TcpProxy:
    """A real TCP hop to Redis that the test can cut and restore on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked on it (Linux)
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._open.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at 127.0.0.1:6379 ({exc})")
    prefix = f"shipyard-test-h4-{uuid.uuid4().hex}"
    yield prefix
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_redis_down_is_a_503_saying_why_and_the_next_request_after_it_returns_succeeds(
    project: Config, redis_prefix: str
) -> None:
    repo = load_repo(project)
    direct = RedisOnlineStore("redis://127.0.0.1:6379/0", prefix=redis_prefix)
    stamps = pa.array([int(FRESH * 1e6)], pa.timestamp("us", tz="UTC"))
    batch = pa.RecordBatch.from_pydict(
        {"driver_id": [1], "event_timestamp": stamps, "created": stamps, "conv_rate": [0.25]}
        | {"trips": [3]}
    )
    direct.write(repo.views["driver_stats"], ["driver_id"], batch)
    proxy = TcpProxy(("127.0.0.1", 6379))
    proxy.start()
    through = RedisOnlineStore(
        f"redis://127.0.0.1:{proxy.port}/0", prefix=redis_prefix, timeout_seconds=2.0
    )
    tag = {"features": ["driver_stats:conv_rate", "driver_stats:trips"]}
    served = FeatureAttacher(project, store=through).with_plan(
        _model("drivers", ["conv_rate", "trips"]), tag
    )
    path, body = request_for("kserve_v1", [{"driver_id": 1}])
    expected = served.model.predict(np.array([[0.25, 3.0]]))
    try:
        with in_process(create_app(served)) as client:
            status, _, payload = client.call(path, body)
            assert status == 200, payload
            assert np.allclose(json.loads(payload)["predictions"], expected)
            proxy.stop()
            status, _, payload = client.call(path, body)
            assert status == 503, payload
            assert f"Redis at 127.0.0.1:{proxy.port}" in _message(payload)
            proxy.start()  # the same port again
            status, _, payload = wait_for(
                lambda: (answer := client.call(path, body))[0] == 200 and answer,
                what="a prediction once Redis is reachable again",
            )
            assert np.allclose(json.loads(payload)["predictions"], expected)
    finally:
        proxy.stop()
        direct.close()
        through.close()


def test_the_openapi_document_asks_for_the_entity_keys_not_the_features(
    served: ServedModel,
) -> None:
    with in_process(create_app(served)) as client:
        status, _, payload = client.call("/openapi.json")
    assert status == 200
    example = json.loads(payload)["paths"]["/v1/models/{name}:predict"]["post"]["requestBody"]
    (row,) = example["content"]["application/json"]["example"]["instances"]
    assert set(row) == {"driver_id", "speed"}


def test_an_entity_key_the_model_reads_is_sent_once_and_passed_through(
    attacher: FeatureAttacher, tmp_path: Path
) -> None:
    tag = {"features": ["driver_stats:conv_rate"]}
    served = attacher.with_plan(_model("keyed", ["driver_id", "conv_rate"]), tag)
    plan = served.spec.plan  # type: ignore[attr-defined]
    assert plan.request_spec.columns == ("driver_id",)
    assert plan.request_spec.dtypes == (np.dtype(np.float64),)  # the model's type for it
    assert plan.extra_columns == (f"{TS_PREFIX}driver_stats",)  # the key is a model column
    with PredictionLogWriter(tmp_path, roll_seconds=0.2) as log:
        with in_process(create_app(served, log=log)) as client:
            status, _, payload = client.call(
                *request_for("kserve_v1", [{"driver_id": 3.0}], model="keyed")
            )
        log.flush()
    assert status == 200, payload
    (inputs,) = [r["inputs"] for r in query_log(tmp_path, "keyed").to_pylist()]
    assert inputs["driver_id"] == 3.0 and inputs["conv_rate"] == 0.9  # 3.0 finds driver 3


def test_traffic_can_stick_to_an_entity_key_the_model_does_not_read(
    served: ServedModel,
) -> None:
    challenger = replace(served, version="2")
    plan = TrafficPlan((Route("1", "champion", 0.5), Route("2", "challenger", 0.5)))
    slot = ModelSlot(Lineup({"1": served, "2": challenger}, Router(plan)))
    app = create_app(slot, sticky=StickyKey.parse("input:driver_id"))
    answered: dict[int, set[str]] = {}
    with in_process(app) as client:
        for _ in range(8):
            for driver in (1, 2, 3, 9):
                path, body = request_for("kserve_v1", [{"driver_id": driver, "speed": 1.0}])
                status, headers, payload = client.call(path, body)
                assert status == 200, payload
                answered.setdefault(driver, set()).add(headers["x-model-version"])
    assert all(len(versions) == 1 for versions in answered.values()), answered
