"""``shipyard llm prices|cost|traces`` and ``shipyard logs query --kind traces``.

Real CLI entry point (``shipyard.cli.run``) on a copied example project with its SQLite
store; traces are written by the real log writer the way the gateway writes them (no
provider is called: usage is given), priced by the real PriceBook.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from google.protobuf.json_format import Parse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from shipyard.cli import run
from shipyard.config import Config, load_config
from shipyard.llm.prices import PriceBook
from shipyard.llm.traces import Trace
from shipyard.llm.types import TokenUsage
from shipyard.logs.root import project_log_root
from shipyard.logs.writer import PredictionLogWriter
from shipyard.store.event_kinds import EventKind
from tests.support import copy_example, project_of

FIXTURE = Path(__file__).resolve().parents[1] / "support" / "litellm_prices.json"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    root = copy_example(tmp_path / "churn")
    config = load_config(root / "shipyard.yaml", environ={})
    assert project_of(config).store.events() == []  # creates and migrates the database
    monkeypatch.chdir(root)
    return config


def out_json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def write_traces(config: Config, at: datetime) -> None:
    book = PriceBook.load(project_of(config).store)
    with PredictionLogWriter(project_log_root(config), kind="traces") as writer:
        for index, (tenant, cache) in enumerate(
            [("acme", "miss"), ("acme", "exact"), ("beta", "miss")]
        ):
            moment = at + timedelta(minutes=index)
            trace = Trace(
                request_id=f"r{index}",
                model="assistant",
                version="1",
                tenant=tenant,
                prompt="support/1",
                clock=moment.timestamp,
            )
            usage = TokenUsage(1000, 100)
            with trace.span("gateway", "CHAIN"):
                with trace.span("cache", "RETRIEVER") as lookup:
                    lookup.set(cache=cache)
                    if cache == "exact":
                        lookup.saved(book.cost("gpt-4o", usage, moment))
                if cache == "miss":
                    with trace.span("provider", "LLM") as call:
                        call.set(provider="p", provider_model="gpt-4o", input="hi", output="yo")
                        call.usage(usage, book.cost("gpt-4o", usage, moment))
            for record in trace.records():
                writer.log(record)


def test_prices_import_set_and_list(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["llm", "prices", "import", str(FIXTURE), "--effective-from", "2026-11-01",
                "--reason", "initial", "--json"]) == 0  # fmt: skip
    done = out_json(capsys)
    assert done["table_version"] == 1 and done["models"] == 4  # type: ignore[index]
    assert run(["llm", "prices", "set", "gpt-4o", "--input", "5", "--output", "20",
                "--per-million", "--effective-from", "2026-12-01"]) == 0  # fmt: skip
    assert "Price table version 2" in capsys.readouterr().out
    assert run(["llm", "prices", "list", "--at", "2026-11-15", "--json"]) == 0
    november = {(r["model_pattern"], r["usage_type"]): r for r in out_json(capsys)}  # type: ignore[attr-defined]
    assert november[("gpt\\-4o", "input")]["price_per_token"] == 2.5e-06
    assert run(["llm", "prices", "list", "--at", "2026-12-02", "--json"]) == 0
    december = {(r["model_pattern"], r["usage_type"]): r for r in out_json(capsys)}  # type: ignore[attr-defined]
    assert december[("gpt-4o", "input")]["price_per_token"] == pytest.approx(5e-06)
    assert december[("gpt-4o", "input")]["table_version"] == 2
    assert run(["llm", "prices", "list"]) == 0
    assert "per 1M tokens" in capsys.readouterr().out
    events = project_of(config).store.events(kind=EventKind.LLM_PRICES_IMPORTED.value)
    assert [e.payload["table_version"] for e in events] == [2, 1]


def test_bad_prices_exit_with_the_field_named(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"gpt-4o": {"input_cost_per_token": -2e-06}}), encoding="utf-8")
    assert run(["llm", "prices", "import", str(bad)]) == 4
    err = capsys.readouterr().err
    assert "gpt-4o.input_cost_per_token" in err and "Traceback" not in err
    assert run(["llm", "prices", "set", "gpt-4o", "--input", "-1"]) == 4
    assert "input is -1.0" in capsys.readouterr().err
    assert run(["llm", "prices", "list", "--json"]) == 0
    assert out_json(capsys) == []


def test_cost_and_trace_export(
    config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    assert run(["llm", "prices", "import", str(FIXTURE), "--effective-from", "2026-01-01"]) == 0
    capsys.readouterr()
    write_traces(config, at)
    assert run(["llm", "cost", "--by", "tenant", "--json"]) == 0
    rows = {r["tenant"]: r for r in out_json(capsys)}  # type: ignore[attr-defined]
    priced = 1000 * 2.5e-6 + 100 * 1e-5
    assert rows["acme"]["requests"] == 2 and rows["acme"]["cache_hits"] == 1
    assert rows["acme"]["cost"] == pytest.approx(priced)
    assert rows["acme"]["saved"] == pytest.approx(priced)
    assert rows["beta"]["cost"] == pytest.approx(priced)
    assert run(["llm", "cost", "--since", "2h"]) == 0
    assert "LLM cost" in capsys.readouterr().out
    assert run(["llm", "cost", "--by", "customer"]) == 2
    assert "tenant, model, version, prompt, role, day" in capsys.readouterr().err
    target = tmp_path / "out" / "traces.json"
    assert run(["llm", "traces", "export", "--otlp", str(target), "--model", "assistant"]) == 0
    assert "3 traces (8 spans)" in capsys.readouterr().out
    request = Parse(target.read_text(encoding="utf-8"), ExportTraceServiceRequest())
    assert sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans) == 8
    until = (at + timedelta(seconds=30)).isoformat()
    assert run(["llm", "traces", "show", "--model", "assistant", "--until", until, "--json"]) == 0
    assert {r["request_id"] for r in out_json(capsys)} == {"r0"}  # type: ignore[attr-defined]
    assert run(["llm", "traces", "show", "--model", "assistant"]) == 0
    assert "8 spans" in capsys.readouterr().out


def test_logs_query_reads_traces(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    write_traces(config, datetime.now(UTC) - timedelta(minutes=30))
    sql = "SELECT tenant, count(DISTINCT trace_id) AS calls FROM log GROUP BY 1 ORDER BY 1"
    assert run(["logs", "query", "assistant", "--kind", "traces", "--sql", sql, "--json"]) == 0
    assert out_json(capsys) == [{"tenant": "acme", "calls": 2}, {"tenant": "beta", "calls": 1}]
    assert run(["logs", "query", "assistant", "--kind", "traces", "--json"]) == 0
    assert len(out_json(capsys)) == 8  # type: ignore[arg-type]
    assert run(["logs", "query", "assistant", "--kind", "traces", "--labels"]) == 2
