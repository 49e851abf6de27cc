"""The trace log: one row per span of an LLM call, in the same Parquet log machinery.

Registered as the log kind ``traces``, so :class:`~shipyard.logs.writer.PredictionLogWriter`
(``kind="traces"``) journals and rolls it and :func:`~shipyard.logs.reader.query_log`
(``kind="traces"``) and ``shipyard logs query --kind traces`` read it back::

    <root>/traces/model=<name>/date=YYYY-MM-DD/part-….parquet

A call is a trace (``trace_id``, 32 hex) of spans (``span_id``, 16 hex; the root span has
no ``parent_span_id``): the gateway (``CHAIN``), the cache lookup (``RETRIEVER``), the
provider call (``LLM``), the guardrails (``GUARDRAIL``). ``kind`` is the OpenInference
span kind. Token counts and cost are carried by the span that spent them (the provider
call), the cache result by the span that looked it up, so summing a trace's spans counts
each once. ``input`` and ``output`` are already masked (:mod:`shipyard.llm.traces` masks
them per the PII policy before a record exists). ``attributes`` is the JSON text of the
span's further OpenInference attributes, those without a column of their own.

Records are built by :class:`shipyard.llm.traces.Trace`; this module holds only the
record and its schema, so the logs layer needs nothing from the LLM one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import pyarrow as pa

from shipyard.logs.kinds import LogKind, register

__all__ = ["TRACE_SCHEMA", "TraceRecord", "Traces"]

_STAMP = pa.timestamp("us", tz="UTC")
_JSON = {b"encoding": b"json"}

TRACE_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string()),
        pa.field("time", _STAMP),
        pa.field("model", pa.string()),
        pa.field("version", pa.string()),
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("parent_span_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("kind", pa.string()),
        pa.field("start", _STAMP),
        pa.field("end", _STAMP),
        pa.field("duration_ms", pa.float64()),
        pa.field("status", pa.string()),
        pa.field("error", pa.string()),
        pa.field("role", pa.string()),
        pa.field("tenant", pa.string()),
        pa.field("prompt", pa.string()),
        pa.field("provider", pa.string()),
        pa.field("provider_model", pa.string()),
        pa.field("input", pa.string()),
        pa.field("output", pa.string()),
        pa.field("prompt_tokens", pa.int64()),
        pa.field("completion_tokens", pa.int64()),
        pa.field("cached_tokens", pa.int64()),
        pa.field("ttft_ms", pa.float64()),
        pa.field("cost", pa.float64()),
        pa.field("cost_source", pa.string()),
        pa.field("price_version", pa.int64()),
        pa.field("currency", pa.string()),
        pa.field("saved_cost", pa.float64()),
        pa.field("cache", pa.string()),
        pa.field("attributes", pa.string(), metadata=_JSON),
    ]
)
"""Columns of the trace log, in file order."""


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 4x as much, on the hot path
class TraceRecord:
    """One span of one traced LLM call, as the trace log holds it (treat it as read-only).

    ``time`` is the span's start (the writer partitions on it); ``status`` is ``ok`` or
    ``error`` (``error`` then says what failed, never a secret). ``cost`` is what the
    span spent, ``cost_source`` ``provider``, ``computed`` (with ``price_version``, the
    price-table version used) or ``unpriced``; ``saved_cost`` what a cache hit avoided
    (the answer's usage priced as a call). ``cache`` is ``exact``, ``semantic``,
    ``miss``, ``bypass`` or empty. Empty strings and None mean "not this span's".
    """

    request_id: str
    time: datetime
    model: str
    version: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    start: datetime
    end: datetime
    duration_ms: float
    status: str = "ok"
    error: str = ""
    role: str = "live"
    tenant: str = ""
    prompt: str = ""
    provider: str = ""
    provider_model: str = ""
    input: str = ""
    output: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    ttft_ms: float | None = None
    cost: float | None = None
    cost_source: str = ""
    price_version: int | None = None
    currency: str = ""
    saved_cost: float | None = None
    cache: str = ""
    attributes: str = "{}"

    def to_dict(self) -> dict[str, Any]:
        """The record as a dict of its columns (datetimes as they are)."""
        return {name: getattr(self, name) for name in _NAMES}


_NAMES = tuple(f.name for f in fields(TraceRecord))


@register
class Traces(LogKind):
    """The trace log: one row per span of every traced LLM call."""

    name = "traces"
    schema = TRACE_SCHEMA
    record_types = (TraceRecord,)

    def to_table(self, records: Sequence[Any]) -> pa.Table:
        """One row per span, column by column."""
        columns = {
            name: pa.array([getattr(r, name) for r in records], TRACE_SCHEMA.field(name).type)
            for name in _NAMES
        }
        return pa.Table.from_pydict(columns, schema=TRACE_SCHEMA)
