"""The OpenAPI document of a server, built from the served model's input spec.

One document per loaded champion: request schemas name its columns with the JSON type
of each, so a client (or a fuzzer) learns what a prediction request must hold. JSON has
no NaN, so a float column that allows missing values takes ``null``. Rules that JSON
Schema cannot state (every column of a columnar body as long as the others, a V2
tensor's ``shape`` matching its ``data``) are said in the descriptions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from shipyard import __version__
from shipyard.models.served import ServedModel
from shipyard.serving.features import sent_spec
from shipyard.serving.feedback import FEEDBACK_ID_PATTERN, MAX_FEEDBACK_ITEMS, OUTCOME_NAME_PATTERN
from shipyard.serving.protocols import InputSpec, datatype_of
from shipyard.serving.protocols.mlflow_invocations import DATA_KEYS
from shipyard.serving.protocols.open_inference import DATATYPES, HEADER_LENGTH
from shipyard.serving.request import MAX_REQUEST_ID_LENGTH, REQUEST_ID_PATTERN

__all__ = ["OPENAPI_VERSION", "openapi_document"]

OPENAPI_VERSION = "3.1.0"

Schema = dict[str, Any]
Content = dict[str, Any]  # media type → media type object

JSON = "application/json"
BINARY = "application/octet-stream"
V1, V2, MLFLOW, FEEDBACK, OPERATIONS = (
    "KServe V1",
    "Open Inference V2",
    "MLflow",
    "Feedback",
    "Operations",
)
_TAGS = {
    V1: "KServe V1 inference protocol.",
    V2: "Open Inference Protocol (KServe V2), JSON and the binary tensor extension.",
    MLFLOW: "MLflow scoring-server protocol.",
    FEEDBACK: "Ground-truth labels and business outcomes for earlier predictions, joined by "
    "request id.",
    OPERATIONS: "Health, version, metrics and this document.",
}
# Error status → (component name, when the server answers it).
_ERRORS = {
    400: (
        "BadRequest",
        "The request is malformed, does not fit the model's inputs, or its X-Request-ID is "
        "too long or holds characters other than letters, digits and . _ : -.",
    ),
    404: ("NotFound", "This server does not serve that model name or version."),
    409: (
        "FeedbackConflict",
        "A request already has a label (labels.on_conflict: reject; the message names the "
        "request ids), or the server runs without logs and records no feedback.",
    ),
    408: (
        "RequestTimeout",
        "The body did not fully arrive within serving.body_timeout_seconds of the request's "
        "headers; the connection is closed.",
    ),
    413: (
        "TooLarge",
        "The body is over the server's limit of {max_body_bytes} bytes, or inflates (gzip, "
        "deflate) beyond it.",
    ),
    415: (
        "UnsupportedMediaType",
        "The route cannot read the body's Content-Type (V1: application/json; V2: "
        "application/json or application/octet-stream; /invocations: application/json or "
        "text/csv; on V1 and V2 no Content-Type, or application/x-www-form-urlencoded as "
        "curl -d sends, means JSON) or its Content-Encoding (gzip, deflate and identity are "
        "read).",
    ),
}
_TEXT: Content = {"text/plain": {"schema": {"type": "string"}}}
_BINARY_STRING: Schema = {"type": "string", "format": "binary"}


def openapi_document(model: ServedModel, max_body_bytes: int) -> dict[str, Any]:
    """OpenAPI 3 description of every route, with request schemas from ``model.spec``.

    A model served from entity keys is described by what the client sends: its keys and
    request inputs (the features are looked up).
    """
    model = replace(model, spec=sent_spec(model.spec))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": f"Shipyard inference server: {model.name}",
            "version": __version__,
            "description": (
                f"Serves model {model.name!r} (version {model.version}, {model.flavour}) "
                "over KServe V1, the Open Inference Protocol V2 and MLflow's /invocations. "
                f"Bodies over {max_body_bytes} bytes (also once inflated: bodies "
                "may be sent with Content-Encoding gzip or deflate) are refused with 413. No "
                "Content-Type on a V1 or V2 prediction means JSON. Every response carries "
                "X-Request-ID; every prediction X-Model-Version and X-Model-Role. Unknown "
                'routes answer 404 and wrong methods 405, as JSON: {"error": ...}, or MLflow\'s '
                '{"error_code": ..., "message": ...} on /invocations, /ping, /health and '
                "/version."
            ),
        },
        "tags": [{"name": name, "description": text} for name, text in _TAGS.items()],
        "paths": _paths(model),
        "components": {
            "schemas": {
                **_input_schemas(model.spec),
                **_prediction_schemas(model),
                **_open_inference_schemas(model),
                **_service_schemas(),
            },
            "parameters": _parameters(model),
            "headers": _headers(),
            "responses": {
                name: _response(description.format(max_body_bytes=max_body_bytes), _json("Error"))
                for name, description in _ERRORS.values()
            },
        },
    }


# Paths and operations


def _paths(model: ServedModel) -> dict[str, Any]:
    spec = model.spec
    health = "MLflow health check: a newline (not a JSON value) labelled JSON."
    return {
        "/": {"get": _get("alive", "Liveness, for load balancers.", OPERATIONS, _json("Alive"))},
        "/v1/models": {"get": _get("v1_models", "The served models.", V1, _json("ModelList"))},
        "/v1/models/{name}": {
            "get": _get(
                "v1_model", "Whether the model is ready.", V1, _json("ModelReady"), ["name"]
            )
        },
        "/v1/models/{name}:predict": {
            "post": _predict(
                "v1_predict",
                "Predict rows.",
                V1,
                _v1_body(spec),
                ["name"],
                errors=(400, 404, 408, 413, 415),
            )
        },
        "/v2": {"get": _get("v2_server", "Server metadata.", V2, _json("ServerMetadata"))},
        "/v2/health/live": {"get": _get("v2_live", "Liveness.", V2, _json("ServerLive"))},
        "/v2/health/ready": {"get": _get("v2_ready", "Readiness.", V2, _json("ServerReady"))},
        **_v2_model_paths(model),
        "/invocations": {
            "post": _predict(
                "invocations",
                "Predict a DataFrame, as MLflow's scoring server does.",
                MLFLOW,
                _invocations_body(spec),
                errors=(400, 408, 413, 415),
            )
        },
        "/v1/feedback": {
            "post": _operation(
                "feedback",
                "Record true labels for earlier predictions.",
                FEEDBACK,
                _response("Labels written, ignored or replaced.", _json("FeedbackResult")),
                body={
                    JSON: {
                        "schema": _ref("Feedback"),
                        "example": {"request_id": "3f2c9a", "label": 1},
                    }
                },
                errors=(400, 408, 409, 413, 415),
            )
        },
        "/ping": {"get": _get("ping", health, MLFLOW, {JSON: {}})},
        "/health": {"get": _get("health", health, MLFLOW, {JSON: {}})},
        "/version": {"get": _get("version", "The Shipyard version, as text.", OPERATIONS, _TEXT)},
        "/metrics": {"get": _get("metrics", "Prometheus text format 0.0.4.", OPERATIONS, _TEXT)},
        "/openapi.json": {
            "get": _get(
                "openapi", "This document.", OPERATIONS, {JSON: {"schema": {"type": "object"}}}
            )
        },
    }


def _v2_model_paths(model: ServedModel) -> dict[str, Any]:
    """The V2 model routes, each with and without ``/versions/{version}``."""
    answer = _prediction(
        "The outputs; binary (JSON head, then raw tensors) when the request asked for it.",
        {JSON: {"schema": _ref("InferenceResponse")}, BINARY: {"schema": _BINARY_STRING}},
    )
    answer["headers"][HEADER_LENGTH] = _header_ref("HeaderLength")
    paths: dict[str, Any] = {}
    for prefix, parameters, suffix in (
        ("/v2/models/{name}", ["name"], ""),
        ("/v2/models/{name}/versions/{version}", ["name", "version"], "_version"),
    ):
        metadata = _get(
            f"v2_metadata{suffix}", "Model metadata.", V2, _json("ModelMetadata"), parameters
        )
        ready = _get(
            f"v2_model_ready{suffix}", "Model readiness.", V2, _json("ModelReady"), parameters
        )
        paths[prefix] = {"get": metadata}
        paths[f"{prefix}/ready"] = {"get": ready}
        paths[f"{prefix}/infer"] = {
            "post": _operation(
                f"v2_infer{suffix}",
                "Infer, with JSON tensors or the binary tensor extension.",
                V2,
                answer,
                [*parameters, "header_length"],
                _infer_body(model.spec),
                (400, 404, 408, 413, 415),
            )
        }
    return paths


def _operation(
    operation_id: str,
    summary: str,
    tag: str,
    ok: dict[str, Any],
    parameters: Sequence[str] = (),
    body: Content | None = None,
    errors: Sequence[int] = (),
) -> dict[str, Any]:
    """One operation: its parameters (named in components), body, 200 and error answers.

    Every operation may answer 400: an X-Request-ID that is too long or holds other
    characters is refused on every route.
    """
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [
            {"$ref": f"#/components/parameters/{name}"} for name in (*parameters, "request_id")
        ],
        "responses": {
            "200": ok,
            **{
                str(status): {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
                for status in sorted({400, *errors})
            },
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def _get(
    operation_id: str, summary: str, tag: str, content: Content, parameters: Sequence[str] = ()
) -> dict[str, Any]:
    """A GET; 404 when its path names a model or version."""
    errors = (404,) if parameters else ()
    return _operation(
        operation_id, summary, tag, _response(summary, content), parameters, None, errors
    )


def _predict(
    operation_id: str,
    summary: str,
    tag: str,
    body: Content,
    parameters: Sequence[str] = (),
    errors: Sequence[int] = (400, 404, 408, 413, 415),
) -> dict[str, Any]:
    """A prediction answered with ``{"predictions": [...]}``."""
    ok = _prediction("The predictions, one per row.", _json("Predictions"))
    return _operation(operation_id, summary, tag, ok, parameters, body, errors)


def _response(description: str, content: Content) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": _header_ref("RequestId")},
        "content": content,
    }


def _prediction(description: str, content: Content) -> dict[str, Any]:
    response = _response(description, content)
    response["headers"] |= {
        "X-Model-Version": _header_ref("ModelVersion"),
        "X-Model-Role": _header_ref("ModelRole"),
    }
    return response


def _parameters(model: ServedModel) -> dict[str, Any]:
    return {
        "name": _parameter(
            "name", "path", "The model name.", {"type": "string", "enum": [model.name]}
        ),
        "version": _parameter(
            "version",
            "path",
            "A version this server has loaded: the champion's or a challenger's.",
            {"type": "string", "examples": [model.version]},
        ),
        "header_length": _parameter(
            HEADER_LENGTH,
            "header",
            "Binary tensor extension: the JSON part is this many bytes at the start of the "
            "body (1 to the body's length: else a 400); the raw tensors follow, in input order.",
            {"type": "integer", "minimum": 1},
        ),
        "request_id": _parameter(
            "X-Request-ID",
            "header",
            "Echoed on the response and logged (in the caller's namespace when the server "
            "authenticates); a new one is made when absent. Longer than 128 characters, or "
            "other characters than letters, digits and . _ : -: a 400.",
            {"type": "string", "pattern": REQUEST_ID_PATTERN, "maxLength": MAX_REQUEST_ID_LENGTH},
        ),
    }


def _parameter(name: str, where: str, description: str, schema: Schema) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


def _headers() -> dict[str, Any]:
    roles = {"enum": ["champion", "challenger", "shadow"]}
    return {
        "RequestId": _header("The request's X-Request-ID, or a new one.", {"type": "string"}),
        "ModelVersion": _header("The model version that answered.", {"type": "string"}),
        "ModelRole": _header("That version's role in the traffic plan.", roles),
        "HeaderLength": _header(
            "With binary outputs: the length of the JSON head, in bytes.",
            {"type": "integer", "minimum": 0},
            required=False,
        ),
    }


def _header(description: str, schema: Schema, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema}


# Request bodies


def _v1_body(spec: InputSpec) -> Content:
    return {JSON: {"schema": _ref("V1Request"), "example": {"instances": [_example_row(spec)]}}}


def _invocations_body(spec: InputSpec) -> Content:
    row = _example_row(spec)
    csv = {
        "type": "string",
        "description": "A header row naming every column (any order), then one row per line; "
        "an empty cell in a float column is a missing value.",
    }
    return {
        JSON: {"schema": _ref("InvocationsRequest"), "example": {"dataframe_records": [row]}},
        "text/csv": {
            "schema": csv,
            "example": f"{','.join(row)}\n{','.join(str(value) for value in row.values())}\n",
        },
    }


def _infer_body(spec: InputSpec) -> Content:
    inputs = [
        {"name": column, "datatype": datatype_of(dtype), "shape": [1], "data": [value]}
        for (column, value), dtype in zip(_example_row(spec).items(), spec.dtypes, strict=True)
    ]
    binary = _BINARY_STRING | {
        "description": f"A JSON request of {HEADER_LENGTH} bytes, then the raw tensors its "
        "inputs' binary_data_size announce (little-endian; BYTES as 4-byte length + bytes)."
    }
    return {
        JSON: {"schema": _ref("InferenceRequest"), "example": {"inputs": inputs}},
        BINARY: {"schema": binary},
    }


# Schemas


def _input_schemas(spec: InputSpec) -> dict[str, Schema]:
    """Rows and columns of the model's inputs, in the shapes the protocols carry them."""
    values = [
        _value(dtype, nan, spec.max_abs)
        for dtype, nan in zip(spec.dtypes, spec.allow_nan, strict=True)
    ]
    width = len(spec.columns)
    return {
        "Row": _object(
            dict(zip(spec.columns, values, strict=True)),
            description="One row: every column, by name.",
            additionalProperties=False,
        ),
        "RowValues": {
            "type": "array",
            "description": f"One row: its values in column order ({', '.join(spec.columns)}).",
            "prefixItems": values,
            "items": False,
            "minItems": width,
        },
        "Rows": {
            "description": "One or more rows, all objects or all arrays.",
            "oneOf": [_array(_ref("Row"), minItems=1), _array(_ref("RowValues"), minItems=1)],
        },
        "Columns": _object(
            {
                column: _array(value, minItems=1)
                for column, value in zip(spec.columns, values, strict=True)
            },
            description="Column name → its values; every column as long as the others.",
            additionalProperties=False,
        ),
        "DataframeSplit": _object(
            {
                "columns": _array(
                    {"enum": list(spec.columns)}, uniqueItems=True, minItems=width, maxItems=width
                ),
                "data": _array(_array({}, minItems=width, maxItems=width), minItems=1),
                "index": {"type": ["array", "null"], "description": "As long as data; ignored."},
            },
            required=["columns", "data"],
            description="pandas' split orientation: every column, in any order, and rows in "
            "that order.",
        ),
    }


