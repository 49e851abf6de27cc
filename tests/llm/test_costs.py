"""Cost per tenant, model, prompt version and day, read with DuckDB from the trace log,
and exported as Prometheus metrics (one worker, and several in multiprocess mode).

Calls are traced as the gateway traces them (no provider: usage is given), priced by
the real PriceBook over a real SQLite store, written by the real log writer. The price
history test imports v1, traces, imports v2 effective later, and checks old sums never
move while new calls are priced by v2.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from shipyard.config import load_config
from shipyard.errors import ConfigError
from shipyard.llm.costs import cost_rows, cost_total, traced_models
from shipyard.llm.metrics import LlmMetrics
from shipyard.llm.prices import PriceBook, import_prices
from shipyard.llm.traces import Trace
from shipyard.llm.types import Cost, TokenUsage
from shipyard.logs.traces import TraceRecord
from shipyard.logs.writer import PredictionLogWriter
from shipyard.project import Project
from tests.support import copy_example, project_of

FIXTURE = Path(__file__).resolve().parents[1] / "support" / "litellm_prices.json"
DAY1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
DAY2 = datetime(2026, 11, 3, 10, tzinfo=UTC)
SMALL = TokenUsage(100, 20)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = copy_example(tmp_path / "churn")
    project = project_of(load_config(root / "shipyard.yaml", environ={}))
    import_prices(project, FIXTURE, effective_from=DAY1 - timedelta(days=30))
    return project


def traced(
    book: PriceBook,
    at: datetime,
    *,
    tenant: str = "acme",
    prompt: str = "support/1",
    model: str = "assistant",
    role: str = "live",
    usage: TokenUsage = SMALL,
    provider_model: str = "gpt-4o",
    cache: str = "miss",
    reported: float | None = None,
    failed: bool = False,
) -> list[TraceRecord]:
    """One call as the gateway traces it: a hit has no provider span, only savings; the
    cache result is on the lookup span and on the root (as shipyard.llm.chat_flow does)."""
    trace = Trace(
        request_id=f"r-{at.timestamp()}",
        model=model,
        version="1",
        role=role,
        tenant=tenant,
        prompt=prompt,
        clock=lambda: at.timestamp(),
    )
    with trace.span("gateway", "CHAIN") as root:
        root.set(cache=cache)  # the gateway repeats the result on its root span
        with trace.span("cache", "RETRIEVER") as lookup:
            lookup.set(cache=cache)
            if cache in ("exact", "semantic"):
                lookup.saved(book.cost(provider_model, usage, at))
        if cache not in ("exact", "semantic"):
            with trace.span("provider", "LLM") as call:
                call.set(provider="p", provider_model=provider_model)
                call.usage(usage, book.cost(provider_model, usage, at, reported))
                if failed:
                    call.fail("ProviderError: upstream 500")
    return trace.records()


def log(root: Path, calls: list[list[TraceRecord]]) -> None:
    with PredictionLogWriter(root, kind="traces") as writer:
        for records in calls:
            for record in records:
                assert writer.log(record)


def price(book: PriceBook, model: str, usage: TokenUsage, at: datetime) -> float:
    return book.cost(model, usage, at).amount


def test_costs_per_tenant_prompt_and_day(project: Project, tmp_path: Path) -> None:
    book = PriceBook.load(project.store)
    logs = tmp_path / "logs"
    big = TokenUsage(1000, 200, 400)
    log(
        logs,
        [
            traced(book, DAY1),
            traced(book, DAY1 + timedelta(minutes=1), usage=big),
            traced(book, DAY1 + timedelta(minutes=2), cache="exact", usage=big),
            traced(book, DAY1 + timedelta(minutes=3), tenant="beta", reported=0.5),
            traced(book, DAY2, prompt="support/2", provider_model="mystery-model"),
            traced(book, DAY2 + timedelta(minutes=1), prompt="support/2", failed=True),
            traced(book, DAY2 + timedelta(minutes=2), role="shadow", prompt="support/2"),
            traced(book, DAY2 + timedelta(minutes=3), model="other", cache="bypass"),
        ],
    )
    assert traced_models(logs) == ["assistant", "other"]
    rows = {(r.tenant, r.prompt, r.day): r for r in cost_rows(logs)}
    assert set(rows) == {
        ("acme", "support/1", date(2026, 11, 2)),
        ("beta", "support/1", date(2026, 11, 2)),
        ("acme", "support/2", date(2026, 11, 3)),
        ("acme", "support/1", date(2026, 11, 3)),
    }
    acme1 = rows[("acme", "support/1", date(2026, 11, 2))]
    small = TokenUsage(100, 20)
    assert (acme1.requests, acme1.cache_hits, acme1.cache_lookups) == (3, 1, 3)
    assert (acme1.prompt_tokens, acme1.completion_tokens, acme1.cached_tokens) == (1100, 220, 400)
    assert math.isclose(
        acme1.cost, price(book, "gpt-4o", small, DAY1) + price(book, "gpt-4o", big, DAY1)
    )
    assert math.isclose(acme1.saved, price(book, "gpt-4o", big, DAY1)) and acme1.saved > 0
    assert acme1.hit_rate == pytest.approx(1 / 3) and acme1.currency == "USD"
    assert rows[("beta", "support/1", date(2026, 11, 2))].cost == 0.5  # provider-reported
    day2 = rows[("acme", "support/2", date(2026, 11, 3))]
    assert (day2.requests, day2.unpriced, day2.errors) == (3, 1, 1)
    # By role and model instead: the shadow's calls cost too, kept apart.
    by_role = {(r.model, r.role): r.requests for r in cost_rows(logs, by=("model", "role"))}
    assert by_role == {("assistant", "live"): 6, ("assistant", "shadow"): 1, ("other", "live"): 1}
    # A window, and one model.
    (only,) = cost_total(logs, ["assistant"], since=DAY2, until=DAY2 + timedelta(minutes=2))
    assert only.requests == 2 and only.tenant is None and only.day is None
    (everything,) = cost_total(logs)
    assert everything.requests == 8 and everything.cache_lookups == 7


def test_a_price_change_never_rewrites_recorded_costs(project: Project, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    usage = TokenUsage(1000, 1000)
    v1 = PriceBook.load(project.store)
    log(logs, [traced(v1, DAY1, usage=usage)])
    before = cost_rows(logs, by=("day",))
    doubled = json.loads(FIXTURE.read_text(encoding="utf-8"))
    doubled["gpt-4o"]["input_cost_per_token"] *= 2
    doubled["gpt-4o"]["output_cost_per_token"] *= 2
    changed = tmp_path / "v2.json"
    changed.write_text(json.dumps(doubled), encoding="utf-8")
    import_prices(project, changed, effective_from=DAY2 - timedelta(hours=1))
    v2 = PriceBook.load(project.store)
    assert cost_rows(logs, by=("day",)) == before  # history unchanged
    # New calls: one dated before v2's effective_from (priced at v1), one after (v2).
    log(logs, [traced(v2, DAY1 + timedelta(hours=2), usage=usage), traced(v2, DAY2, usage=usage)])
    first, second = cost_rows(logs, by=("day",))
    assert first.requests == 2 and math.isclose(first.cost, 2 * before[0].cost)
    assert second.requests == 1 and math.isclose(second.cost, 2 * before[0].cost)


def test_bad_groupings_and_windows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tenant, model, version, prompt, role, day"):
        cost_rows(tmp_path, by=("customer",))
    with pytest.raises(ConfigError, match="since must come before until"):
        cost_rows(tmp_path, since=DAY2, until=DAY1)
    assert cost_rows(tmp_path) == [] and traced_models(tmp_path) == []


def test_a_cost_record_is_what_a_span_was_given() -> None:
    trace = Trace(request_id="r", model="m", version="1")
    with trace.span("provider", "LLM") as call:
        call.cost(Cost(0.25, "EUR", "provider"))
    (record,) = trace.records()
    assert (record.cost, record.currency, record.cost_source, record.price_version) == (
        0.25,
        "EUR",
        "provider",
        None,
    )


def samples(families: Iterable[Metric]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in families
        for s in family.samples
    }


def test_cost_tokens_and_cache_are_exported_as_metrics(project: Project) -> None:
    book = PriceBook.load(project.store)
    metrics = LlmMetrics(CollectorRegistry())
    big = TokenUsage(1000, 200, 400)
    metrics.observe(traced(book, DAY1, usage=big))
    metrics.observe(traced(book, DAY1, usage=big, cache="exact"))
    metrics.observe(traced(book, DAY1, provider_model="mystery-model", failed=True))
    metrics.refused("assistant", "acme")
    metrics.provider_error("assistant", "primary", 429)
    found = samples(metrics.registry.collect())
    who = {("model", "assistant"), ("version", "1"), ("tenant", "acme")}

    def value(name: str, **labels: str) -> float:
        return found[(name, frozenset(who | set(labels.items())))]

    assert value("shipyard_llm_tokens_total", type="prompt") == 1100
    assert value("shipyard_llm_tokens_total", type="cached") == 400
    cost = price(book, "gpt-4o", big, DAY1)
    assert math.isclose(value("shipyard_llm_cost_total", currency="USD"), cost)
    assert math.isclose(value("shipyard_llm_cache_saved_total", currency="USD"), cost)
    assert value("shipyard_llm_cache_total", result="exact") == 1
    assert value("shipyard_llm_cache_total", result="miss") == 2
    assert value("shipyard_llm_requests_total", role="live", status="ok") == 2
    assert value("shipyard_llm_requests_total", role="live", status="error") == 1
    unpriced = frozenset({("model", "assistant"), ("provider_model", "mystery-model")})
    assert found[("shipyard_llm_unpriced_total", unpriced)] == 1
    refused = frozenset({("model", "assistant"), ("tenant", "acme")})
    assert found[("shipyard_llm_cap_refusals_total", refused)] == 1


_WORKER = """
import sys
from datetime import UTC, datetime
from prometheus_client import CollectorRegistry
from shipyard.llm.metrics import LlmMetrics
from shipyard.llm.traces import Trace
from shipyard.llm.types import Cost, TokenUsage

