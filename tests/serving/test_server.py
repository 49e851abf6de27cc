"""The server's routes through an in-process client; tritonclient for V2 over a real socket."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.types import Message

from shipyard.config import Config
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel, load_served_model
from shipyard.registry import Tracking
from shipyard.serving.app import create_app
from shipyard.serving.request import new_request_id
from tests.support import AppClient, in_process, serve_in_thread, wait_for


@dataclass
class Running:
    client: AppClient
    served: ServedModel
    log: PredictionLogWriter
    labels: PredictionLogWriter
    log_root: Path


@pytest.fixture(scope="module")
def server(trained_project: Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    served = load_served_model(Tracking(trained_project).client, "churn", "1")
    root = tmp_path_factory.mktemp("logs")
    log = PredictionLogWriter(root, roll_seconds=0.2)
    labels = PredictionLogWriter(root, kind="labels", roll_seconds=0.2)
    log.start()
    labels.start()
    app = create_app(served, log=log, labels=labels, max_body_bytes=64 * 1024)
    with in_process(app) as client:
        yield Running(client, served, log, labels, root)
    log.close()
    labels.close()


@pytest.fixture(scope="module")
def rows(trained_project: Config) -> pd.DataFrame:
    return (
        pd.read_csv(trained_project.root / "data" / "golden.csv").head(8).drop(columns=["churned"])
    )


def expected(served: ServedModel, rows: pd.DataFrame) -> list[int]:
    return [int(v) for v in served.model.predict(rows)]


def test_kserve_v1(server: Running, rows: pd.DataFrame) -> None:
    assert json.loads(server.client.call("/")[2]) == {"status": "alive"}
    assert json.loads(server.client.call("/v1/models")[2]) == {"models": ["churn"]}
    body = json.dumps({"instances": rows.to_dict("records")}).encode()
    status, headers, payload = server.client.call(
        "/v1/models/churn:predict", body, {"X-Request-ID": "abc-1"}
    )
    assert status == 200
    assert json.loads(payload)["predictions"] == expected(server.served, rows)
    assert headers["x-request-id"] == "abc-1" and headers["x-model-version"] == "1"


def test_mlflow_invocations(server: Running, rows: pd.DataFrame) -> None:
    split = json.dumps({"dataframe_split": rows.to_dict("split") | {"index": None}}).encode()
    status, _, payload = server.client.call(
        "/invocations", split, {"Content-Type": "application/json"}
    )
    assert status == 200, payload
    assert json.loads(payload)["predictions"] == expected(server.served, rows)
    csv = rows.to_csv(index=False).encode()
    status, _, payload = server.client.call("/invocations", csv, {"Content-Type": "text/csv"})
    assert status == 200 and json.loads(payload)["predictions"] == expected(server.served, rows)
    assert server.client.call("/ping")[0] == 200


def test_open_inference_with_tritonclient(server: Running, rows: pd.DataFrame) -> None:
    import tritonclient.http as httpclient

    with serve_in_thread(create_app(server.served)) as url:  # the binary protocol: a socket
        client = httpclient.InferenceServerClient(url.removeprefix("http://"))
        infer(client, rows, server.served)


def infer(client: Any, rows: pd.DataFrame, served: ServedModel) -> None:
    """V2 inference with binary tensors answers what the model answers."""
    import tritonclient.http as httpclient

    assert client.is_server_live() and client.is_model_ready("churn")
    inputs = []
    for column in rows.columns:
        values = rows[column].to_numpy()
        if values.dtype == object:
            tensor = httpclient.InferInput(column, [len(rows)], "BYTES")
            tensor.set_data_from_numpy(values.astype(object), binary_data=True)
        else:
            tensor = httpclient.InferInput(
                column, [len(rows)], "FP64" if values.dtype.kind == "f" else "INT64"
            )
            tensor.set_data_from_numpy(values, binary_data=True)
        inputs.append(tensor)
    result = client.infer("churn", inputs)
    labels = result.as_numpy("predict")
    probabilities = result.as_numpy("predict_proba")
    assert [int(v) for v in labels] == expected(served, rows)
    np.testing.assert_allclose(probabilities, served.model.predict_proba(rows))
    metadata = client.get_model_metadata("churn")
    assert [i["name"] for i in metadata["inputs"]] == list(rows.columns)


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "fragment"),
    [
        ("/v1/models/churn:predict", b"{not json", {}, 400, "not valid JSON"),
        ("/v1/models/churn:predict", b'{"instances": []}', {}, 400, "empty"),
        (
            "/v1/models/churn:predict",
            b'{"instances": [{"tenure_months": 3}]}',
            {},
            400,
            "monthly_charges",
        ),
        ("/v1/models/nosuch:predict", b'{"instances": []}', {}, 404, "nosuch"),
        ("/invocations", b"{}", {"Content-Type": "application/xml"}, 415, "content type"),
        ("/invocations", b"x" * (70 * 1024), {"Content-Type": "application/json"}, 413, ""),
    ],
)
def test_bad_requests_are_4xx_with_a_message(
    server: Running, path: str, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    got, _, payload = server.client.call(path, body, headers)
    assert got == status, payload
    message = json.loads(payload)["error"]
    assert fragment.lower() in message.lower()


def test_predictions_are_logged(server: Running, rows: pd.DataFrame) -> None:
    body = json.dumps({"instances": rows.head(1).to_dict("records")}).encode()
    server.client.call("/v1/models/churn:predict", body, {"X-Request-ID": "logged-1"})

    def logged() -> Any:
        server.log.flush()
        sql = "SELECT * FROM log WHERE request_id = 'logged-1'"
        found = query_log(server.log_root, "churn", sql=sql)
        return found if found.num_rows else None

    found = wait_for(logged, what="request logged-1 in the prediction log", every=0.05)
    assert found.num_rows == 1
    record = found.to_pylist()[0]
    assert record["version"] == "1" and record["role"] == "live" and record["status"] == "ok"
    assert record["inputs"]["contract"] == rows.iloc[0]["contract"]
    assert len(record["probabilities"]) == 2


def test_feedback_joins_labels_to_predictions(server: Running, rows: pd.DataFrame) -> None:
    from shipyard.logs.reader import join_labels

    body = json.dumps({"instances": rows.head(1).to_dict("records")}).encode()
    server.client.call("/v1/models/churn:predict", body, {"X-Request-ID": "fb-1"})
    status, _, payload = server.client.call(
        "/v1/feedback", json.dumps([{"request_id": "fb-1", "label": 1}]).encode()
    )
    assert status == 200 and json.loads(payload) == {"accepted": 1, "dropped": 0}
    server.log.flush()
    server.labels.flush()
    joined = {
        r["request_id"]: r["label"] for r in join_labels(server.log_root, "churn").to_pylist()
    }
    assert joined["fb-1"] == "1"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[]", "empty"),
        (b'{"label": 1}', "request_id"),
        (b'{"request_id": "x"}', "label is missing"),
        (b'[{"request_id": "x", "label": 1, "extra": 2}]', "item 0: unknown fields"),
    ],
)
def test_bad_feedback_is_400(server: Running, body: bytes, fragment: str) -> None:
    status, _, payload = server.client.call("/v1/feedback", body)
    assert status == 400 and fragment in json.loads(payload)["error"]


def test_batched_results_match_unbatched(trained_project: Config) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from shipyard.serving.batcher import BatchSettings

    served = load_served_model(Tracking(trained_project).client, "churn", "1")
    golden = pd.read_csv(trained_project.root / "data" / "golden.csv").head(48)
    inputs = golden.drop(columns=["churned"])
    want = [int(v) for v in served.model.predict(inputs)]
    app = create_app(served, batch=BatchSettings(max_batch_size=16, max_wait_ms=5.0))
    with in_process(app) as client:

        def one(i: int) -> int:
            body = json.dumps({"instances": inputs.iloc[[i]].to_dict("records")}).encode()
            status, _, payload = client.call("/v1/models/churn:predict", body)
            assert status == 200, payload
            return int(json.loads(payload)["predictions"][0])

        with ThreadPoolExecutor(max_workers=12) as pool:
            got = list(pool.map(one, range(len(inputs))))
    assert got == want


def test_metrics_count_requests_and_log_records(server: Running, rows: pd.DataFrame) -> None:
    body = json.dumps({"instances": rows.head(1).to_dict("records")}).encode()
    server.client.call("/v1/models/churn:predict", body)
    server.client.call("/v1/models/churn:predict", b"{bad")
    server.log.flush()
    status, headers, payload = server.client.call("/metrics")
    text = payload.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")

    def value(prefix: str) -> float:
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        assert lines, f"no sample starting with {prefix}"
        return float(lines[0].rsplit(" ", 1)[1])

    # The exposition format sorts labels by name.
    requests = 'shipyard_requests_total{model="churn",protocol="kserve_v1",'
    assert value(requests + 'role="champion",status="200",version="1"}') >= 1
    assert value(requests + 'role="unknown",status="400",version="unknown"}') >= 1
    assert value('shipyard_request_seconds_count{model="churn",protocol="kserve_v1"') >= 1
    assert value('shipyard_batch_rows_count{model="churn",version="1"}') >= 1
    assert value('shipyard_log_records_total{kind="predictions",state="written"}') >= 1
    assert value("shipyard_batch_queue_rows") == 0
    assert value('shipyard_traffic_weight{model="churn",role="champion",version="1"}') == 1.0
    assert value('shipyard_model_load_seconds{model="churn",version="1"}') > 0


def test_metrics_publish_the_latest_monitor_run_on_scrapes_only(
    server: Running, rows: pd.DataFrame
) -> None:
    run = {
        "model": "churn",
        "version": "1",
        "rows": 500,
        "features": [{"feature": "tenure_months", "method": "psi", "score": 0.3}],
        "prediction": {"score": 0.1, "bands": {"inspect": 0.2}},
        "estimated": {"roc_auc": {"value": 0.8}},
        "performance": {
            "metrics": {"roc_auc": 0.75, "f1": None},
            "coverage": 0.5,
            "labelled": 250,
        },
    }
    reads: list[str] = []

    def monitor() -> list[dict[str, object]]:
        reads.append("read")
        return [run]

    app = create_app(server.served)
    app.state.metrics.monitor = monitor
    body = json.dumps({"instances": rows.head(1).to_dict("records")}).encode()
    with in_process(app) as client:
        assert client.call("/v1/models/churn:predict", body)[0] == 200
        assert reads == [], "the request path must not read the control plane"
        text = client.call("/metrics")[2].decode()
        assert reads == ["read"]

        def broken() -> None:
            raise ConnectionError("database down")

        app.state.metrics.monitor = broken
        assert client.call("/metrics")[0] == 200  # a scrape survives the store
    labels = 'model="churn",version="1"'
    for sample in (
        'shipyard_feature_drift_score{feature="tenure_months",method="psi",' + labels + "} 0.3",
        f"shipyard_prediction_drift_score{{{labels}}} 0.1",
        f"shipyard_prediction_drift_band{{{labels}}} 0.2",
        'shipyard_estimated_performance{metric="roc_auc",' + labels + "} 0.8",
        'shipyard_realized_performance{metric="roc_auc",' + labels + "} 0.75",
        f"shipyard_label_coverage{{{labels}}} 0.5",
    ):
        assert sample in text
    assert 'metric="f1"' not in text


def test_get_on_a_prediction_path_is_405_not_an_unknown_model(server: Running) -> None:
    status, headers, payload = server.client.call("/v1/models/churn:predict")
    assert status == 405 and headers["allow"] == "POST", payload
    assert "does not take GET" in json.loads(payload)["error"]


ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")  # Crockford base32: no I, L, O, U


def test_server_made_request_ids_are_ulid_like_unique_and_time_ordered() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(ULID.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)
    times = [i[:9] for i in ids]  # the milliseconds' top 45 bits; 80 random bits follow
    assert times == sorted(times)


def test_a_forked_worker_draws_its_own_random_request_id_bits() -> None:
    before = new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id to the parent, then out
        try:
            os.write(write, new_request_id().encode("ascii"))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode("ascii")
    os.waitpid(pid, 0)
    after = new_request_id()
    # Characters 10-25 are random bits only: had the child kept the parent's unused random
    # bytes, its id would end like the parent's next one.
    assert ULID.fullmatch(child) and child[10:] != after[10:] and before[10:] != after[10:]


def test_a_body_that_arrives_late_and_in_pieces_is_read_whole(
    server: Running, rows: pd.DataFrame
) -> None:
    """The first receive has to wait (the timed path), and the body comes in two messages."""
    app = create_app(server.served, body_timeout_seconds=30)
    body = json.dumps({"instances": rows.to_dict("records")}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/models/churn:predict",
        "raw_path": b"/v1/models/churn:predict",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "server": ("test", 80),
        "client": ("test", 1),
    }
    sent: list[Message] = []

    async def exchange() -> None:
        arriving: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # empty: receive waits
        loop = asyncio.get_running_loop()
        for piece, more in ((body[:7], True), (body[7:], False)):
            loop.call_soon(
                arriving.put_nowait, {"type": "http.request", "body": piece, "more_body": more}
            )

        async def send(message: Message) -> None:
            sent.append(message)

        await app(scope, arriving.get, send)

    asyncio.run(exchange())
    assert sent[0]["status"] == 200, sent
    assert json.loads(sent[1]["body"])["predictions"] == expected(server.served, rows)
