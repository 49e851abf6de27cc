"""MLflow scoring-server bodies for ``POST /invocations``, decoded without pandas.

``application/json`` carries exactly one of ``dataframe_split``, ``dataframe_records``,
``instances`` or ``inputs`` (plus ``params``, accepted and ignored); ``text/csv`` carries a
header row naming the columns. The answer is ``{"predictions": [...]}``.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from shipyard.errors import RequestError
from shipyard.models.signature import (
    InputSpec,
    decode_columns,
    decode_rows,
    dump_json,
    load_json,
    parse_text,
)

DATA_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_ALLOWED = ", ".join(DATA_KEYS)


def decode_invocations(body: bytes, content_type: str | None, spec: InputSpec) -> np.ndarray:
    """Decode an ``/invocations`` body of the given content type into the input matrix."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        return _decode_json(load_json(body), spec)
    if media == "text/csv":
        return _decode_csv(body, spec)
    raise RequestError(
        f"unsupported content type '{content_type or ''}': send application/json or text/csv",
        status=415,
    )


def encode_invocations(predictions: Any) -> bytes:
    """Encode model output as MLflow does: ``{"predictions": [...]}``."""
    return dump_json({"predictions": predictions})


def _decode_json(payload: Any, spec: InputSpec) -> np.ndarray:
    if not isinstance(payload, dict):
        raise RequestError(f"the body must be a JSON object with one of: {_ALLOWED}")
    present = [key for key in DATA_KEYS if key in payload]
    unknown = [key for key in payload if key not in DATA_KEYS and key != "params"]
    if len(present) != 1 or unknown:
        found = ", ".join(present + unknown) or "none"
        raise RequestError(
            f"the body must have exactly one of: {_ALLOWED} (plus optional params); found: {found}"
        )
    if "params" in payload and not isinstance(payload["params"], dict | None):
        raise RequestError('"params" must be a JSON object')
    key = present[0]
    data = payload[key]
    if key == "dataframe_split":
        return _decode_split(data, spec)
    if key == "inputs" and isinstance(data, dict):
        return decode_columns(data, spec)
    if not isinstance(data, list):
        raise RequestError(f'"{key}" must be an array of rows')
    return decode_rows(data, spec)


def _decode_split(split: Any, spec: InputSpec) -> np.ndarray:
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise RequestError('"dataframe_split" must be an object with "columns" and "data"')
    data = split.get("data")
    if not isinstance(data, list):
        raise RequestError('"dataframe_split.data" must be an array of rows')
    index = split.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(data)):
        raise RequestError('"dataframe_split.index" must be an array as long as "data"')
    order = _column_order(split["columns"], spec, '"dataframe_split.columns"')
    width = len(order)
    for row, values in enumerate(data):
        if not isinstance(values, list) or len(values) != width:
            raise RequestError(
                f'"dataframe_split.data" row {row} must be an array of {width} values'
            )
    if order == list(range(width)):
        return decode_rows(data, spec)
    return decode_rows([[values[k] for k in order] for values in data], spec)


def _column_order(names: list[Any], spec: InputSpec, where: str) -> list[int]:
    """Where each spec column sits in ``names``; a 400 for missing, unknown or repeated ones."""
    for name in names:
        if not isinstance(name, str):
            raise RequestError(f"{where} must hold column names as strings, got {name!r}")
        if name not in spec.column_set:
            raise RequestError(
                f"{where} has unknown column {name!r}; "
                f"the model's columns are: {', '.join(spec.columns)}"
            )
    if len(set(names)) != len(names):
        raise RequestError(f"{where} names a column more than once")
    for name in spec.columns:
        if name not in names:
            raise RequestError(f"{where} is missing column '{name}'")
    return [names.index(name) for name in spec.columns]


def _decode_csv(body: bytes, spec: InputSpec) -> np.ndarray:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError(f"the CSV body is not UTF-8: {exc}") from None
    try:
        records = [record for record in csv.reader(io.StringIO(text)) if record]
    except csv.Error as exc:
        raise RequestError(f"the CSV body is not valid CSV: {exc}") from None
    if not records:
        raise RequestError("the CSV body is empty: send a header row naming the columns")
    header = [name.strip() for name in records[0]]
    order = _column_order(header, spec, "the CSV header row")
    width = len(header)
    columns: list[list[Any]] = [[] for _ in spec.columns]
    for row, record in enumerate(records[1:]):
        if len(record) != width:
            raise RequestError(f"CSV row {row} has {len(record)} fields, expected {width}")
        for index, position in enumerate(order):
            columns[index].append(parse_text(record[position], index, spec, row))
    return decode_columns(dict(zip(spec.columns, columns, strict=True)), spec)
