"""Malformed input on every route of a real server: always a 4xx JSON answer, never a 5xx.

One server on 127.0.0.1 (uvicorn, the trained churn model, logs on) takes each case of
issue 13 by hand: nesting 1,000 deep, a V2 ``shape: []``, gzip and deflate bodies, a
zip bomb, XML, unknown routes and wrong methods, a 60 KB X-Request-ID, bad binary
framing headers, a body that never arrives, and outputs that mix binary and JSON. Each
answer is checked for its status, its JSON error shape (MLflow's on MLflow routes) and
that the connection answered at all.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import zlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import tritonclient.http as triton
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard.config import Config
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel, load_served_model
from shipyard.registry import Tracking
from shipyard.serving.app import create_app
from shipyard.serving.middleware import RequestIdMiddleware, internal_error_response
from tests.support import PATIENCE, in_process, serve_in_thread, wait_for

MAX_BODY_BYTES = 64 * 1024
ROW = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "contract": "one-year",
    "support_calls": 2,
    "region": "west",
}
JSON_TYPE = {"Content-Type": "application/json"}


def _deep(levels: int, leaf: str = "1") -> str:
    """A JSON value nested ``levels`` arrays deep (orjson itself stops at 1,024)."""
    return "[" * levels + leaf + "]" * levels


def _v2_inputs(**replace: dict[str, Any]) -> list[dict[str, Any]]:
    types = {"tenure_months": "INT64", "monthly_charges": "FP64", "support_calls": "INT64"}
    inputs: list[dict[str, Any]] = [
        {"name": name, "datatype": types.get(name, "BYTES"), "shape": [1], "data": [value]}
        for name, value in ROW.items()
    ]
    return [item | replace.get(str(item["name"]), {}) for item in inputs]


def _json(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def _zip_bomb() -> bytes:
    # 8 MB of one byte: about 8 KB compressed, well within the 64 KB body limit.
    return gzip.compress(b" " * (8 * 1024 * 1024), compresslevel=9)


@pytest.fixture(scope="module")
def served(trained_project: Config) -> ServedModel:
    return load_served_model(Tracking(trained_project).client, "churn", "1")


@pytest.fixture(scope="module")
def base_url(served: ServedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("logs")
    log = PredictionLogWriter(root)
    labels = PredictionLogWriter(root, kind="labels")
    log.start()
    labels.start()
    app = create_app(served, log=log, labels=labels, max_body_bytes=MAX_BODY_BYTES)
    with serve_in_thread(app) as url:
        yield url
    log.close()
    labels.close()


def _send(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; a dropped connection fails the test."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=PATIENCE)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload
    finally:
        connection.close()


# (case, method, path, body, headers, status, the message mentions)
V1 = "/v1/models/churn:predict"
V2 = "/v2/models/churn/infer"
CASES: list[tuple[str, str, str, bytes | None, dict[str, str], int, str]] = [
    (
        "v1 value nested 1020 deep",
        "POST",
        V1,
        ('{"instances": [{"tenure_months": ' + _deep(1020) + "}]}").encode(),
        JSON_TYPE,
        400,
        "",
    ),
    (
        "v1 column value nested 1020 deep",
        "POST",
        V1,
        _json({"instances": [ROW | {"contract": "X"}]}).replace(b'"X"', _deep(1020).encode()),
        JSON_TYPE,
        400,
        "contract",
    ),
    (
        "invocations value nested 1020 deep",
        "POST",
        "/invocations",
        _json({"dataframe_records": [ROW | {"region": "X"}]}).replace(b'"X"', _deep(1020).encode()),
        JSON_TYPE,
        400,
        "region",
    ),
    (
        "v1 nested past orjson's limit",
        "POST",
        V1,
        ('{"instances": ' + _deep(1100) + "}").encode(),
        JSON_TYPE,
        400,
        "JSON",
    ),
    (
        "v2 data nested 1000 deep",
        "POST",
        V2,
        _json({"inputs": _v2_inputs(monthly_charges={"data": "X"})}).replace(
            b'"X"', _deep(1000, "70.5").encode()
        ),
        {},
        400,
        "monthly_charges",
    ),
    (
        "v2 BYTES shape [] beside [1]",
        "POST",
        V2,
        _json({"inputs": _v2_inputs(contract={"shape": []})}),
        {},
        400,
        "contract",
    ),
    (
        "v2 BYTES shape [] as the first input",
        "POST",
        V2,
        _json({"inputs": _v2_inputs(tenure_months={"shape": [], "datatype": "BYTES"})}),
        {},
        400,
        "tenure_months",
    ),
    (
        "zip bomb on v1",
        "POST",
        V1,
        _zip_bomb(),
        JSON_TYPE | {"Content-Encoding": "gzip"},
        413,
        "limit",
    ),
    (
        "zip bomb on invocations",
        "POST",
        "/invocations",
        _zip_bomb(),
        JSON_TYPE | {"Content-Encoding": "gzip"},
        413,
        "limit",
    ),
    ("1 MB body on v1", "POST", V1, b" " * 1_000_000, JSON_TYPE, 413, "limit"),
    ("1 MB body on feedback", "POST", "/v1/feedback", b" " * 1_000_000, JSON_TYPE, 413, "limit"),
    (
        "zip bomb on feedback",
        "POST",
        "/v1/feedback",
        _zip_bomb(),
        JSON_TYPE | {"Content-Encoding": "gzip"},
        413,
        "limit",
    ),
    ("brotli on feedback", "POST", "/v1/feedback", b"{}", {"Content-Encoding": "br"}, 415, "br"),
    ("corrupt gzip", "POST", V1, b"\x1f\x8bnot gzip", {"Content-Encoding": "gzip"}, 400, "gzip"),
    (
        "truncated gzip",
        "POST",
        V1,
        gzip.compress(_json({"instances": [ROW]}))[:20],
        {"Content-Encoding": "gzip"},
        400,
        "truncated",
    ),
    ("brotli", "POST", V1, b"{}", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
    ("xml on v1", "POST", V1, b"<row/>", {"Content-Type": "application/xml"}, 415, "xml"),
    ("xml on v2", "POST", V2, b"<row/>", {"Content-Type": "application/xml"}, 415, "xml"),
    (
        "xml on invocations",
        "POST",
        "/invocations",
        b"<row/>",
        {"Content-Type": "application/xml"},
        415,
        "xml",
    ),
    (
        "60 KB X-Request-ID on a prediction",
        "POST",
        V1,
        _json({"instances": [ROW]}),
        JSON_TYPE | {"X-Request-ID": "a" * 60_000},
        400,
        "X-Request-ID",
    ),
    (
        "60 KB X-Request-ID on metadata",
        "GET",
        "/v2/models/churn",
        None,
        {"X-Request-ID": "a" * 60_000},
        400,
        "X-Request-ID",
    ),
    (
        "header length 0 with a JSON body",
        "POST",
        V2,
        _json({"inputs": _v2_inputs()}),
        JSON_TYPE | {"Inference-Header-Content-Length": "0"},
        400,
        "Inference-Header-Content-Length",
    ),
    (
        "header length past the body",
        "POST",
        V2,
        _json({"inputs": _v2_inputs()}),
        {"Inference-Header-Content-Length": "99999"},
        400,
        "Inference-Header-Content-Length",
    ),
    (
        "header length of 5,000 digits",
        "POST",
        V2,
        _json({"inputs": _v2_inputs()}),
        {"Inference-Header-Content-Length": "9" * 5000},
        400,
        "Inference-Header-Content-Length",
    ),
    (
        "header length not a number",
        "POST",
        V2,
        _json({"inputs": _v2_inputs()}),
        {"Inference-Header-Content-Length": "-1"},
        400,
        "Inference-Header-Content-Length",
    ),
    ("unknown route", "GET", "/v3/models", None, {}, 404, "/v3/models"),
    ("unknown route under a prediction", "POST", f"{V2}/more", b"{}", JSON_TYPE, 404, "openapi"),
    ("POST on a GET route", "POST", "/v2/health/live", b"{}", JSON_TYPE, 405, "GET"),
    ("DELETE on v1 predict", "DELETE", V1, None, {}, 405, "POST"),
    ("GET on v2 infer", "GET", V2, None, {}, 405, "POST"),
    ("GET on feedback", "GET", "/v1/feedback", None, {}, 405, "POST"),
    (
        "feedback label nested 1020 deep",
        "POST",
        "/v1/feedback",
        ('{"request_id": "deep-1", "label": ' + _deep(1020) + "}").encode(),
        JSON_TYPE,
        400,
        "label",
    ),
]
# MLflow's routes answer in MLflow's error shape.
MLFLOW_CASES: list[tuple[str, str, str, int]] = [
    ("GET on invocations", "GET", "/invocations", 405),
    ("POST on ping", "POST", "/ping", 405),
    ("PUT on version", "PUT", "/version", 405),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "mentions"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_malformed_request_gets_a_json_4xx(
    base_url: str,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    mentions: str,
) -> None:
    got, answer_headers, payload = _send(base_url, method, path, body, headers)
    assert got < 500, payload[:300]
    assert got == status, payload[:300]
    assert answer_headers["content-type"].startswith("application/json")
    error = json.loads(payload)["error"]
    assert mentions in error
    assert len(answer_headers["x-request-id"]) <= 128


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [case[1:] for case in MLFLOW_CASES],
    ids=[case[0] for case in MLFLOW_CASES],
)
def test_mlflow_routes_answer_in_mlflow_shape(
    base_url: str, method: str, path: str, status: int
) -> None:
    got, headers, payload = _send(base_url, method, path, b"{}" if method != "GET" else None)
    assert got == status, payload
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(payload)
    assert answer["error_code"] == "BAD_REQUEST"
    assert path in answer["message"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "x-gzip"])
@pytest.mark.parametrize(
    ("path", "payload"),
    [
        (V1, {"instances": [ROW, ROW]}),
        (V2, {"inputs": _v2_inputs()}),
        ("/invocations", {"dataframe_records": [ROW]}),
    ],
)
def test_compressed_bodies_are_read(
    base_url: str, encoding: str, path: str, payload: dict[str, Any]
) -> None:
    raw = _json(payload)
    body = zlib.compress(raw) if encoding == "deflate" else gzip.compress(raw)
    status, _, answer = _send(
        base_url, "POST", path, body, JSON_TYPE | {"Content-Encoding": encoding}
    )
    assert status == 200, answer
    plain = _send(base_url, "POST", path, raw, JSON_TYPE)[2]
    assert _predictions(answer) == _predictions(plain)


def test_compressed_feedback_is_read(base_url: str) -> None:
    for compress, encoding in ((gzip.compress, "gzip"), (zlib.compress, "deflate")):
        body = compress(_json({"request_id": f"compressed-{encoding}", "label": 1}))
        headers = JSON_TYPE | {"Content-Encoding": encoding}
        status, _, answer = _send(base_url, "POST", "/v1/feedback", body, headers)
        assert status == 200, answer
        assert json.loads(answer)["accepted"] + json.loads(answer)["dropped"] == 1


def _predictions(answer: bytes) -> Any:
    decoded = json.loads(answer)
    return decoded.get("predictions") or [o["data"] for o in decoded["outputs"]]


def _triton_inputs() -> list[triton.InferInput]:
    inputs = []
    for name, value in ROW.items():
        if isinstance(value, str):
            array, datatype = np.array([value.encode()], dtype=object), "BYTES"
        elif isinstance(value, float):
            array, datatype = np.array([value]), "FP64"
        else:
            array, datatype = np.array([value], dtype=np.int64), "INT64"
        tensor = triton.InferInput(name, [1], datatype)
        tensor.set_data_from_numpy(array, binary_data=False)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_tritonclient_with_request_compression(
    base_url: str, served: ServedModel, compression: str
) -> None:
    client = triton.InferenceServerClient(urlsplit(base_url).netloc)
    try:
        result = client.infer("churn", _triton_inputs(), request_compression_algorithm=compression)
        plain = client.infer("churn", _triton_inputs())
    finally:
        client.close()
    predicted, expected = result.as_numpy("predict"), plain.as_numpy("predict")
    assert predicted is not None and expected is not None
    assert predicted.tolist() == expected.tolist()
    assert served.classes is not None and predicted.tolist()[0] in served.classes.tolist()


def test_binary_data_is_honoured_per_output(base_url: str) -> None:
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=True),
        triton.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    client = triton.InferenceServerClient(urlsplit(base_url).netloc)
    try:
        result = client.infer("churn", _triton_inputs(), outputs=outputs)
    finally:
        client.close()
    by_name = {output["name"]: output for output in result.get_response()["outputs"]}
    assert "binary_data_size" in by_name["predict"]["parameters"]
    assert "data" not in by_name["predict"]
    assert "data" in by_name["predict_proba"]
    assert "parameters" not in by_name["predict_proba"]
    probabilities = result.as_numpy("predict_proba")
    assert probabilities is not None and probabilities.shape == (1, 2)
    assert np.isclose(probabilities.sum(), 1.0)
    assert result.as_numpy("predict") is not None


@pytest.fixture(scope="module")
def impatient_url(served: ServedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that waits half a second for a body (with a label log, so feedback reads)."""
    labels = PredictionLogWriter(tmp_path_factory.mktemp("labels"), kind="labels")
    labels.start()
    app = create_app(served, labels=labels, body_timeout_seconds=0.5)
    with serve_in_thread(app) as url:
        yield url
    labels.close()


