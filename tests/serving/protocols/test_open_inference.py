"""Open Inference Protocol (V2) bodies, checked against the real tritonclient."""

from __future__ import annotations

import json
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import tritonclient.http as triton

from shipyard.serving.protocols import (
    InputSpec,
    RequestError,
    decode_v2,
    encode_v2,
    model_metadata,
    select_outputs,
)

Client = triton.InferenceServerClient
LENGTH = "Inference-Header-Content-Length"


def _tensor(name: str, array: np.ndarray, datatype: str, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    return tensor


def _request(inputs: list[triton.InferInput], **kwargs: Any) -> tuple[bytes, dict[str, str]]:
    body, json_size = Client.generate_request_body(inputs, **kwargs)
    return body, ({} if json_size is None else {LENGTH: str(json_size)})


def _mixed_inputs(binary: bool) -> list[triton.InferInput]:
    return [
        _tensor("income", np.array([1.5, 2.0], dtype=np.float32), "FP32", binary),
        _tensor("age", np.array([[30], [40]], dtype=np.int64), "INT64", binary),
        _tensor("city", np.array([b"oslo", "röma".encode()], dtype=object), "BYTES", binary),
    ]


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_per_column_bodies(mixed_spec: InputSpec, binary: bool) -> None:
    body, headers = _request(_mixed_inputs(binary), request_id="r-1")
    assert (LENGTH in headers) is binary
    request = decode_v2(body, headers, mixed_spec)
    assert request.id == "r-1"
    assert request.matrix.dtype == np.dtype(object)
    assert request.matrix.tolist() == [[30, "oslo", 1.5], [40, "röma", 2.0]]
    # No outputs named: tritonclient asks for binary outputs.
    assert request.binary_outputs is True and request.requested_outputs == ()


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient_single_2d_input(numeric_spec: InputSpec, binary: bool) -> None:
    table = np.array([[30, 1.5, 1], [40, 2.5, 0]], dtype=np.float64)
    body, headers = _request([_tensor("features", table, "FP64", binary)])
    request = decode_v2(body, headers, numeric_spec)
    assert request.matrix.dtype == np.float64
    np.testing.assert_array_equal(request.matrix, table)


def test_single_2d_bytes_input_for_mixed_columns(mixed_spec: InputSpec) -> None:
    table = np.array([[b"30", b"oslo", b"1.5"], [b"40", b"rome", b""]], dtype=object)
    body, headers = _request([_tensor("x", table, "BYTES", True)])
    matrix = decode_v2(body, headers, mixed_spec).matrix
    assert matrix[:, :2].tolist() == [[30, "oslo"], [40, "rome"]]
    assert matrix[0, 2] == 1.5 and np.isnan(matrix[1, 2])


@pytest.mark.parametrize(
    ("datatype", "array"),
    [
        *[(f"INT{n}", np.array([1, 2], dtype=f"int{n}")) for n in (8, 16, 32, 64)],
        *[(f"UINT{n}", np.array([1, 2], dtype=f"uint{n}")) for n in (8, 16, 32, 64)],
        ("FP16", np.array([1, 2], dtype=np.float16)),
        ("FP32", np.array([1, 2], dtype=np.float32)),
        ("FP64", np.array([1, 2], dtype=np.float64)),
        ("BF16", np.array([1, 2], dtype=ml_dtypes.bfloat16)),
    ],
)
def test_every_numeric_datatype_fills_numeric_columns(datatype: str, array: np.ndarray) -> None:
    spec = InputSpec.from_columns([("x", "double"), ("n", "long")])
    for binary in (True, False) if datatype != "BF16" else (True,):
        inputs = [_tensor("x", array, datatype, binary), _tensor("n", array, datatype, binary)]
        matrix = decode_v2(*_request(inputs), spec).matrix
        np.testing.assert_array_equal(matrix, [[1, 1], [2, 2]])


def test_bool_column_and_nested_json_data(numeric_spec: InputSpec) -> None:
    payload = {
        "inputs": [
            {"name": "f", "shape": [2, 3], "datatype": "FP64", "data": [[1, 2.5, 1], [2, 3.5, 0]]},
        ]
    }
    matrix = decode_v2(json.dumps(payload).encode(), {}, numeric_spec).matrix
    np.testing.assert_array_equal(matrix, [[1, 2.5, 1], [2, 3.5, 0]])
    per_column = {
        "inputs": [
            {"name": "age", "shape": [1], "datatype": "INT32", "data": [7]},
            {"name": "income", "shape": [1, 1], "datatype": "FP32", "data": [[0.5]]},
            {"name": "member", "shape": [1], "datatype": "BOOL", "data": [True]},
        ]
    }
    matrix = decode_v2(json.dumps(per_column).encode(), {}, numeric_spec).matrix
    assert matrix.tolist() == [[7.0, 0.5, 1.0]]


def test_requested_outputs_and_binary_flags(numeric_spec: InputSpec) -> None:
    inputs = [_tensor("f", np.ones((1, 3)), "FP64", False)]
    json_only = [triton.InferRequestedOutput("predict", binary_data=False)]
    request = decode_v2(*_request(inputs, outputs=json_only), numeric_spec)
    assert request.binary_outputs is False and request.requested_outputs == ("predict",)
    both = [triton.InferRequestedOutput(name) for name in ("predict", "predict_proba")]
    request = decode_v2(*_request(inputs, outputs=both), numeric_spec)
    assert request.binary_outputs is True
    assert request.requested_outputs == ("predict", "predict_proba")
    outputs = {"predict": np.array([1]), "predict_proba": np.array([[0.1, 0.9]])}
    assert list(select_outputs(outputs, ("predict",))) == ["predict"]
    assert list(select_outputs(outputs, ())) == ["predict", "predict_proba"]
    with pytest.raises(RequestError, match="unknown output 'score'"):
        select_outputs(outputs, ("score",))


OUTPUTS = {
    "predict": np.array(["yes", "no", "sí"], dtype=object),
    "predict_proba": np.array([[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]]),
    "label_id": np.array([1, 0, 1], dtype=np.int64),
}


def test_binary_response_parses_with_tritonclient() -> None:
    body, headers = encode_v2("churn", "3", "r-1", OUTPUTS, binary=True)
    assert headers["Content-Type"] == "application/octet-stream"
    result = Client.parse_response_body(body, header_length=int(headers[LENGTH]))
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (
        "churn",
        "3",
        "r-1",
    )
    assert result.as_numpy("predict").tolist() == [b"yes", b"no", "sí".encode()]
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), OUTPUTS["predict_proba"])
    np.testing.assert_array_equal(result.as_numpy("label_id"), OUTPUTS["label_id"])