def _prediction_schemas(model: ServedModel) -> dict[str, Schema]:
    """V1 and MLflow request bodies, and the predictions both answer with."""
    forms = {
        "dataframe_split": _ref("DataframeSplit"),
        "dataframe_records": _ref("Rows"),
        "instances": _ref("Rows"),
        "inputs": {"oneOf": [_ref("Rows"), _ref("Columns")]},
    }
    params = {"type": ["object", "null"], "description": "Accepted and ignored."}
    return {
        "V1Request": {
            "description": 'Rows under "instances" (or KServe\'s "inputs"), not both; other '
            "keys are ignored.",
            "oneOf": [
                _only("instances", _ref("Rows"), others=["inputs"]),
                _only("inputs", _ref("Rows"), others=["instances"]),
            ],
        },
        "InvocationsRequest": {
            "description": f"Exactly one of {', '.join(DATA_KEYS)}, plus optional params.",
            "oneOf": [
                _object(
                    {key: forms[key], "params": params}, required=[key], additionalProperties=False
                )
                for key in DATA_KEYS
            ],
        },
        "Label": _label(model),
        "Predictions": _object({"predictions": _array(_ref("Label"))}),
    }


def _open_inference_schemas(model: ServedModel) -> dict[str, Schema]:
    outputs = {"enum": ["predict"] if model.classes is None else ["predict", "predict_proba"]}
    datatype = {"enum": list(DATATYPES)}
    shape = _array({"type": "integer", "minimum": 0})
    columns = ", ".join(model.spec.columns)

    def parameters(**properties: Schema) -> Schema:
        return {"type": ["object", "null"], "properties": properties}

    return {
        "InferenceRequest": _object(
            {
                "id": {"type": ["string", "null"]},
                "parameters": parameters(binary_data_output={"type": "boolean"}),
                "inputs": _array(_ref("RequestTensor"), minItems=1),
                "outputs": {"type": ["array", "null"], "items": _ref("RequestedOutput")},
            },
            required=["inputs"],
        ),
        "RequestTensor": _object(
            {
                "name": {"type": "string"},
                "shape": shape,
                "datatype": datatype,
                "parameters": parameters(binary_data_size={"type": "integer", "minimum": 0}),
                "data": _array({}, description="Row-major values, flat or nested."),
            },
            required=["name", "shape", "datatype"],
            description=f"One input per column ({columns}) of shape [n] or [n, 1], or one "
            f"input of shape [n, {len(model.spec.columns)}] in column order; data (or "
            "binary_data_size) must fit shape and datatype.",
        ),
        "RequestedOutput": _object(
            {"name": outputs, "parameters": parameters(binary_data={"type": "boolean"})},
            required=["name"],
        ),
        "InferenceResponse": _object(
            {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": _array(_ref("ResponseTensor")),
            },
            required=["model_name", "outputs"],
        ),
        "ResponseTensor": _object(
            {
                "name": outputs,
                "datatype": datatype,
                "shape": shape,
                "data": _array({"type": ["number", "string", "boolean"]}),
                "parameters": _object({"binary_data_size": {"type": "integer", "minimum": 0}}),
            },
            required=["name", "datatype", "shape"],
        ),
        "ModelMetadata": _object(
            {
                "name": {"type": "string"},
                "versions": _array({"type": "string"}),
                "platform": {"type": "string"},
                "inputs": _array(_ref("TensorMetadata")),
                "outputs": _array(_ref("TensorMetadata")),
            }
        ),
        "TensorMetadata": _object(
            {
                "name": {"type": "string"},
                "datatype": datatype,
                "shape": _array({"type": "integer", "minimum": -1}),
            }
        ),
    }