@pytest.mark.parametrize("path", [V1, "/v1/feedback", "/invocations"])
def test_a_body_that_never_arrives_gets_408_and_a_closed_connection(
    impatient_url: str, path: str
) -> None:
    parts = urlsplit(impatient_url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    with socket.create_connection(address, timeout=PATIENCE) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"instances": [')  # and then nothing more
        received = bytearray()

        def closed() -> bool:
            chunk = sock.recv(65536)
            received.extend(chunk)
            return not chunk  # the server closed its end

        wait_for(closed, what="the server to answer and close the connection")
    status_line, _, rest = bytes(received).partition(b"\r\n")
    assert status_line.split()[1] == b"408", bytes(received)
    assert b"connection: close" in rest.lower()
    assert b"body_timeout_seconds" in rest.split(b"\r\n\r\n", 1)[1]


def test_a_bug_is_a_json_500_without_its_details() -> None:
    # The server's own handlers around a route that fails: what a bug looks like to a client.
    def broken(_request: Request) -> Response:
        raise RuntimeError("secret detail")

    app = Starlette(
        routes=[Route("/v1/broken", broken), Route("/invocations", broken)],
        exception_handlers={Exception: internal_error_response},
        middleware=[Middleware(RequestIdMiddleware)],
    )
    with in_process(app) as client:
        status, headers, payload = client.call("/v1/broken", headers={"X-Request-ID": "bug-1"})
        mlflow = json.loads(client.call("/invocations")[2])
    assert status == 500 and headers["x-request-id"] == "bug-1"
    assert json.loads(payload) == {
        "error": "internal error; the server log has the details (request bug-1)"
    }
    assert mlflow["error_code"] == "INTERNAL_ERROR" and "secret" not in mlflow["message"]
