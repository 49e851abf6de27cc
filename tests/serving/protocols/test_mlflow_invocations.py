"""MLflow ``/invocations`` bodies: the four JSON forms and CSV."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from shipyard.serving.protocols import (
    InputSpec,
    RequestError,
    decode_invocations,
    encode_invocations,
)

EXPECTED = [[30, "oslo", 1.5], [40, "rome", 2.0]]
RECORDS = [{"age": 30, "city": "oslo", "income": 1.5}, {"age": 40, "city": "rome", "income": 2}]


@pytest.mark.parametrize(
    "payload",
    [
        {
            "dataframe_split": {
                "columns": ["income", "age", "city"],
                "data": [[1.5, 30, "oslo"], [2, 40, "rome"]],
                "index": [7, 8],
            }
        },
        {"dataframe_split": {"columns": ["age", "city", "income"], "data": EXPECTED}},
        {"dataframe_records": RECORDS},
        {"instances": RECORDS, "params": {"threshold": 0.3}},
        {"inputs": [[30, "oslo", 1.5], [40, "rome", 2]]},
        {"inputs": {"city": ["oslo", "rome"], "age": [30, 40], "income": [1.5, 2]}},
    ],
)
def test_json_forms_round_trip(mixed_spec: InputSpec, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    matrix = decode_invocations(body, "application/json; charset=utf-8", mixed_spec)
    assert matrix.dtype == np.dtype(object)
    assert matrix.tolist() == EXPECTED


def test_csv_with_header_in_any_order(mixed_spec: InputSpec) -> None:
    body = b'\xef\xbb\xbfincome,age,city\r\n1.5,30,oslo\r\n\r\n2,40,"rome"\r\n'
    assert decode_invocations(body, "text/csv", mixed_spec).tolist() == EXPECTED


def test_csv_numbers_booleans_and_empty_cells(numeric_spec: InputSpec) -> None:
    body = b"age,income,member\n1,,true\n2.0,nan,0\n"
    matrix = decode_invocations(body, "text/csv", numeric_spec)
    np.testing.assert_array_equal(matrix, [[1, np.nan, 1], [2, np.nan, 0]])


def test_null_is_nan_in_a_float_column(mixed_spec: InputSpec) -> None:
    body = json.dumps({"dataframe_records": [{**RECORDS[0], "income": None}]}).encode()
    assert np.isnan(decode_invocations(body, "application/json", mixed_spec)[0, 2])


def test_encode_predictions() -> None:
    out = encode_invocations(np.array([0.5, 1.5]))
    assert json.loads(out) == {"predictions": [0.5, 1.5]}


def _error(body: bytes, content_type: str | None, spec: InputSpec) -> RequestError:
    with pytest.raises(RequestError) as info:
        decode_invocations(body, content_type, spec)
    return info.value


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(mixed_spec: InputSpec, content_type: str | None) -> None:
    error = _error(b"{}", content_type, mixed_spec)
    assert error.status == 415
    assert "application/json" in error.message and "text/csv" in error.message


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"dataframe_split": {}, "dataframe_records": []}, ["exactly one of", "dataframe_records"]),
        ({}, ["exactly one of", "dataframe_split", "found: none"]),
        ({"params": {}}, ["exactly one of"]),
        ({"dataframe_records": RECORDS, "extra": 1}, ["found", "extra"]),
        ({"instances": RECORDS, "params": [1]}, ["params"]),
        (
            {"dataframe_split": {"columns": ["age", "city"], "data": [[1, "x"]]}},
            ["missing", "income"],
        ),
        (
            {"dataframe_split": {"columns": ["age", "city", "income", "zip"], "data": []}},
            ["unknown", "zip"],
        ),
        (
            {"dataframe_split": {"columns": ["age", "city", "income"], "data": [[1, "x"]]}},
            ["row 0"],
        ),
        ({"dataframe_split": {"columns": ["age", "city", "income"], "data": []}}, ["empty"]),
        ({"dataframe_split": [[1, "x", 2.0]]}, ["columns"]),
        ({"dataframe_records": [{**RECORDS[0], "age": 2.5}]}, ["'age'", "2.5"]),
        ({"inputs": {"age": [1], "city": ["x"], "income": [1.0, 2.0]}}, ["'income'", "2 values"]),
    ],
)
def test_invalid_json_is_400(mixed_spec: InputSpec, payload: Any, words: list[str]) -> None:
    error = _error(json.dumps(payload).encode(), "application/json", mixed_spec)
    assert error.status == 400
    assert all(word in error.message for word in words), error.message


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", ["empty", "header"]),
        (b"30,oslo,1.5\n", ["header", "unknown", "30"]),
        (b"age,city\n30,oslo\n", ["header", "missing", "income"]),
        (b"age,city,income\n", ["empty"]),
        (b"age,city,income\n30,oslo\n", ["row 0", "2 fields"]),
        (b"age,city,income\nabc,oslo,1\n", ["'age'", "row 0", "abc"]),
        (b"age,city,income\n1,oslo,1\n2,rome,inf\n", ["'income'", "row 1", "infinity"]),
        (b"age,city,income\n,oslo,1\n", ["'age'"]),
        (b"age,city,income\n\xff,oslo,1\n", ["UTF-8"]),
    ],
)
def test_invalid_csv_is_400(mixed_spec: InputSpec, body: bytes, words: list[str]) -> None:
    error = _error(body, "text/csv", mixed_spec)
    assert error.status == 400
    assert all(word in error.message for word in words), error.message


def test_bad_json_is_400(mixed_spec: InputSpec) -> None:
    error = _error(b'{"instances": [', "application/json", mixed_spec)
    assert error.status == 400 and error.message.startswith("body is not valid JSON: ")
