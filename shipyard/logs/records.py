"""The records the logs hold, and their Parquet schemas.

:class:`PredictionBatch` is what the server logs per request (its input matrix and
outputs as they are), :class:`PredictionRecord` one prediction row by row,
:class:`LabelRecord` a label. The writer (:mod:`shipyard.logs.writer`) re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = [
    "LABEL_SCHEMA",
    "PREDICTION_SCHEMA",
    "LabelRecord",
    "PredictionBatch",
    "PredictionRecord",
    "prediction_schema",
]

_JSON = {b"encoding": b"json"}

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("version", pa.string()),
        pa.field("role", pa.string()),
        pa.field("inputs", pa.struct([])),  # one field per model input; see prediction_schema
        pa.field("output", pa.string(), metadata=_JSON),
        pa.field("probabilities", pa.list_(pa.float64())),
        pa.field("latency_ms", pa.float64()),
        pa.field("status", pa.string()),
    ]
)
"""Columns of the prediction log, in file order; each file's ``inputs`` has its fields."""


def prediction_schema(inputs: pa.DataType) -> pa.Schema:
    """The prediction-log schema with ``inputs`` of the given struct type."""
    index = PREDICTION_SCHEMA.get_field_index("inputs")
    return PREDICTION_SCHEMA.set(index, pa.field("inputs", inputs))


LABEL_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("time", pa.timestamp("us", tz="UTC")),
        pa.field("model", pa.string()),
        pa.field("label", pa.string(), metadata=_JSON),
        pa.field("sender", pa.string()),
        pa.field("token_id", pa.string()),
        pa.field("received_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""Columns of the label log, in file order: the label, then who sent it and when.

``sender`` is the principal's name ("anonymous" when the server does not
authenticate), ``token_id`` the public id of the token it used, ``received_at`` the
server's clock when the label was accepted (``time`` is when the label applies: the same
for feedback, maybe earlier for an ingested file). Files written before these columns
existed read them as null.
"""


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One prediction as served: ``role`` is "live" or "shadow", ``status`` "ok" or "error"."""

    request_id: str
    time: datetime
    model: str
    version: str
    role: str
    inputs: dict[str, Any]
    output: Any
    probabilities: list[float] | None
    latency_ms: float
    status: str


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """One request's predictions: one queue item on the request path, rows in the file.

    The server logs this instead of one :class:`PredictionRecord` per row, so the request
    path does no per-row work; the writer thread expands it. The rows of a multi-row
    request get request ids ``<id>:<row>`` and share the request's latency equally.
    ``labels`` and ``probabilities`` are ``None`` when the prediction failed.

    A chunk of a large request (as the journal holds it) says where it starts in the
    request (``first_row``) and how many rows the whole request has (``request_rows``;
    0 for a batch that is the whole request).
    """

    request_id: str
    time: datetime
    model: str
    version: str
    role: str
    columns: tuple[str, ...]
    matrix: np.ndarray
    labels: np.ndarray | None
    probabilities: np.ndarray | None
    latency_ms: float
    status: str
    first_row: int = 0
    request_rows: int = 0

    @property
    def rows(self) -> int:
        """Rows this batch becomes in the log."""
        return len(self.matrix)

    def chunks(self, size: int) -> list[PredictionBatch]:
        """This request in pieces of at most ``size`` rows (itself if it is that small)."""
        total = self.rows
        if total <= size:
            return [self]
        whole = self.request_rows or total
        return [
            PredictionBatch(
                request_id=self.request_id,
                time=self.time,
                model=self.model,
                version=self.version,
                role=self.role,
                columns=self.columns,
                matrix=self.matrix[start : start + size],
                labels=None if self.labels is None else self.labels[start : start + size],
                probabilities=(
                    None if self.probabilities is None else self.probabilities[start : start + size]
                ),
                latency_ms=self.latency_ms,
                status=self.status,
                first_row=self.first_row + start,
                request_rows=whole,
            )
            for start in range(0, total, size)
        ]


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """The ground truth for an earlier prediction, joined to it by ``request_id``.

    ``request_id`` is as the prediction log keeps it (in its sender's namespace, see
    :func:`shipyard.serving.request.namespaced`). ``sender``, ``token_id`` and
    ``received_at`` say who sent the label and when the server took it (``time``
    when not given).
    """

    request_id: str
    time: datetime
    model: str
    label: Any
    sender: str = "anonymous"
    token_id: str | None = None
    received_at: datetime | None = None