def _service_schemas() -> dict[str, Schema]:
    """Errors, feedback and the small status answers."""
    count = {"type": "integer", "minimum": 0}
    text = {"type": "string"}
    item = _object(
        {
            "request_id": {
                "type": "string",
                "pattern": FEEDBACK_ID_PATTERN,
                "description": "The X-Request-ID the prediction was answered with (and "
                ":<row> for one row of a batch).",
            },
            "label": {"description": "The true label: any JSON value."},
            "outcome": _object(
                {
                    "name": {
                        "type": "string",
                        "pattern": OUTCOME_NAME_PATTERN,
                        "description": "What was measured, e.g. revenue or converted.",
                    },
                    "value": {"type": "number", "description": "Its value (a finite number)."},
                },
                required=["name", "value"],
                additionalProperties=False,
            )
            | {"description": "A business outcome of the prediction, for A/B experiments."},
        },
        required=["request_id"],
        additionalProperties=False,
    ) | {"anyOf": [{"required": ["label"]}, {"required": ["outcome"]}]}
    return {
        "Error": _object({"error": text | {"description": "What went wrong and what to do."}}),
        "FeedbackItem": item,
        "Feedback": {
            "oneOf": [
                _ref("FeedbackItem"),
                _array(_ref("FeedbackItem"), minItems=1, maxItems=MAX_FEEDBACK_ITEMS),
            ]
        },
        "FeedbackResult": _object(
            {
                "accepted": count,
                "dropped": count,
                "ignored": _array(text) | {"description": "labels.on_conflict: keep_first."},
                "replaced": _array(text) | {"description": "labels.on_conflict: keep_last."},
                "outcomes": count | {"description": "Outcomes written (when any were sent)."},
            },
            required=["accepted", "dropped"],
        ),
        "Alive": _object({"status": {"const": "alive"}}),
        "ModelList": _object({"models": _array(text)}),
        "ModelReady": _object({"name": text, "ready": {"type": "boolean"}}),
        "ServerMetadata": _object({"name": text, "version": text, "extensions": _array(text)}),
        "ServerLive": _object({"live": {"type": "boolean"}}),
        "ServerReady": _object({"ready": {"type": "boolean"}, "details": {"type": "object"}}),
    }


