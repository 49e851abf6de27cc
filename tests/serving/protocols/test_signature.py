"""InputSpec construction and the shared row decoder."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.errors import ShipyardError
from shipyard.serving import protocols
from shipyard.serving.protocols import (
    InputSpec,
    RequestError,
    check_size,
    decode_rows,
    decode_v2,
)


def _error(call: Any, *args: Any) -> RequestError:
    with pytest.raises(RequestError) as info:
        call(*args)
    return info.value


def test_public_surface_exists() -> None:
    assert protocols.__all__ == sorted(protocols.__all__)
    assert all(hasattr(protocols, name) for name in protocols.__all__)


@pytest.mark.filterwarnings("ignore:Hint. Inferred schema contains integer")
def test_spec_from_real_mlflow_signature() -> None:
    from mlflow.models import infer_signature

    frame = pd.DataFrame({"age": [30, 40], "income": [1.5, 2.5], "city": ["paris", "oslo"]})
    spec = InputSpec.from_signature(infer_signature(frame))
    assert spec.columns == ("age", "income", "city")
    assert [d.kind for d in spec.dtypes] == ["i", "f", "O"]
    assert spec.allow_nan == (False, True, False)
    assert spec.matrix_dtype == np.dtype(object)
    matrix = decode_rows([{"city": "rome", "income": 3.0, "age": 50}], spec)
    assert matrix.tolist() == [[50, 3.0, "rome"]]


def test_tensor_signature_is_not_supported() -> None:
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype("float64"), (-1, 3))]))
    with pytest.raises(NotImplementedError, match="tensor-based"):
        InputSpec.from_signature(signature)


def test_from_columns_uses_mlflow_type_names(numeric_spec: InputSpec) -> None:
    spec = InputSpec.from_columns([("a", "float"), ("b", "integer"), ("c", "float64")])
    assert spec.dtypes == (np.dtype("float32"), np.dtype("int32"), np.dtype("float64"))
    assert numeric_spec.matrix_dtype == np.dtype(np.float64)
    with pytest.raises(ValueError, match="repeat"):
        InputSpec.from_columns([("a", "double"), ("a", "long")])


def test_rows_as_objects_and_arrays_give_the_same_matrix(numeric_spec: InputSpec) -> None:
    records = [
        {"member": True, "income": 2.5, "age": 3},
        {"age": 4.0, "income": None, "member": False},
    ]
    arrays = [[3, 2.5, True], [4, None, False]]
    expected = np.array([[3, 2.5, 1], [4, np.nan, 0]])
    for rows in (records, arrays):
        matrix = decode_rows(rows, numeric_spec)
        assert matrix.dtype == np.float64
        np.testing.assert_array_equal(matrix, expected)


def test_mixed_columns_keep_order_in_an_object_matrix(mixed_spec: InputSpec) -> None:
    matrix = decode_rows([{"income": 1.0, "city": "oslo", "age": 7}], mixed_spec)
    assert matrix.dtype == np.dtype(object)
    assert matrix.tolist() == [[7, "oslo", 1.0]]


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([], ["empty"]),
        ([{"age": 1, "income": 1.0}], ["row 0", "missing", "member"]),
        ([{"age": 1, "income": 1.0, "member": True, "x": 1}], ["unknown", "'x'"]),
        ([[1, 1.0, True], [1, 1.0]], ["row 1", "2 values", "expected 3"]),
        ([{"age": "1", "income": 1.0, "member": True}], ["'age'", "row 0", "integer"]),
        ([[1, 1.0, True], [2.5, 1.0, True]], ["'age'", "row 1", "2.5"]),
        ([[None, 1.0, True]], ["'age'", "None"]),
        ([[1, True, True]], ["'income'", "number"]),
        ([[1, "1.0", True]], ["'income'", "number"]),
        ([[1, 1.0, 1]], ["'member'", "true or false"]),
        ([[2**70, 1.0, True]], ["'age'", "out of range"]),
        ([{"age": 1, "income": 1.0, "member": True}, [1, 1.0, True]], ["row 1", "object"]),
        ([3], ["row 0"]),
        ({"age": 1}, ["array"]),
    ],
)
def test_invalid_rows_are_400_naming_the_field(
    numeric_spec: InputSpec, rows: Any, words: list[str]
) -> None:
    error = _error(decode_rows, rows, numeric_spec)
    assert error.status == 400
    assert all(word in error.message for word in words), error.message


def test_nan_and_infinity_rules() -> None:
    spec = InputSpec(("x", "y"), (np.dtype("float64"),) * 2, (True, False))
    assert np.isnan(decode_rows([[float("nan"), 1.0]], spec)[0, 0])
    assert "NaN" in _error(decode_rows, [[1.0, None]], spec).message
    assert "NaN" in _error(decode_rows, [[1.0, float("nan")]], spec).message
    error = _error(decode_rows, [[1.0, 1.0], [float("inf"), 1.0]], spec)
    assert "infinity" in error.message and "'x'" in error.message and "row 1" in error.message


def test_request_error_maps_status() -> None:
    error = RequestError("column 'x' is missing")
    assert isinstance(error, ShipyardError) and error.http_status == 400
    check_size(None, 10)
    check_size(10, 10)
    too_big = _error(check_size, 11, 10)
    assert too_big.status == 413 and too_big.http_status == 413


def test_decoding_does_not_import_pandas() -> None:
    script = """
