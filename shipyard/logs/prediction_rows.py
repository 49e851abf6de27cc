"""Prediction batches in the journal and in Parquet: the codec and the columnar conversion.

A batch's journal frame (:func:`encode_batch`) is its layout and request as JSON and its
arrays as raw NumPy bytes. The roll reads runs of frames of one layout and day as one
:class:`Requests` (:func:`decode_frames`: one ``frombuffer`` for the run's matrices) and
turns them into Arrow column by column (:func:`requests_to_table`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from shipyard.jsonable import to_json
from shipyard.logs.journal import frame
from shipyard.logs.kinds import journal_header
from shipyard.logs.records import (
    PREDICTION_SCHEMA,
    PredictionBatch,
    PredictionRecord,
    prediction_schema,
)
from shipyard.moments import as_utc

__all__ = [
    "BATCH_HEADER",
    "Requests",
    "decode_batch",
    "decode_frames",
    "encode_batch",
    "records_to_table",
    "requests_of",
    "requests_to_table",
]

_RUN_REQUESTS = 1024  # requests per run at most: one conversion slice of the roll

BATCH_HEADER = b'{"_type":"PredictionBatch"'
# A batch frame's header is its layout (JSON, the same for every request of one model
# version, role and input layout: encoded once) and, after a newline, the request (a JSON
# list, these positions). The payload is the matrix's bytes, then the probabilities'.
_ID, _TIME, _ROWS, _LABELS, _LABELS_DTYPE, _LATENCY, _STATUS, _FIRST, _WHOLE = range(9)
_SHAPE, _MATRIX = 9, 10  # probabilities' shape; an object matrix as JSON (else null)
_LAYOUTS: dict[tuple[Any, ...], tuple[tuple[str, ...], bytes]] = {}


def _layout_of(batch: PredictionBatch) -> bytes:
    key = (batch.model, batch.version, batch.role, id(batch.columns), batch.matrix.dtype)
    found = _LAYOUTS.get(key)
    if found is not None and found[0] is batch.columns:
        return found[1]
    dtype = batch.matrix.dtype.str
    layout = journal_header(
        {
            "_type": "PredictionBatch",
            "model": batch.model,
            "version": batch.version,
            "role": batch.role,
            "columns": batch.columns,
            "dtype": dtype,
        }
    )
    if len(_LAYOUTS) >= 256:
        _LAYOUTS.clear()
    _LAYOUTS[key] = (batch.columns, layout)
    return layout


def encode_batch(batch: PredictionBatch) -> bytes:
    """One journal frame: layout and request as JSON, the arrays as the bytes NumPy holds.

    An object matrix (text inputs) goes in the header as JSON instead.
    """
    matrix = batch.matrix
    labels = batch.labels
    text = matrix.dtype.kind == "O"
    payload = b"" if text else matrix.tobytes()
    shape = None
    if batch.probabilities is not None:
        probabilities = np.asarray(batch.probabilities, dtype=np.float64)
        shape = probabilities.shape
        payload += probabilities.tobytes()
    request = [
        batch.request_id,
        batch.time,
        len(matrix),
        labels,
        None,  # was the labels' dtype: JSON keeps what the output column needs
        batch.latency_ms,
        batch.status,
        batch.first_row,
        batch.request_rows,
        shape,
        matrix if text else None,
    ]
    dumped = journal_header(request, naive_utc=True)
    return frame(_layout_of(batch) + b"\n" + dumped, payload)


def decode_batch(header: bytes, payload: memoryview) -> PredictionBatch:
    layout, _, request = header.partition(b"\n")
    return _batch_of(orjson.loads(layout), orjson.loads(request), payload)


def _batch_of(layout: dict[str, Any], request: list[Any], payload: memoryview) -> PredictionBatch:
    columns = tuple(layout["columns"])
    rows, width = request[_ROWS], len(columns)
    dtype = np.dtype(layout["dtype"])
    used = 0
    if request[_MATRIX] is not None:
        matrix = _matrix(request[_MATRIX], dtype, width)
    else:
        used = rows * width * dtype.itemsize
        matrix = np.frombuffer(payload[:used], dtype).reshape(rows, width)
    shape = request[_SHAPE]
    probabilities = None
    if shape is not None:
        probabilities = np.frombuffer(payload[used:], np.float64).reshape(shape)
    labels = request[_LABELS]
    return PredictionBatch(
        request_id=request[_ID],
        time=datetime.fromisoformat(request[_TIME]),
        model=layout["model"],
        version=layout["version"],
        role=layout["role"],
        columns=columns,
        matrix=matrix,
        labels=None if labels is None else _array(labels),
        probabilities=probabilities,
        latency_ms=request[_LATENCY],
        status=request[_STATUS],
        first_row=request[_FIRST],
        request_rows=request[_WHOLE],
    )


@dataclass(frozen=True, slots=True)
class Requests:
    """Consecutive journaled requests of one layout and day, decoded column by column.

    What the roll converts instead of one :class:`PredictionBatch` per request: the
    matrices and probabilities of all of them are one array each, read from the frames'
    payloads in one go.
    """

    model: str
    version: str
    role: str
    columns: tuple[str, ...]
    time: datetime  # the first request's: the day partitions the file
    requests: list[list[Any]]
    matrix: np.ndarray
    probabilities: np.ndarray | None  # every request's, stacked, when all have the same width

    @property
    def rows(self) -> int:
        """Rows these requests become in the log."""
        return len(self.matrix)


class _Run:
    """Frames being gathered into one :class:`Requests`."""

    def __init__(self, layout_bytes: bytes, day: str, layout: dict[str, Any]) -> None:
        self.key = (layout_bytes, day)
        self.layout = layout
        self.requests: list[list[Any]] = []
        self.payloads: list[memoryview] = []
        self.rows = 0

    def add(self, request: list[Any], payload: memoryview) -> None:
        self.requests.append(request)
        self.payloads.append(payload)
        self.rows += request[_ROWS]

    def done(self) -> Requests:
        layout, requests = self.layout, self.requests
        columns = tuple(layout["columns"])
        dtype = np.dtype(layout["dtype"])
        row_bytes = len(columns) * dtype.itemsize
        cuts = [request[_ROWS] * row_bytes for request in requests]
        rows = sum(request[_ROWS] for request in requests)
        data = b"".join(p[:cut] for p, cut in zip(self.payloads, cuts, strict=True))
        matrix = np.frombuffer(data, dtype).reshape(rows, len(columns))
        width, present = _common_width([request[_SHAPE] for request in requests])
        probabilities = None
        if width is not None:
            values = b"".join(p[cut:] for p, cut in zip(self.payloads, cuts, strict=True))
            probabilities = np.frombuffer(values, np.float64).reshape(rows, width)
        elif present:  # mixed or odd shapes: each request's own, as a batch would
            for request, payload, cut in zip(requests, self.payloads, cuts, strict=True):
                request.append(None if request[_SHAPE] is None else payload[cut:])
        return Requests(
            model=layout["model"],
            version=layout["version"],
            role=layout["role"],
            columns=columns,
            time=datetime.fromisoformat(requests[0][_TIME]),
            requests=requests,
            matrix=matrix,
            probabilities=probabilities,
        )


def _common_width(shapes: list[Any]) -> tuple[int | None, bool]:
    """The probability width every request shares (each 2-D), and whether any has some."""
    widths = {None if shape is None or len(shape) != 2 else int(shape[1]) for shape in shapes}
    present = any(shape is not None for shape in shapes)
    if len(widths) == 1 and None not in widths:
        return next(iter(widths)), present
    return None, present


def decode_frames(
    frames: Iterable[tuple[bytes, memoryview]],
    single: Callable[[bytes, memoryview], Any],
    max_rows: int,
) -> Iterator[Any]:
    """The records of a segment's frames: runs of batches as :class:`Requests`, others
    by ``single``; an Exception in place of a frame that cannot be read."""
    run: _Run | None = None
    layouts: dict[bytes, dict[str, Any]] = {}
    for header, payload in frames:
        try:
            if not header.startswith(BATCH_HEADER):
                record = single(header, payload)
            else:
                layout_bytes, _, request_bytes = header.partition(b"\n")
                request = orjson.loads(request_bytes)
                layout = layouts.get(layout_bytes)
                if layout is None:
                    layout = layouts[layout_bytes] = orjson.loads(layout_bytes)
                if request[_MATRIX] is None and np.dtype(layout["dtype"]).kind != "O":
                    key = (layout_bytes, request[_TIME][:10])
                    full = run is not None and (
                        len(run.requests) >= _RUN_REQUESTS or run.rows + request[_ROWS] > max_rows
                    )
                    if run is not None and (run.key != key or full):
                        yield run.done()
                        run = None
                    if run is None:
                        run = _Run(layout_bytes, key[1], layout)
                    run.add(request, payload)
                    continue
                record = _batch_of(layout, request, payload)
        except Exception as exc:
            yield exc
            continue
        if run is not None:
            yield run.done()
            run = None
        yield record
    if run is not None:
        yield run.done()


def _matrix(rows: list[Any], dtype: np.dtype[Any], width: int) -> np.ndarray:
    """The matrix back from its JSON rows (JSON null is NaN in a float matrix)."""
    if not rows:
        return np.empty((0, width), dtype)
    if dtype.kind != "O":
        return np.asarray(rows, dtype=dtype).reshape(len(rows), width)
    matrix = np.empty((len(rows), width), dtype=object)
    for i, row in enumerate(rows):  # cells may be lists: never let NumPy add a dimension
        for j, value in enumerate(row):
            matrix[i, j] = value
    return matrix


def _array(values: list[Any]) -> np.ndarray:
    """Labels back from JSON: numbers as a numeric array, anything else as objects."""
    if all(isinstance(value, (int, float)) for value in values):
        return np.asarray(values)
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return array


def records_to_table(records: Sequence[PredictionRecord]) -> pa.Table:
    """Single predictions row by row (each ``inputs`` a dict)."""
    inputs = pa.array([_plain_inputs(r.inputs) for r in records])
    rows = {
        "request_id": [str(r.request_id) for r in records],
        "time": [r.time for r in records],
        "model": [str(r.model) for r in records],
        "version": [str(r.version) for r in records],
        "role": [str(r.role) for r in records],
        "inputs": inputs,
        "output": [to_json(r.output) for r in records],
        "probabilities": [_probabilities(r.probabilities) for r in records],
        "latency_ms": [float(r.latency_ms) for r in records],
        "status": [str(r.status) for r in records],
    }
    return pa.Table.from_pydict(rows, schema=prediction_schema(inputs.type))


def requests_of(batches: list[PredictionBatch]) -> Requests:
    """Batches of one layout as :class:`Requests` (the roll's unit)."""
    first = batches[0]
    requests = []
    stacked = None
    width, _ = _common_width(
        [None if b.probabilities is None else np.shape(b.probabilities) for b in batches]
    )
    same = width is not None
    for batch in batches:
        labels = batch.labels
        request = [
            batch.request_id,
            batch.time,
            batch.rows,
            None if labels is None else labels.tolist(),
            None,
            batch.latency_ms,
            batch.status,
            batch.first_row,
            batch.request_rows,
            None if batch.probabilities is None else np.shape(batch.probabilities),
            None,
        ]
        if not same:
            request.append(batch.probabilities)
        requests.append(request)
    if same:
        stacked = np.concatenate([np.asarray(b.probabilities, np.float64) for b in batches])
    return Requests(
        model=first.model,
        version=first.version,
        role=first.role,
        columns=first.columns,
        time=first.time,
        requests=requests,
        matrix=np.concatenate([batch.matrix for batch in batches]),
        probabilities=stacked,
    )


def requests_to_table(group: Requests) -> pa.Table:
    """Requests sharing one input layout, column by column: NumPy in, Arrow out."""
    requests = group.requests
    sizes = [request[_ROWS] for request in requests]
    total = len(group.matrix)
    matrix, columns = group.matrix, group.columns
    if total:
        fields = [_input_column(matrix[:, j]) for j in range(len(columns))]
        inputs = pa.StructArray.from_arrays(fields, names=list(columns))
    else:
        inputs = pa.array([], pa.struct([]))
    single = total == len(requests)  # the common case: one row per request
    request_ids: list[str] = []
    outputs: list[str] = []
    for request, size in zip(requests, sizes, strict=True):
        if (request[_WHOLE] or size) == 1:
            request_ids.append(str(request[_ID]))
        else:
            first = request[_FIRST]
            request_ids.extend(f"{request[_ID]}:{first + i}" for i in range(size))
        labels = request[_LABELS]
        if labels is None:
            outputs.extend(["null"] * size)
        else:
            outputs.extend(to_json(label) for label in labels)
    if group.probabilities is not None:
        width = group.probabilities.shape[1]
        offsets = pa.array(np.arange(0, (total + 1) * width, width, dtype=np.int32))
        probabilities = pa.ListArray.from_arrays(offsets, pa.array(group.probabilities.ravel()))
    else:
        rows: list[Any] = []
        for request, size in zip(requests, sizes, strict=True):
            own = request[_MATRIX + 1] if len(request) > _MATRIX + 1 else None
            if own is None:
                rows.extend([None] * size)
            elif isinstance(own, memoryview):
                rows.extend(np.frombuffer(own, np.float64).reshape(request[_SHAPE]).tolist())
            else:
                rows.extend(np.asarray(own, dtype=np.float64).tolist())
        probabilities = pa.array(rows, pa.list_(pa.float64()))

    def repeated(values: pa.Array) -> pa.Array:
        if single:
            return values
        return values.take(pa.array(np.repeat(np.arange(len(sizes)), sizes)))

    def constant(value: str) -> pa.Array:
        return pa.array(np.full(total, str(value), dtype=object), pa.string())

    latencies = [
        float(r[_LATENCY]) / max(r[_WHOLE] or n, 1) for r, n in zip(requests, sizes, strict=True)
    ]
    columns_out = {
        "request_id": pa.array(request_ids, pa.string()),
        "time": repeated(_times([request[_TIME] for request in requests])),
        "model": constant(group.model),
        "version": constant(group.version),
        "role": constant(group.role),
        "inputs": inputs,
        "output": pa.array(outputs, pa.string()),
        "probabilities": probabilities,
        "latency_ms": repeated(pa.array(latencies, pa.float64())),
        "status": repeated(pa.array([str(r[_STATUS]) for r in requests], pa.string())),
    }
    return pa.Table.from_pydict(columns_out, schema=prediction_schema(inputs.type))


_TIME_TYPE = PREDICTION_SCHEMA.field("time").type


def _times(values: list[Any]) -> pa.Array:
    """Request times (ISO text from the journal, or datetimes) as UTC timestamps."""
    if values and isinstance(values[0], str):
        try:
            return pa.array(values, pa.string()).cast(_TIME_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = [as_utc(datetime.fromisoformat(value)) for value in values]
    return pa.array(values, _TIME_TYPE)


def _input_column(values: np.ndarray) -> pa.Array:
    """One input column as a typed Arrow array (text columns: strings or their JSON)."""
    if values.dtype.kind in "fiub":
        return pa.array(values)
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column: keep as text
        return pa.array([None if v is None else to_json(v) for v in values.tolist()], pa.string())


def _plain_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v.tolist() if hasattr(v, "tolist") else v for k, v in inputs.items()}


def _probabilities(values: Any) -> list[float] | None:
    return None if values is None else [float(value) for value in values]
