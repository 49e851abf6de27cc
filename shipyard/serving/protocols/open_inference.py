"""Open Inference Protocol (KServe V2) bodies, JSON and the binary tensor extension.

A request carries either one input per column (shape ``[n]`` or ``[n, 1]``) or a single
``[n, n_columns]`` input in signature column order. With the binary extension the
``Inference-Header-Content-Length`` header gives the JSON part's length; raw little-endian
tensors follow in input order, BYTES elements as a 4-byte little-endian length + bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import RequestError
from shipyard.models.signature import (
    InputSpec,
    assemble,
    check_finite,
    convert_values,
    dump_json,
    empty_batch,
    load_json,
    parse_text,
    show_value,
)

HEADER_LENGTH = "Inference-Header-Content-Length"
_HEADER_KEY = HEADER_LENGTH.lower()
_NUMERIC = {
    "BOOL": "?", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
    "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
    "FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "BF16": "<u2",
}  # fmt: skip
DATATYPES = (*_NUMERIC, "BYTES")
_BY_DTYPE = {np.dtype(code).newbyteorder("="): name for name, code in _NUMERIC.items()}
_BY_DTYPE[np.dtype(np.uint16)] = "UINT16"  # BF16 travels as uint16 bits but is never produced


@dataclass(frozen=True)
class V2Request:
    """A decoded infer request: the input matrix and how the client wants the answer."""

    id: str | None
    matrix: np.ndarray
    binary_outputs: bool  # whether any output is sent binary
    requested_outputs: tuple[str, ...]
    binary: frozenset[str] | None = None  # the outputs sent binary; None: all or none

    def sends_binary(self, output: str) -> bool:
        """Whether ``output`` goes in the binary part of the answer."""
        return self.binary_outputs if self.binary is None else output in self.binary


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The V2 datatype name for a NumPy dtype; strings and objects are BYTES."""
    if dtype.kind in "OUS":
        return "BYTES"
    try:
        return _BY_DTYPE[dtype.newbyteorder("=")]
    except KeyError:
        raise TypeError(f"no Open Inference datatype for {dtype}") from None


def decode_v2(
    body: bytes, headers: Mapping[str, str], spec: InputSpec, *, fast: bool = True
) -> V2Request:
    """Decode a V2 ``/infer`` body (JSON, or JSON + binary tensors) against ``spec``.

    Number tensors for an all-numeric spec are checked as one matrix (``fast``); anything
    else, or anything those checks doubt, column by column, naming the input and column
    of a bad value. Both give the same matrix.
    """
    view = memoryview(body)
    binary = view[len(view) :]
    length = headers.get(_HEADER_KEY)
    if length is None and not hasattr(headers, "raw"):  # Starlette's Headers ignore case
        length = next((v for k, v in headers.items() if k.lower() == _HEADER_KEY), None)
    if length is not None:
        split = _header_length(length, len(view))
        view, binary = view[:split], view[split:]
    payload = load_json(view)
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise RequestError('the body must be a JSON object with an "inputs" array')
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise RequestError('"id" must be a string')
    matrix = _json_number_columns(payload["inputs"], binary, spec) if fast else None
    if matrix is None:  # the inputs, then the outputs, then the inputs' fit to the spec
        tensors = _read_inputs(payload["inputs"], binary)
        binary_outputs, requested, binary_names = _read_outputs(payload)
        matrix = _to_matrix(tensors, spec, fast)
    else:
        binary_outputs, requested, binary_names = _read_outputs(payload)
    return V2Request(request_id, matrix, binary_outputs, requested, binary_names)


def _header_length(given: str, body_length: int) -> int:
    """The JSON part's length from its header: 1 to the body's length, else a 400."""
    text = given.strip()
    if not (0 < len(text) <= 20 and text.isascii() and text.isdigit()):
        raise RequestError(f"{HEADER_LENGTH} must be a byte count, got {_shown(given)}")
    length = int(text)
    if not 0 < length <= body_length:
        raise RequestError(
            f"{HEADER_LENGTH} is {length} but it must be the length of the JSON part: "
            f"1 to {body_length} bytes (the body's length)"
        )
    return length


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37]) + "..."


