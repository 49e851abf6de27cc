"""Traces of LLM calls: spans, nesting, errors, PII masking, and the Parquet trace log.

No provider is called: the spans are built the way the gateway builds them, with a
stepped clock so durations are exact. The writer and reader are the real log machinery.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.llm.traces import TextMask, Trace
from shipyard.llm.types import Cost, TokenUsage
from shipyard.logs.kinds import log_kinds
from shipyard.logs.pii import PiiPolicy
from shipyard.logs.reader import query_log
from shipyard.logs.traces import TRACE_SCHEMA, TraceRecord
from shipyard.logs.writer import PredictionLogWriter

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
MESSAGES = [
    {"role": "system", "content": "You help customers of the bank."},
    {"role": "user", "content": "My email is alice@example.com and account 12-345."},
]


def stepped(start: float = 1_780_000_000.0, step: float = 0.25) -> Iterator[float]:
    moment = start
    while True:
        yield moment
        moment += step


def call(mask: TextMask | None = None, *, fail: bool = False) -> Trace:
    """A traced call: gateway -> cache (miss) -> provider (LLM) -> guardrails."""
    ticks = stepped()
    trace = Trace(
        request_id="req-1",
        model="assistant",
        version="2",
        tenant="acme",
        prompt="support/3",
        mask=mask,
        clock=lambda: next(ticks),
    )
    with trace.span("gateway", "CHAIN"):
        with trace.span("cache", "RETRIEVER") as lookup:
            lookup.set(cache="miss")
        with trace.span("provider", "LLM") as provider:
            provider.set(
                provider="primary",
                provider_model="gpt-4o-mini",
                input=MESSAGES,
                output="Hello alice@example.com, account 12-345 is fine.",
                ttft_ms=42.0,
            )
            provider.usage(TokenUsage(120, 30, 20), Cost(0.0021, "USD", "computed", 4))
            provider.attribute("llm.invocation_parameters", '{"temperature": 0}')
        if fail:
            with pytest.raises(RuntimeError), trace.span("guardrails", "GUARDRAIL"):
                raise RuntimeError("guardrail regex broke")
    return trace


def test_spans_nest_and_carry_their_fields() -> None:
    records = call().records()
    assert [r.name for r in records] == ["gateway", "cache", "provider"]
    root, lookup, provider = records
    assert HEX32.match(root.trace_id) and {r.trace_id for r in records} == {root.trace_id}
    assert all(HEX16.match(r.span_id) for r in records)
    assert len({r.span_id for r in records}) == 3
    assert root.parent_span_id == "" and lookup.parent_span_id == root.span_id
    assert provider.parent_span_id == root.span_id
    # the stepped clock: gateway starts at t, cache t+.25..t+.5, provider t+.75..t+1, end t+1.25
    assert root.duration_ms == 1250.0 and lookup.duration_ms == 250.0
    assert provider.start > lookup.end and root.end > provider.end
    assert (provider.prompt_tokens, provider.completion_tokens, provider.cached_tokens) == (
        120,
        30,
        20,
    )
    assert (provider.cost, provider.cost_source, provider.price_version) == (0.0021, "computed", 4)
    assert (root.cost, root.prompt_tokens, lookup.cache) == (None, 0, "miss")
    assert provider.tenant == "acme" and provider.prompt == "support/3"
    assert provider.input.startswith('[{"role":"system"')
    assert '"llm.invocation_parameters"' in provider.attributes
    assert all(r.status == "ok" for r in records)


def test_an_exception_marks_its_span_failed_and_propagates() -> None:
    records = call(fail=True).records()
    guard = records[-1]
    assert guard.name == "guardrails" and guard.kind == "GUARDRAIL"
    assert guard.status == "error" and guard.error == "RuntimeError: guardrail regex broke"
    assert records[0].status == "ok"  # caught inside the gateway span


def test_fields_are_checked_when_set() -> None:
    trace = Trace(request_id="r", model="m", version="1")
    span = trace.start("x")
    with pytest.raises(TypeError, match="prompt_tokenz"):
        span.set(prompt_tokenz=3)
    with pytest.raises(ValueError, match="cache must be one of"):
        span.set(cache="hit")
    assert not span.ended
    (record,) = trace.records()  # a running span ends when records are taken
    assert record.end >= record.start and span.ended


def test_tagged_variables_are_masked_before_any_record_exists(tmp_path: Path) -> None:
    policy = PiiPolicy(
        columns={"email": "pii", "account": "sensitive"},
        masking={"pii": "hash", "sensitive": "drop"},
        secret=tmp_path / "secret",
    )
    mask = TextMask.of(policy, {"email": "alice@example.com", "account": "12-345", "n": 3})
    records = call(mask).records()
    provider = records[2]
    hashed = f"[pii:{policy.hash_value('alice@example.com')}]"
    assert hashed in provider.input and hashed in provider.output
    assert "[sensitive]" in provider.input and "[sensitive]" in provider.output
    for record in records:
        text = repr(record)
        assert "alice@example.com" not in text and "12-345" not in text
    # Written through the real log machinery, no file under the root holds a raw value.
    with PredictionLogWriter(tmp_path / "logs", kind="traces", fsync_seconds=0) as writer:
        for record in records:
            assert writer.log(record)
    files = [p for p in (tmp_path / "logs").rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files)
    for path in files:
        data = path.read_bytes()
        assert b"alice@example.com" not in data and b"12-345" not in data


def test_tagging_input_or_output_masks_the_whole_text(tmp_path: Path) -> None:
    policy = PiiPolicy(
        columns={"output": "pii"}, masking={"pii": "hash"}, secret=tmp_path / "secret"
    )
    provider = call(TextMask.of(policy, {})).records()[2]
    assert provider.output == f"[pii:{policy.hash_value(provider_output())}]"
    assert "alice@example.com" in provider.input  # the input is not tagged
    assert TextMask.of(None, {"email": "x"}).active is False


def provider_output() -> str:
    return "Hello alice@example.com, account 12-345 is fine."


def test_the_trace_log_is_a_registered_kind_read_back_as_written(tmp_path: Path) -> None:
    assert "traces" in log_kinds()
    first, second = call().records(), call(fail=True).records()
    with PredictionLogWriter(tmp_path, kind="traces") as writer:
        for record in first + second:
            writer.log(record)
    table = query_log(tmp_path, "assistant", kind="traces")
    assert table.schema.names == TRACE_SCHEMA.names
    rows = sorted(table.to_pylist(), key=lambda row: (row["trace_id"], row["start"]))
    written = sorted(
        (r.to_dict() for r in first + second), key=lambda row: (row["trace_id"], row["start"])
    )
    assert [{k: row[k] for k in written[0]} for row in rows] == written
    spent = query_log(
        tmp_path,
        "assistant",
        kind="traces",
        sql="SELECT count(DISTINCT trace_id) AS calls, sum(prompt_tokens) AS tokens, "
        "count(*) FILTER (WHERE status = 'error') AS errors FROM log",
    ).to_pylist()
    assert spent == [{"calls": 2, "tokens": 240, "errors": 1}]


def test_a_record_the_writer_cannot_take_is_refused(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, kind="traces") as writer:
        assert not writer.log({"name": "not a record"})
        assert writer.log(call().records()[0])
    assert isinstance(call().records()[0], TraceRecord)


def test_blocks_restore_the_parent_after_a_failure() -> None:
    trace = Trace(request_id="r", model="m", version="1")
    with trace.span("gateway") as root:
        with pytest.raises(KeyError), trace.span("cache", "RETRIEVER"):
            raise KeyError("index")
        after = trace.start("provider", "LLM")
        with after:  # a started span used as a block just ends with it
            pass
    assert after.ended and after.parent_id == root.span_id
    outside = trace.start("late")
    assert outside.parent_id == ""  # every block has closed
    cache = trace.records()[1]
    assert cache.status == "error" and cache.error == "KeyError: 'index'"
