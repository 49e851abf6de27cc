"""Trace records as OTLP/JSON with OpenInference attributes, for Phoenix, Langfuse or MLflow.

:func:`otlp_json` follows the OTLP/JSON encoding of ``ExportTraceServiceRequest``
(opentelemetry-proto's ``trace/v1``): ``resourceSpans`` → ``scopeSpans`` → ``spans``;
``traceId`` (32) and ``spanId`` (16) as lower-case hex, not base64; times as decimal
strings of Unix nanoseconds; ``kind`` and ``status.code`` as integers; attributes as a
list of ``{"key", "value": AnyValue}`` (``intValue`` as a decimal string, per proto3's
int64 mapping). One resource per model (``service.name`` = ``shipyard``,
``shipyard.model``). POST the document to a collector's ``/v1/traces`` (Phoenix and
Langfuse accept OTLP/HTTP; MLflow 3 has an OTLP endpoint too), or keep it as a file.

The attributes are OpenInference's semantic conventions (``openinference.span.kind``,
``llm.model_name``, ``llm.token_count.*``, ``input.value`` …) plus ``shipyard.*`` keys
for what OpenInference has no name for (tenant, cache result, cost source, price
version). :func:`openinference_attributes` gives them as a plain dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shipyard.logs.traces import TraceRecord
from shipyard.moments import as_utc

__all__ = ["any_value", "openinference_attributes", "otlp_json", "unix_nanos"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_INTERNAL, _SERVER, _CLIENT = 1, 2, 3  # Span.SpanKind
_OK, _ERROR = 1, 2  # Status.StatusCode
_SCOPE = "shipyard.llm"


def unix_nanos(moment: datetime) -> str:
    """``moment`` as OTLP's decimal string of nanoseconds since the Unix epoch."""
    return str((as_utc(moment) - _EPOCH) // _MICRO * 1000)


def any_value(value: Any) -> dict[str, Any]:
    """``value`` as an OTLP ``AnyValue`` (bools before ints: a bool is an int in Python)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value if v is not None]}}
    if isinstance(value, Mapping):
        pairs = [{"key": str(k), "value": any_value(v)} for k, v in value.items() if v is not None]
        return {"kvlistValue": {"values": pairs}}
    return {"stringValue": str(value)}


def openinference_attributes(record: TraceRecord | Mapping[str, Any]) -> dict[str, Any]:
    """The span's OpenInference (and ``shipyard.*``) attributes, None values left out."""
    row = record.to_dict() if isinstance(record, TraceRecord) else record
    out: dict[str, Any] = {
        "openinference.span.kind": row["kind"],
        "shipyard.request_id": row["request_id"],
        "shipyard.model": row["model"],
        "shipyard.version": row["version"],
        "shipyard.role": row["role"],
    }
    _put(out, "shipyard.tenant", row.get("tenant"))
    prompt = row.get("prompt") or ""
    if prompt:
        out["shipyard.prompt"] = prompt
        name, _, version = prompt.rpartition("/")
        if name and version:
            out["llm.prompt_template.version"] = version
    is_llm = row["kind"] == "LLM"
    _put(out, "llm.provider", row.get("provider"))
    if row.get("provider_model"):
        out["llm.model_name"] = row["provider_model"]
    elif is_llm:
        out["llm.model_name"] = row["model"]
    prompt_tokens, completion = row.get("prompt_tokens") or 0, row.get("completion_tokens") or 0
    cached = row.get("cached_tokens") or 0
    if is_llm or prompt_tokens or completion:
        out["llm.token_count.prompt"] = int(prompt_tokens)
        out["llm.token_count.completion"] = int(completion)
        out["llm.token_count.total"] = int(prompt_tokens) + int(completion)
        out["llm.token_count.prompt_details.cache_read"] = int(cached)
    _inputs(out, row.get("input") or "")
    if row.get("output"):
        out["output.value"] = row["output"]
        out["output.mime_type"] = "text/plain"
    if row.get("cost") is not None:
        out["llm.cost.total"] = float(row["cost"])
        out["shipyard.cost_source"] = row.get("cost_source") or ""
        _put(out, "shipyard.currency", row.get("currency"))
        if row.get("price_version") is not None:
            out["shipyard.price_version"] = int(row["price_version"])
    if row.get("saved_cost") is not None:
        out["shipyard.saved_cost"] = float(row["saved_cost"])
    _put(out, "shipyard.cache", row.get("cache"))
    if row.get("cache"):
        out["shipyard.cache_hit"] = row["cache"] in ("exact", "semantic")
    if row.get("ttft_ms") is not None:
        out["shipyard.ttft_ms"] = float(row["ttft_ms"])
    out["shipyard.latency_ms"] = float(row.get("duration_ms") or 0.0)
    extra = row.get("attributes") or "{}"
    try:
        found = orjson.loads(extra) if isinstance(extra, (str, bytes)) else dict(extra)
    except orjson.JSONDecodeError:
        found = {"shipyard.attributes": extra}
    out.update({k: v for k, v in found.items() if v is not None})
    return out


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value:
        out[key] = value


def _inputs(out: dict[str, Any], text: str) -> None:
    """``input.value``, and ``llm.input_messages.*`` when the input is a message list."""
    if not text:
        return
    out["input.value"] = text
    messages = None
    if text.startswith("["):
        try:
            messages = orjson.loads(text)
        except orjson.JSONDecodeError:
            messages = None
    if not isinstance(messages, list):
        out["input.mime_type"] = "text/plain"
        return
    out["input.mime_type"] = "application/json"
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        prefix = f"llm.input_messages.{index}.message"
        _put(out, f"{prefix}.role", message.get("role"))
        content = message.get("content")
        if content is not None:
            out[f"{prefix}.content"] = content if isinstance(content, str) else str(content)


def _span(row: Mapping[str, Any]) -> dict[str, Any]:
    parent = row.get("parent_span_id") or ""
    kind = _SERVER if not parent else _CLIENT if row["kind"] == "LLM" else _INTERNAL
    failed = row.get("status") == "error"
    span: dict[str, Any] = {
        "traceId": row["trace_id"],
        "spanId": row["span_id"],
        "name": row["name"],
        "kind": kind,
        "startTimeUnixNano": unix_nanos(row["start"]),
        "endTimeUnixNano": unix_nanos(row["end"]),
        "attributes": [
            {"key": key, "value": any_value(value)}
            for key, value in openinference_attributes(row).items()
        ],
        "status": {"code": _ERROR, "message": row.get("error") or ""} if failed else {"code": _OK},
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def otlp_json(
    records: Iterable[TraceRecord | Mapping[str, Any]], *, service: str = "shipyard"
) -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest`` holding ``records``, one resource per model."""
    from shipyard import __version__

    by_model: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        row = record.to_dict() if isinstance(record, TraceRecord) else record
        by_model.setdefault(str(row["model"]), []).append(_span(row))
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": any_value(service)},
                        {"key": "shipyard.model", "value": any_value(model)},
                    ]
                },
                "scopeSpans": [{"scope": {"name": _SCOPE, "version": __version__}, "spans": spans}],
            }
            for model, spans in by_model.items()
        ]
    }