def test_json_response_parses_with_tritonclient() -> None:
    body, headers = encode_v2("churn", None, None, OUTPUTS, binary=False)
    assert headers == {}
    payload = json.loads(body)
    assert "id" not in payload and "model_version" not in payload
    kinds = {o["name"]: (o["datatype"], o["shape"]) for o in payload["outputs"]}
    assert kinds == {
        "predict": ("BYTES", [3]),
        "predict_proba": ("FP64", [3, 2]),
        "label_id": ("INT64", [3]),
    }
    result = Client.parse_response_body(body)
    assert result.as_numpy("predict").tolist() == ["yes", "no", "sí"]
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), OUTPUTS["predict_proba"])


def test_object_labels_that_are_numbers_encode_as_numbers() -> None:
    body, _ = encode_v2("m", "1", None, {"predict": np.array([1, 0], dtype=object)}, False)
    assert json.loads(body)["outputs"][0] == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [2],
        "data": [1, 0],
    }


def test_model_metadata(mixed_spec: InputSpec) -> None:
    metadata = model_metadata(
        "churn", [3], mixed_spec, {"predict": ("INT64", [-1]), "predict_proba": ("FP64", [-1, 2])}
    )
    assert metadata == {
        "name": "churn",
        "versions": ["3"],
        "platform": "shipyard",
        "inputs": [
            {"name": "age", "datatype": "INT64", "shape": [-1]},
            {"name": "city", "datatype": "BYTES", "shape": [-1]},
            {"name": "income", "datatype": "FP64", "shape": [-1]},
        ],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]},
        ],
    }


def _error(body: bytes, headers: dict[str, str], spec: InputSpec) -> RequestError:
    with pytest.raises(RequestError) as info:
        decode_v2(body, headers, spec)
    assert info.value.status == 400
    return info.value


def _json(*inputs: dict[str, Any]) -> bytes:
    return json.dumps({"inputs": list(inputs)}).encode()