metrics = LlmMetrics(CollectorRegistry())
trace = Trace(request_id="r", model="assistant", version="1", tenant="acme")
with trace.span("gateway"):
    with trace.span("provider", "LLM") as call:
        call.usage(TokenUsage(10, 5), Cost(0.25, "USD", "computed", 1)).set(ttft_ms=30.0)
metrics.observe(trace.records())
"""


def test_metrics_add_up_across_workers_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two worker processes write their values to PROMETHEUS_MULTIPROC_DIR; one collector sums."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    environ = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", _WORKER], env=environ, check=True, timeout=120)
    assert len(list(directory.glob("*.db"))) >= 2  # each worker wrote its own files
    found = samples(MultiProcessCollector(None, str(directory)).collect())
    tokens = frozenset(
        {("model", "assistant"), ("version", "1"), ("tenant", "acme"), ("type", "prompt")}
    )
    assert found[("shipyard_llm_tokens_total", tokens)] == 20
    cost = frozenset(
        {("model", "assistant"), ("version", "1"), ("tenant", "acme"), ("currency", "USD")}
    )
    assert found[("shipyard_llm_cost_total", cost)] == 0.5
    ttft = frozenset({("model", "assistant"), ("version", "1")})
    assert found[("shipyard_llm_ttft_seconds_count", ttft)] == 2


def test_calls_through_the_gateway_are_priced_masked_and_exported(tmp_path: Path) -> None:
    """Stand-in provider behind the real gateway, called with the real openai client: each
    call's cost is priced when traced, per tenant, with PII-tagged variables masked in the
    trace log, the OTLP export and the metrics counting the same tokens."""
    import httpx
    import openai
    from google.protobuf.json_format import Parse
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from shipyard.jsonable import dump_json
    from shipyard.llm.otlp import otlp_json
    from shipyard.llm.prices import set_price
    from shipyard.logs.reader import query_log
    from shipyard.logs.root import project_log_root
    from tests.support.llm_projects import LlmProject
    from tests.support.llm_provider import stand_in

    with stand_in() as provider:
        llm = LlmProject.create(
            tmp_path / "assistant", [provider], {"pii": {"columns": {"customer": "pii"}}}
        )
        llm.promote(llm.register("You help {{customer}} with their card."))
        set_price(llm.project(), "small", input=1e-06, output=2e-06, effective_from=DAY1)
        usages = {}
        with llm.gateway() as (url, _server):
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
            for tenant in ("acme", "acme", "beta"):
                reply = client.chat.completions.create(
                    model="assistant",
                    messages=[{"role": "user", "content": f"Card of Jane Roe for {tenant}?"}],
                    extra_body={"variables": {"customer": "Jane Roe"}},
                    extra_headers={"X-Shipyard-Tenant": tenant},
                )
                assert reply.usage is not None
                spent = usages.setdefault(tenant, [0, 0])
                spent[0] += reply.usage.prompt_tokens
                spent[1] += reply.usage.completion_tokens
            exposition = httpx.get(f"{url}/metrics").text
    root = project_log_root(llm.config)
    rows = {row.tenant: row for row in cost_rows(root, ["assistant"], by=("tenant",))}
    assert set(rows) == {"acme", "beta"} and rows["acme"].requests == 2
    for tenant, (prompt_tokens, completion_tokens) in usages.items():
        assert rows[tenant].prompt_tokens == prompt_tokens
        assert math.isclose(rows[tenant].cost, prompt_tokens * 1e-06 + completion_tokens * 2e-06)
        assert rows[tenant].unpriced == 0
    spans = query_log(root, "assistant", kind="traces").to_pylist()
    assert spans and all("Jane Roe" not in (s["input"] + s["output"]) for s in spans)
    assert any("[pii:" in s["input"] for s in spans)
    assert all(s["price_version"] == 1 for s in spans if s["cost_source"] == "computed")
    document = dump_json(otlp_json(spans)).decode()
    assert "Jane Roe" not in document
    request = Parse(document, ExportTraceServiceRequest())
    assert sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans) == len(spans)
    from prometheus_client.parser import text_string_to_metric_families

    counted = {
        (sample.labels["tenant"], sample.labels["type"]): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "shipyard_llm_tokens_total"
    }
    for tenant, (prompt_tokens, completion_tokens) in usages.items():
        assert counted[(tenant, "prompt")] == prompt_tokens
        assert counted[(tenant, "completion")] == completion_tokens