def select_outputs(outputs: Mapping[str, Any], requested: Sequence[str]) -> dict[str, Any]:
    """Keep the requested outputs (all when none are named); 400 for an unknown name."""
    for name in requested:
        if name not in outputs:
            raise RequestError(f"unknown output '{name}'; the outputs are: {', '.join(outputs)}")
    return {name: outputs[name] for name in requested} if requested else dict(outputs)


def encode_v2(
    model_name: str,
    model_version: str | None,
    request_id: str | None,
    outputs: Mapping[str, Any],
    binary: bool | Container[str],
) -> tuple[bytes, dict[str, str]]:
    """Encode outputs (e.g. ``predict``, ``predict_proba``) as a V2 response body + headers.

    ``binary`` says which outputs go in the binary part: all (True), none (False), or
    the ones named. With any binary output the body is the JSON head, then those
    tensors' raw bytes; the others keep their ``data`` in the head.
    """
    response: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        response["model_version"] = str(model_version)
    if request_id is not None:
        response["id"] = request_id
    tensors, chunks = [], []
    for name, value in outputs.items():
        array = _as_output(value)
        datatype = datatype_of(array.dtype)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary is True or (binary is not False and name in binary):
            raw = _tensor_bytes(array, datatype)
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        elif datatype == "BYTES":
            tensor["data"] = [_text(item) for item in array.ravel().tolist()]
        else:
            tensor["data"] = np.ascontiguousarray(array).reshape(-1)
        tensors.append(tensor)
    response["outputs"] = tensors
    head = dump_json(response)
    if not chunks:
        return head, {}
    headers = {HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"}
    return b"".join([head, *chunks]), headers


def model_metadata(
    name: str,
    versions: Sequence[str | int],
    spec: InputSpec,
    outputs: Mapping[str, tuple[str, Sequence[int]]],
    platform: str = "shipyard",
) -> dict[str, Any]:
    """Model metadata: one ``[-1]`` input per column; ``outputs`` maps name → (datatype, shape)."""
    return {
        "name": name,
        "versions": [str(version) for version in versions],
        "platform": platform,
        "inputs": [
            {"name": column, "datatype": datatype_of(dtype), "shape": [-1]}
            for column, dtype in zip(spec.columns, spec.dtypes, strict=True)
        ],
        "outputs": [
            {"name": output, "datatype": datatype, "shape": list(shape)}
            for output, (datatype, shape) in outputs.items()
        ],
    }


@dataclass(frozen=True)
class _Tensor:
    name: str
    shape: tuple[int, ...]
    values: np.ndarray  # flat, row-major


def _read_inputs(items: list[Any], binary: memoryview) -> list[_Tensor]:
    tensors, offset = [], 0
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise RequestError(f'inputs[{position}] must be an object with a string "name"')
        name, shape, datatype = item["name"], item.get("shape"), item.get("datatype")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise RequestError(f"input '{name}': shape must be an array of non-negative integers")
        if datatype not in DATATYPES:
            raise RequestError(
                f"input '{name}': unknown datatype {datatype!r}; use one of {', '.join(DATATYPES)}"
            )
        count = math.prod(shape)
        parameters = item.get("parameters") or {}
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is not None:
            if "data" in item:
                raise RequestError(f"input '{name}' has both data and binary_data_size")
            if type(size) is not int or size < 0:
                raise RequestError(f"input '{name}': binary_data_size must be a byte count")
            if offset + size > len(binary):
                raise RequestError(
                    f"input '{name}': binary_data_size is {size} bytes but only "
                    f"{len(binary) - offset} bytes of binary data remain; the body is truncated"
                )
            values = _from_binary(binary[offset : offset + size], datatype, shape, name)
            offset += size
        elif "data" in item:
            values = _from_json(item["data"], datatype, shape, name)
        else:
            raise RequestError(f"input '{name}' has neither data nor binary_data_size")
        if len(values) != count:
            raise RequestError(
                f"input '{name}': data has {len(values)} elements but shape {shape} needs {count}"
            )
        tensors.append(_Tensor(name, tuple(shape), values))
    if not tensors:
        raise RequestError('"inputs" is empty: send one input per column or one 2-D input')
    if offset != len(binary):
        raise RequestError(
            f"the body has {len(binary) - offset} bytes of binary data no input declares"
        )
    return tensors


def _from_binary(chunk: memoryview, datatype: str, shape: list[int], name: str) -> np.ndarray:
    if datatype == "BYTES":
        items, position = [], 0
        while position < len(chunk):
            if position + 4 > len(chunk):
                raise RequestError(f"input '{name}': BYTES data ends inside a length prefix")
            (length,) = struct.unpack_from("<I", chunk, position)
            if position + 4 + length > len(chunk):
                raise RequestError(f"input '{name}': a BYTES element runs past binary_data_size")
            items.append(bytes(chunk[position + 4 : position + 4 + length]))
            position += 4 + length
        values = np.empty(len(items), dtype=object)
        values[:] = items
        return values
    dtype = np.dtype(_NUMERIC[datatype])
    expected = math.prod(shape) * dtype.itemsize
    if len(chunk) != expected:
        raise RequestError(
            f"input '{name}': binary_data_size is {len(chunk)} bytes but "
            f"{datatype} of shape {shape} needs {expected}"
        )
    values = np.frombuffer(chunk, dtype=dtype)
    if datatype == "BF16":  # the top half of a float32
        return (values.astype(np.uint32) << 16).view(np.float32)
    return values


def _flatten(data: list[Any], rank: int, name: str) -> list[Any]:
    """Row-major values of ``data``, flat or nested at most ``rank`` deep (a 400 if deeper).

    A loop, not recursion: a client's nesting depth never reaches Python's stack.
    """
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif type(item) is list:
            if len(stack) >= max(rank, 1):
                raise RequestError(
                    f"input '{name}': data is nested deeper than its shape's {rank} dimensions"
                )
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()
_INTEGERS = frozenset((int,))
_NUMBERS = frozenset((int, float))
_EXACT_INTEGER = 2.0**53
_ALLOWED = {  # the JSON value types each datatype takes (bool is not an int here)
    "BYTES": frozenset((str,)),
    "BOOL": frozenset((bool,)),
    **{name: frozenset((int, float)) for name in ("FP16", "FP32", "FP64", "BF16")},
}


def _from_json(data: Any, datatype: str, shape: list[int], name: str) -> np.ndarray:
    if not isinstance(data, list):
        raise RequestError(f"input '{name}': data must be an array")
    flat, kinds = data, set(map(type, data))
    if list in kinds:
        flat = _flatten(data, len(shape), name)
        kinds = set(map(type, flat))
    allowed = _ALLOWED.get(datatype, _INTEGERS)
    if not kinds <= allowed:
        position, item = next((p, i) for p, i in enumerate(flat) if type(i) not in allowed)
        raise RequestError(
            f"input '{name}', element {position}: {show_value(item)} is not {datatype}"
        )
    if datatype == "BYTES":
        return np.array(flat, dtype=object)
    try:
        return np.array(flat, dtype=np.float32 if datatype == "BF16" else _NUMERIC[datatype])
    except OverflowError:
        raise RequestError(f"input '{name}': a value is out of range for {datatype}") from None


def _to_matrix(tensors: list[_Tensor], spec: InputSpec, fast: bool = True) -> np.ndarray:
    width = len(spec.columns)
    names = [tensor.name for tensor in tensors]
    if all(name in spec.column_set for name in names):
        if len(set(names)) != len(names):
            raise RequestError("an input is sent more than once")
        by_name = {tensor.name: tensor for tensor in tensors}
        ordered = []
        for column in spec.columns:  # every shape checked before any is used
            tensor = by_name.get(column)
            if tensor is None:
                raise RequestError(f"missing input for column '{column}'")
            if len(tensor.shape) not in (1, 2) or tensor.shape[1:] not in ((), (1,)):
                raise RequestError(
                    f"input '{column}' has shape {list(tensor.shape)}; use [n] or [n, 1]"
                )
            ordered.append(tensor)
        first = ordered[0]
        for tensor in ordered:
            if tensor.shape[0] != first.shape[0]:
                raise RequestError(
                    f"input '{tensor.name}' has {tensor.shape[0]} rows but input "
                    f"'{first.name}' has {first.shape[0]}"
                )
        matrix = _numeric_columns([tensor.values for tensor in ordered], spec) if fast else None
        if matrix is not None:
            return matrix
        return assemble(
            [_to_column(t.values, i, spec, t.name) for i, t in enumerate(ordered)], spec
        )
    if len(tensors) > 1:
        unknown = next(name for name in names if name not in spec.column_set)
        raise RequestError(
            f"unknown input '{unknown}'; send one input per column "
            f"({', '.join(spec.columns)}) or a single [n, {width}] input"
        )
    tensor = tensors[0]
    if len(tensor.shape) != 2 or tensor.shape[1] != width:
        raise RequestError(
            f"input '{tensor.name}' has shape {list(tensor.shape)}; expected [n, {width}] "
            f"with columns {', '.join(spec.columns)}"
        )
    table = tensor.values.reshape(tensor.shape)
    matrix = _numeric_table(table, spec) if fast else None
    if matrix is not None:
        return matrix
    return assemble([_to_column(table[:, i], i, spec, tensor.name) for i in range(width)], spec)


def _json_number_columns(
    items: list[Any], binary: memoryview, spec: InputSpec
) -> np.ndarray | None:
    """One FP64 or INT64 JSON input per column, as tritonclient sends them, in one pass.

    The common per-column request (flat ``data``, shape ``[n]`` or ``[n, 1]``, no binary
    part) becomes the checked matrix with one ``np.array``; None for anything else, which
    :func:`_read_inputs` and :func:`_to_matrix` then decode (and name what is wrong).
    """
    plan = spec.numeric_plan
    if plan is None or binary or len(items) != len(spec.columns):
        return None
    by_name: dict[str, dict[str, Any]] = {}
    for item in items:
        if type(item) is not dict or type(item.get("name")) is not str or item.get("parameters"):
            return None
        by_name[item["name"]] = item
    if by_name.keys() != spec.column_set:
        return None
    ordered = [by_name[column] for column in spec.columns]
    data = [item.get("data") for item in ordered]
    if type(data[0]) is not list or not data[0]:
        return None
    rows = len(data[0])
    integers = False
    for item, values in zip(ordered, data, strict=True):
        shape, datatype = item.get("shape"), item.get("datatype")
        if type(values) is not list or len(values) != rows or type(shape) is not list:
            return None
        if shape not in ([rows], [rows, 1]) or not _INTEGERS.issuperset(map(type, shape)):
            return None
        if datatype == "INT64":
            integers = True
            if not _INTEGERS.issuperset(map(type, values)):
                return None
        elif datatype != "FP64" or not _NUMBERS.issuperset(map(type, values)):
            return None
    try:
        table = np.array(data, dtype=np.float64).T
    except OverflowError:  # an integer beyond float64
        return None
    if integers and not (np.abs(table) <= _EXACT_INTEGER).all():
        return None  # beyond 2**53 an INT64 value may not survive float64: decode it as INT64
    return plan.matrix(np.ascontiguousarray(table), spec)


def _numeric_columns(columns: list[np.ndarray], spec: InputSpec) -> np.ndarray | None:
    """One number tensor per column as the checked matrix, or None for the per-column path."""
    if spec.numeric_plan is None or not all(_plain_number(c.dtype) for c in columns):
        return None
    if not len(columns[0]):
        raise empty_batch()
    return _numeric_table(np.column_stack(columns), spec)


def _numeric_table(table: np.ndarray, spec: InputSpec) -> np.ndarray | None:
    """A 2-D number tensor as the checked matrix, or None for the per-column path."""
    plan = spec.numeric_plan
    if plan is None or not _plain_number(table.dtype) or not len(table):
        return None
    return plan.matrix(table.astype(np.float64), spec)


def _plain_number(dtype: np.dtype[Any]) -> bool:
    """Floats and integers float64 holds exactly (not bool, not 64-bit unsigned)."""
    return dtype.kind in "fi" or (dtype.kind == "u" and dtype.itemsize < 8)


def _to_column(values: np.ndarray, index: int, spec: InputSpec, source: str) -> np.ndarray:
    column, dtype = spec.columns[index], spec.dtypes[index]
    where = f"input '{source}', column '{column}'"
    if values.dtype.kind == "O":
        texts = [_decode(item, where, row) for row, item in enumerate(values.tolist())]
        if dtype.kind == "O":
            return np.array(texts, dtype=object)
        parsed = [parse_text(text, index, spec, row) for row, text in enumerate(texts)]
        return convert_values(parsed, index, spec)
    if dtype.kind == "O":
        raise RequestError(f"{where} takes strings: send datatype BYTES")
    if values.dtype.kind == "b" and dtype.kind != "b":
        raise RequestError(f"{where} takes numbers, not BOOL")
    if dtype.kind == "f":
        converted = values.astype(dtype)
        check_finite(converted, column, spec.allow_nan[index])
        return converted
    # Integer and boolean columns: a 2-D numeric tensor carries booleans as 0/1.
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise RequestError(f"{where}, row {row}: expected an integer, got {values[row]}")
    low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    limits = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    if low < limits[0] or high > limits[1]:
        raise RequestError(f"{where}: a value is out of range for {dtype}")
    return values.astype(dtype)


def _decode(item: Any, where: str, row: int) -> str:
    if isinstance(item, str):
        return item
    try:
        return bytes(item).decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError(f"{where}, row {row}: BYTES element is not UTF-8 text") from None


def _read_outputs(
    payload: dict[str, Any],
) -> tuple[bool, tuple[str, ...], frozenset[str] | None]:
    """Whether any output is binary, the outputs asked for, and which of them are binary."""
    parameters = payload.get("parameters") or {}
    default = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    outputs = payload.get("outputs")
    if outputs is None:
        return default, (), None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict)
        and isinstance(o.get("name"), str)
        and isinstance(o.get("parameters") or {}, dict)
        for o in outputs
    ):
        raise RequestError('"outputs" must be an array of {"name", "parameters"} objects')
    if not outputs:
        return default, (), None
    flags = [(o.get("parameters") or {}).get("binary_data", default) is True for o in outputs]
    names = tuple(o["name"] for o in outputs)
    binary = frozenset(name for name, flag in zip(names, flags, strict=True) if flag)
    return any(flags), names, binary


def _as_output(value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind == "O" and array.size:
        inferred = np.array(array.tolist())
        if inferred.dtype.kind in "biuf" and inferred.shape == array.shape:
            return inferred
    return array


def _text(item: Any) -> str:
    return item.decode("utf-8", errors="replace") if isinstance(item, bytes) else str(item)


def _tensor_bytes(array: np.ndarray, datatype: str) -> bytes:
    if datatype != "BYTES":
        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    parts = []
    for item in array.ravel().tolist():
        raw = item if isinstance(item, bytes) else str(item).encode("utf-8")
        parts += [struct.pack("<I", len(raw)), raw]
    return b"".join(parts)
