"""The server's OpenAPI document: valid, complete, and true of a real server.

Schemathesis reads ``/openapi.json`` from a real server on 127.0.0.1 serving the trained
churn model; these tests check the document itself and particular requests against it
(bugs fuzzing found, kept as regression tests). The fuzzing of every operation is
``tests/serving/test_fuzz.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import numpy as np
import pytest
import schemathesis
from starlette.routing import Route

from shipyard.config import Config
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel, load_served_model
from shipyard.registry import Tracking
from shipyard.serving.app import create_app
from shipyard.serving.fast_path import PredictionRoutes
from shipyard.serving.openapi import OPENAPI_VERSION, openapi_document
from tests.support import call, serve_in_thread

MAX_BODY_BYTES = 64 * 1024
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
INT64 = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
# Their bodies have rules JSON Schema cannot state (a V2 tensor's shape against its data,
# a dataframe_split's column order against its rows, CSV text), so a body valid by the
# document may rightly get a 400: "valid requests are accepted" is not checked there.
CROSS_FIELD_RULES = (
    "/invocations",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
)
FUZZING = {
    "seed": 1,  # the same requests every run
    "generation": {"max-examples": 30},
    "checks": {
        # 404: a version that is well formed but not loaded; 409: a label for a request
        # labelled already (labels.on_conflict: reject); 413: a valid body too large.
        "positive_data_acceptance": {"expected-statuses": ["2xx", 404, 409, 413]},
        "negative_data_rejection": {"expected-statuses": [400, 404, 405, 409, 413, 415]},
    },
    "operations": [
        {"include-path": path, "checks": {"positive_data_acceptance": {"enabled": False}}}
        for path in CROSS_FIELD_RULES
    ],
}


@pytest.fixture(scope="module")
def served(trained_project: Config) -> ServedModel:
    return load_served_model(Tracking(trained_project).client, "churn", "1")


@pytest.fixture(scope="module")
def app(
    served: ServedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PredictionRoutes]:
    root = tmp_path_factory.mktemp("logs")
    log = PredictionLogWriter(root)
    labels = PredictionLogWriter(root, kind="labels")
    log.start()
    labels.start()
    yield create_app(served, log=log, labels=labels, max_body_bytes=MAX_BODY_BYTES)
    log.close()
    labels.close()


@pytest.fixture(scope="module")
def base_url(app: PredictionRoutes) -> Iterator[str]:
    with serve_in_thread(app) as url:  # fuzzed over the wire: headers, bodies, statuses
        yield url


@pytest.fixture(scope="module")
def api(base_url: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(FUZZING)
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def test_document_is_valid_openapi(api: schemathesis.BaseSchema, served: ServedModel) -> None:
    api.validate()  # against the OpenAPI 3.1 meta-schema
    document = api.raw_schema
    assert document["openapi"] == OPENAPI_VERSION
    assert document == openapi_document(served, MAX_BODY_BYTES)
    for schema in document["components"]["schemas"].values():
        jsonschema_rs.meta.validate({"$schema": DRAFT_2020_12, **schema})


def test_request_schemas_follow_the_model_spec(
    api: schemathesis.BaseSchema, served: ServedModel
) -> None:
    schemas = api.raw_schema["components"]["schemas"]
    # The churn model (gradient boosting) refuses NaN and values beyond float32: the
    # loader's probe found both, and the document says so.
    assert served.spec.allow_nan[1] is False
    assert served.spec.max_abs == float(np.finfo(np.float32).max)
    within = {"minimum": -served.spec.max_abs, "maximum": served.spec.max_abs}
    assert schemas["Row"]["properties"] == {
        "tenure_months": INT64,
        "monthly_charges": {"type": "number", **within},
        "contract": {"type": "string"},
        "support_calls": INT64,
        "region": {"type": "string"},
    }
    assert schemas["RowValues"]["prefixItems"] == list(schemas["Row"]["properties"].values())
    assert schemas["Label"]["enum"] == [0, 1]
    too_large = api.raw_schema["components"]["responses"]["TooLarge"]["description"]
    assert str(MAX_BODY_BYTES) in too_large


def test_document_names_every_route(app: PredictionRoutes, api: schemathesis.BaseSchema) -> None:
    routes = [route for route in app.routes if isinstance(route, Route)]
    assert len(routes) == len(app.routes), "a route that is not a Route: document it, then here"
    served_routes = {
        (route.path, method.lower())
        for route in routes
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {
        (path, method)
        for path, operations in api.raw_schema["paths"].items()
        for method in operations
    }
    assert documented == served_routes


def test_feedback_without_logs_is_a_documented_409(
    served: ServedModel, api: schemathesis.BaseSchema
) -> None:
    with serve_in_thread(create_app(served)) as url:
        case = api["/v1/feedback"]["POST"].Case(
            body={"request_id": "abc", "label": 1}, media_type="application/json"
        )
        response = case.call(base_url=url)
    assert response.status_code == 409
    case.validate_response(response)


def test_binary_outputs_are_documented(base_url: str, api: schemathesis.BaseSchema) -> None:
    body: dict[str, Any] = {
        "inputs": [
            {"name": "tenure_months", "datatype": "INT64", "shape": [1], "data": [12]},
            {"name": "monthly_charges", "datatype": "FP64", "shape": [1], "data": [70.5]},
            {"name": "contract", "datatype": "BYTES", "shape": [1], "data": ["one-year"]},
            {"name": "support_calls", "datatype": "INT64", "shape": [1], "data": [2]},
            {"name": "region", "datatype": "BYTES", "shape": [1], "data": ["west"]},
        ],
        "parameters": {"binary_data_output": True},
    }
    case = api["/v2/models/{name}/infer"]["POST"].Case(
        path_parameters={"name": "churn"}, body=body, media_type="application/json"
    )
    response = case.call(base_url=base_url)
    assert response.status_code == 200
    assert response.headers["content-type"] == ["application/octet-stream"]
    case.validate_response(response)
    head = response.content[: int(response.headers["inference-header-content-length"][0])]
    assert [output["name"] for output in json.loads(head)["outputs"]] == [
        "predict",
        "predict_proba",
    ]


# The fuzzing itself (every operation, 200 examples each) is tests/serving/test_fuzz.py.


# Server bugs fuzzing found (or reading the decoders did), one exact request each: fixed,
# and kept as regression tests.

ROW = {
    "tenure_months": 12,
    "monthly_charges": 70.5,
    "contract": "one-year",
    "support_calls": 2,
    "region": "west",
}


def _v1_predict(
    api: schemathesis.BaseSchema, base_url: str, row: dict[str, Any]
) -> tuple[schemathesis.Case, schemathesis.Response]:
    case = api["/v1/models/{name}:predict"]["POST"].Case(
        path_parameters={"name": "churn"}, body={"instances": [row]}, media_type="application/json"
    )
    return case, case.call(base_url=base_url)


def test_missing_value_is_not_a_server_error(api: schemathesis.BaseSchema, base_url: str) -> None:
    # The document (from the spec's allow_nan) says a float column takes null; this
    # GradientBoostingClassifier cannot take NaN, so the request should get a 400, not a 500.
    case, response = _v1_predict(api, base_url, ROW | {"monthly_charges": None})
    assert response.status_code in (200, 400), response.text
    case.validate_response(response)


def test_large_float_is_not_a_server_error(api: schemathesis.BaseSchema, base_url: str) -> None:
    # A finite float64 above float32's range: sklearn's trees cast to float32 and raise.
    case, response = _v1_predict(api, base_url, ROW | {"monthly_charges": 1e39})
    assert response.status_code in (200, 400), response.text
    case.validate_response(response)


def test_integer_below_int64_is_refused(api: schemathesis.BaseSchema, base_url: str) -> None:
    # orjson reads integers beyond 64 bits as floats; -2**63 - 1 rounds to -2**63 and passes.
    case, response = _v1_predict(api, base_url, ROW | {"support_calls": -(2**63) - 1})
    assert response.status_code == 400, response.text
    case.validate_response(response)


def test_header_length_with_a_unicode_digit_is_refused(base_url: str) -> None:
    # str.isdigit() accepts "²" (U+00B2), then int() raises ValueError.
    status, _, payload = call(
        f"{base_url}/v2/models/churn/infer",
        b'{"inputs": []}',
        {"Content-Type": "application/json", "Inference-Header-Content-Length": "\u00b2"},
    )
    assert status == 400, payload


def test_version_is_plain_text(base_url: str) -> None:
    status, headers, payload = call(f"{base_url}/version")
    assert status == 200 and payload
    assert headers.get("content-type", "").startswith("text/plain")