def _input(name: str, shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


AGE = _input("age", [1], "INT64", [1])
MEMBER = _input("member", [1], "BOOL", [True])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{oops", ["not valid JSON"]),
        (b'{"inputs": {}}', ['"inputs" array']),
        (b'{"inputs": []}', ["empty"]),
        (_json({"shape": [1], "datatype": "FP64", "data": [1]}), ["inputs[0]", "name"]),
        (_json(_input("age", [1], "FP128", [1])), ["'age'", "unknown datatype", "FP128"]),
        (_json(_input("age", [-1], "INT64", [1])), ["'age'", "shape"]),
        (_json(_input("age", [2], "INT64", [1]), MEMBER), ["'age'", "1 elements", "needs 2"]),
        (_json(_input("age", [1], "INT64", 1)), ["'age'", "array"]),
        (_json(_input("age", [1], "INT64", [1.5])), ["'age'", "element 0", "INT64"]),
        (_json(_input("age", [1], "INT8", [300])), ["'age'", "out of range"]),
        (_json({"name": "age", "shape": [1], "datatype": "INT64"}), ["'age'", "neither"]),
        (_json(AGE, MEMBER), ["missing input", "'income'"]),
        (_json(AGE, AGE, MEMBER), ["more than once"]),
        (
            _json(AGE, _input("income", [2], "FP64", [1, 2]), MEMBER),
            ["'income'", "2 rows", "'age' has 1"],
        ),
        (
            _json(
                _input("age", [1, 2], "INT64", [1, 2]), _input("income", [1], "FP64", [1]), MEMBER
            ),
            ["'age'", "shape [1, 2]"],
        ),
        (_json(AGE, _input("x", [1], "FP64", [1])), ["unknown input 'x'", "[n, 3]"]),
        (_json(_input("f", [1, 2], "FP64", [1, 2])), ["'f'", "shape [1, 2]", "[n, 3]"]),
        (_json(_input("f", [3], "FP64", [1, 2, 3])), ["'f'", "[n, 3]"]),
        (_json(_input("f", [0, 3], "FP64", [])), ["empty"]),
        (_json(_input("f", [1, 3], "FP64", [1.5, 1, 1])), ["'f'", "'age'", "row 0", "1.5"]),
        (_json(_input("f", [1, 3], "FP64", [1, 1, 2])), ["'member'", "out of range"]),
        (_json(_input("f", [1, 3], "BOOL", [True, True, True])), ["'age'", "not BOOL"]),
        (_json(_input("f", [1, 3], "BYTES", ["1", "x", "1"])), ["'income'", "row 0", "'x'"]),
        (b'{"id": 7, "inputs": []}', ['"id"']),
        (_json(AGE)[:-1] + b', "outputs": [1]}', ['"outputs"']),
        (_json(AGE)[:-1] + b', "outputs": [{"name": "p", "parameters": 1}]}', ['"outputs"']),
    ],
)
def test_invalid_json_requests(numeric_spec: InputSpec, body: bytes, words: list[str]) -> None:
    error = _error(body, {}, numeric_spec)
    assert all(word in error.message for word in words), error.message


def test_string_column_refuses_numbers(mixed_spec: InputSpec) -> None:
    body = _json(AGE, _input("city", [1], "FP64", [1.0]), _input("income", [1], "FP64", [1]))
    assert "'city'" in _error(body, {}, mixed_spec).message


def test_nan_and_infinity_in_binary_tensors(numeric_spec: InputSpec) -> None:
    for value, words in [(np.nan, ["'age'", "nan"]), (np.inf, ["'income'", "infinity"])]:
        table = np.array([[1, 1, 1], [1, 1, 1]], dtype=np.float64)
        table[1, 0 if np.isnan(value) else 1] = value
        error = _error(*_request([_tensor("f", table, "FP64", True)]), numeric_spec)
        assert all(word in error.message for word in [*words, "row 1"]), error.message


def test_binary_framing_errors(mixed_spec: InputSpec) -> None:
    body, head = _request(_mixed_inputs(True))
    size = int(head[LENGTH])
    assert "truncated" in _error(body[:-3], head, mixed_spec).message
    assert "no input declares" in _error(body + b"\0\0", head, mixed_spec).message
    error = _error(body, {LENGTH: str(len(body) + 1)}, mixed_spec)
    assert LENGTH in error.message and f"is {len(body) + 1}" in error.message
    assert LENGTH in _error(body, {LENGTH: "abc"}, mixed_spec).message
    # Without the header the binary part is taken for JSON.
    assert "not valid JSON" in _error(body, {}, mixed_spec).message
    # Header names are case-insensitive.
    assert decode_v2(body, {LENGTH.lower(): str(size)}, mixed_spec).matrix.shape == (2, 3)


def test_binary_size_mismatch_names_the_input(mixed_spec: InputSpec) -> None:
    payload = {
        "inputs": [
            {
                "name": "age",
                "shape": [1],
                "datatype": "INT64",
                "parameters": {"binary_data_size": 4},
            },
            _input("city", [1], "BYTES", ["x"]),
            _input("income", [1], "FP64", [1.0]),
        ]
    }
    head = json.dumps(payload).encode()
    error = _error(head + b"\1\0\0\0", {LENGTH: str(len(head))}, mixed_spec)
    assert "'age'" in error.message and "4 bytes" in error.message and "needs 8" in error.message


def test_bytes_tensor_framing_errors(mixed_spec: InputSpec) -> None:
    def body(raw: bytes) -> tuple[bytes, dict[str, str]]:
        payload = {
            "inputs": [
                AGE,
                {
                    "name": "city",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                },
                _input("income", [1], "FP64", [1.0]),
            ]
        }
        head = json.dumps(payload).encode()
        return head + raw, {LENGTH: str(len(head))}

    assert decode_v2(*body(b"\2\0\0\0ab"), mixed_spec).matrix.tolist() == [[1, "ab", 1.0]]
    assert "length prefix" in _error(*body(b"\2\0\0\0ab\1\0"), mixed_spec).message
    assert "runs past" in _error(*body(b"\x09\0\0\0ab"), mixed_spec).message
    assert "2 elements" in _error(*body(b"\0\0\0\0\0\0\0\0"), mixed_spec).message
    assert "UTF-8" in _error(*body(b"\1\0\0\0\xff"), mixed_spec).message