import sys
from shipyard.serving.protocols import InputSpec, decode_v1, decode_v2, decode_invocations
spec = InputSpec.from_columns([("a", "long"), ("b", "double"), ("c", "string")])
decode_v1(b'{"instances": [[1, 2.0, "x"]]}', spec)
records = b'{"dataframe_records": [{"a": 1, "b": 2.0, "c": "x"}]}'
decode_invocations(records, "application/json", spec)
decode_invocations(b'a,b,c\\n1,2.0,x\\n', "text/csv", spec)
body = b'{"inputs": [{"name": "t", "shape": [1, 3], "datatype": "BYTES", "data": ["1", "2", "x"]}]}'
decode_v2(body, {}, spec)
assert "pandas" not in sys.modules, "pandas was imported"
assert "mlflow" not in sys.modules, "mlflow was imported"
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# The one-pass decode of all-numeric inputs against the per-column path: for any spec and
# any values, both give the same matrix (bit for bit) or the same error.

_COLUMN_TYPES = ["float64", "float32", "int64", "int32", "int16", "uint8", "bool", "string"]
_CELLS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-300, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e6, 1e6).map(float),
    st.sampled_from([0.0, -0.0, 1.0, 2.0**53, 2.0**53 + 2, 255.0, 256.0, 3.4e38, 3.5e38]),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def _specs(draw: st.DrawFn) -> InputSpec:
    types = draw(st.lists(st.sampled_from(_COLUMN_TYPES), min_size=1, max_size=4))
    spec = InputSpec.from_columns([(f"c{i}", kind) for i, kind in enumerate(types)])
    max_abs = draw(st.sampled_from([None, 1e6, float(np.finfo(np.float32).max)]))
    return InputSpec(spec.columns, spec.dtypes, spec.allow_nan, max_abs)


@st.composite
def _rows_for(draw: st.DrawFn, spec: InputSpec) -> list[Any]:
    width = len(spec.columns)
    count = draw(st.integers(1, 4))
    numeric = draw(st.booleans())  # mostly plain numbers, as clients send
    cells = st.one_of(st.integers(-(2**60), 2**60), st.floats(-1e300, 1e300)) if numeric else _CELLS
    rows: list[Any] = [
        draw(st.lists(cells, min_size=width, max_size=width + draw(st.integers(0, 1))))
        for _ in range(count)
    ]
    if draw(st.booleans()):
        rows = [dict(zip(spec.columns, row, strict=False)) for row in rows]
    return rows


def _outcome(decode: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        matrix = decode(*args, **kwargs)
    except RequestError as error:
        return "error", (error.http_status, error.message)
    if matrix.dtype.kind == "O":
        return "matrix", (matrix.dtype.str, matrix.shape, matrix.tolist())
    return "matrix", (matrix.dtype.str, matrix.shape, matrix.tobytes())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_and_per_column_row_decoding_agree(data: st.DataObject) -> None:
    spec = data.draw(_specs())
    rows = data.draw(_rows_for(spec))
    with np.errstate(all="ignore"):  # the per-column path may warn on float32 overflow
        fast = _outcome(decode_rows, rows, spec)
        slow = _outcome(decode_rows, rows, spec, fast=False)
    assert fast == slow


_TENSOR_TYPES = {
    "FP64": st.floats(-1e300, 1e300),
    "FP32": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "INT32": st.integers(-(2**31), 2**31 - 1),
    "UINT8": st.integers(0, 255),
    "BOOL": st.booleans(),
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_and_per_column_tensor_decoding_agree(data: st.DataObject) -> None:
    spec = data.draw(_specs())
    width, rows = len(spec.columns), data.draw(st.integers(0, 3))
    if data.draw(st.booleans()):  # one [n, width] tensor
        datatype = data.draw(st.sampled_from(sorted(_TENSOR_TYPES)))
        values = data.draw(
            st.lists(_TENSOR_TYPES[datatype], min_size=rows * width, max_size=rows * width)
        )
        inputs = [{"name": "x", "datatype": datatype, "shape": [rows, width], "data": values}]
    else:  # one [n] or [n, 1] tensor per column; often all FP64/INT64, as tritonclient sends
        usual = data.draw(st.booleans())
        datatypes = ["FP64", "INT64"] if usual else sorted(_TENSOR_TYPES)
        inputs = []
        for column in spec.columns:
            datatype = data.draw(st.sampled_from(datatypes))
            cells = _TENSOR_TYPES[datatype] if data.draw(st.integers(0, 4)) else _CELLS
            values = data.draw(st.lists(cells, min_size=rows, max_size=rows))
            shape = data.draw(st.sampled_from([[rows], [rows, 1], [rows + 1], [True] * rows]))
            inputs.append({"name": column, "datatype": datatype, "shape": shape, "data": values})
    body = json.dumps({"inputs": inputs}).encode()

    def matrix(*args: Any, **kwargs: Any) -> np.ndarray:
        return decode_v2(*args, **kwargs).matrix

    with np.errstate(all="ignore"):
        fast = _outcome(matrix, body, {}, spec)
        slow = _outcome(matrix, body, {}, spec, fast=False)
    assert fast == slow