# Small pieces


def _value(dtype: np.dtype[Any], allow_nan: bool, max_abs: float | None = None) -> Schema:
    """The JSON schema of one value of a column of ``dtype`` (floats: within ``max_abs``)."""
    if dtype.kind == "b":
        return {"type": "boolean"}
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        return {"type": "integer", "minimum": int(limits.min), "maximum": int(limits.max)}
    if dtype.kind == "f":
        schema: Schema = {"type": "number"}
        if allow_nan:
            schema = {"type": ["number", "null"], "description": "null is a missing value."}
        largest = min(float(np.finfo(dtype).max), max_abs or math.inf)
        if largest < float(np.finfo(np.float64).max):  # narrower floats overflow to infinity
            schema |= {"minimum": -largest, "maximum": largest}
        return schema
    return {"type": "string"}


def _example_row(spec: InputSpec) -> dict[str, Any]:
    examples = {"b": True, "i": 1, "u": 1, "f": 1.5, "O": "text"}
    return {column: examples[d.kind] for column, d in zip(spec.columns, spec.dtypes, strict=True)}


def _label(model: ServedModel) -> Schema:
    """One prediction: one of the classes for a classifier, a number otherwise."""
    if model.classes is None:
        return {"type": "number", "description": "The predicted value."}
    return {"enum": model.classes.tolist(), "description": "The predicted class."}


def _only(key: str, schema: Schema, *, others: Sequence[str]) -> Schema:
    """An object holding ``key`` and none of ``others``."""
    return _object({key: schema}) | {"not": {"anyOf": [{"required": [o]} for o in others]}}


def _object(
    properties: dict[str, Schema], *, required: Sequence[str] | None = None, **keywords: Any
) -> Schema:
    """An object schema; every property is required unless ``required`` says otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        **keywords,
    }


def _array(items: Schema, **keywords: Any) -> Schema:
    return {"type": "array", "items": items, **keywords}


def _json(name: str) -> Content:
    return {JSON: {"schema": _ref(name)}}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _header_ref(name: str) -> Schema:
    return {"$ref": f"#/components/headers/{name}"}
