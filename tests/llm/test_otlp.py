"""OTLP/JSON export of traces: checked against opentelemetry-proto and the OTLP/JSON rules.

The document is parsed by protobuf's JSON parser into opentelemetry-proto's
``ExportTraceServiceRequest`` (unknown fields and wrong types fail), then checked for
what proto3 JSON alone does not pin: hex ids (OTLP/JSON's exception to base64), time
strings, one typed value per attribute, OpenInference keys. No provider is called.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shipyard.jsonable import dump_json
from shipyard.llm.otlp import any_value, openinference_attributes, otlp_json, unix_nanos
from shipyard.llm.traces import Trace
from shipyard.llm.types import Cost, TokenUsage
from shipyard.logs.reader import query_log
from shipyard.logs.writer import PredictionLogWriter

VALUE_KEYS = {"stringValue", "intValue", "doubleValue", "boolValue", "arrayValue", "kvlistValue"}


def traced(model: str = "assistant", *, fail: bool = False) -> Trace:
    trace = Trace(request_id="req-9", model=model, version="3", tenant="acme", prompt="faq/7")
    with trace.span("gateway", "CHAIN") as root:
        with trace.span("cache", "RETRIEVER") as lookup:
            lookup.set(cache="exact").saved(Cost(0.004, "USD", "computed", 2))
        with trace.span("provider", "LLM") as call:
            call.set(
                provider="primary",
                provider_model="gpt-4o-mini",
                input=[{"role": "user", "content": "What is 2+2?"}],
                output="4",
                ttft_ms=12.5,
            )
            call.usage(TokenUsage(11, 1, 0), Cost(0.00003, "USD", "computed", 2))
            if fail:
                call.fail("ProviderError: upstream 502")
        root.attribute("llm.invocation_parameters", '{"temperature":0}')
    return trace


def attributes(span: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for item in span["attributes"]:
        assert set(item) == {"key", "value"}
        (kind,) = item["value"].keys()
        assert kind in VALUE_KEYS
        found[item["key"]] = item["value"]
    return found


def test_the_document_is_an_otlp_export_request() -> None:
    records = traced().records() + traced("other", fail=True).records()
    document = orjson.loads(dump_json(otlp_json(records)))
    request = Parse(orjson.dumps(document).decode(), ExportTraceServiceRequest())
    assert len(request.resource_spans) == 2  # one resource per model
    assert sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans) == 6
    for resource in document["resourceSpans"]:
        names = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
        assert names["service.name"] == {"stringValue": "shipyard"}
        (scope,) = resource["scopeSpans"]
        assert scope["scope"]["name"] == "shipyard.llm"
        for span in scope["spans"]:
            assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
            assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
            assert "parentSpanId" not in span or re.fullmatch(r"[0-9a-f]{16}", span["parentSpanId"])
            for key in ("startTimeUnixNano", "endTimeUnixNano"):
                assert isinstance(span[key], str) and span[key].isdigit()
            assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
            assert isinstance(span["kind"], int) and span["status"]["code"] in (1, 2)
            for value in attributes(span).values():
                if "intValue" in value:
                    assert isinstance(value["intValue"], str) and value["intValue"].isdigit()


def test_spans_carry_openinference_attributes() -> None:
    records = traced(fail=True).records()
    document = otlp_json(records)
    spans = {s["name"]: s for s in document["resourceSpans"][0]["scopeSpans"][0]["spans"]}
    root, lookup, call = spans["gateway"], spans["cache"], spans["provider"]
    assert "parentSpanId" not in root and root["kind"] == 2
    assert call["parentSpanId"] == root["spanId"] == lookup["parentSpanId"]
    assert call["kind"] == 3 and lookup["kind"] == 1
    llm = attributes(call)
    assert llm["openinference.span.kind"] == {"stringValue": "LLM"}
    assert llm["llm.model_name"] == {"stringValue": "gpt-4o-mini"}
    assert llm["llm.token_count.prompt"] == {"intValue": "11"}
    assert llm["llm.token_count.completion"] == {"intValue": "1"}
    assert llm["llm.token_count.total"] == {"intValue": "12"}
    assert llm["llm.prompt_template.version"] == {"stringValue": "7"}
    assert llm["input.mime_type"] == {"stringValue": "application/json"}
    assert llm["llm.input_messages.0.message.content"] == {"stringValue": "What is 2+2?"}
    assert llm["output.value"] == {"stringValue": "4"}
    assert llm["llm.cost.total"] == {"doubleValue": 0.00003}
    assert llm["shipyard.price_version"] == {"intValue": "2"}
    assert llm["shipyard.tenant"] == {"stringValue": "acme"}
    assert llm["shipyard.ttft_ms"] == {"doubleValue": 12.5}
    assert call["status"] == {"code": 2, "message": "ProviderError: upstream 502"}
    cache = attributes(lookup)
    assert cache["shipyard.cache_hit"] == {"boolValue": True}
    assert cache["shipyard.saved_cost"] == {"doubleValue": 0.004}
    assert "llm.token_count.prompt" not in cache  # nothing spent on a cache lookup
    assert attributes(root)["llm.invocation_parameters"] == {"stringValue": '{"temperature":0}'}


def test_rows_read_back_from_the_log_export_alike(tmp_path: Path) -> None:
    records = traced().records()
    with PredictionLogWriter(tmp_path, kind="traces") as writer:
        for record in records:
            writer.log(record)
    rows = query_log(tmp_path, "assistant", kind="traces").to_pylist()
    assert otlp_json(rows) == otlp_json(records)
    assert openinference_attributes(rows[0]) == openinference_attributes(records[0])


def test_values_and_times_follow_the_json_mapping() -> None:
    moment = datetime(2026, 12, 7, 9, 30, 0, 123456, tzinfo=UTC)
    assert unix_nanos(moment) == "1796635800123456000"
    assert any_value(True) == {"boolValue": True}
    assert any_value(7) == {"intValue": "7"}
    assert any_value(0.5) == {"doubleValue": 0.5}
    assert any_value(["a", 1]) == {
        "arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}
    }
    assert any_value({"k": None, "j": "v"}) == {
        "kvlistValue": {"values": [{"key": "j", "value": {"stringValue": "v"}}]}
    }
    assert otlp_json([]) == {"resourceSpans": []}
