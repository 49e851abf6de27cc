"""The model page's LLM section on the assistant example, in process, with real data.

The project (:func:`tests.support.llm_dashboard.assistant_story`) has prompt v1 in
production and v2 registered, LLM versions 1 (champion) and 2, twenty traced calls in
the real trace log (two tenants, cache hits, priced), and judge runs on the gold set
for both versions made through the provider stand-in (tests/support/llm_provider.py: a
real HTTP server whose answers are a pure function of the request). The page must show the
tokens, cost per tenant and prompt, cache savings, the judge's regression of version 2
against its bands, κ, the cache benchmark's wrong-hit rate (labelled as such), and the
prompt history as annotations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipyard.ui.data.llm_charts import LLM_PANELS
from tests.support.asgi import AppClient
from tests.support.dashboard_pages import get_page, viewer_session, viewer_token
from tests.support.llm_dashboard import Story, assistant_story
from tests.support.llm_provider import stand_in

CHART = re.compile(
    r'<figure class="chart" id="chart-(llm_[a-z_]+)" data-panel="\1" data-points="(\d+)"'
)
DATA = re.compile(r'<script type="application/json" class="chart-data">(.*?)</script>', re.S)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    with stand_in() as provider:
        yield assistant_story(tmp_path_factory.mktemp("llm") / "assistant", provider.base_url)


@pytest.fixture
def client(story: Story) -> Iterator[AppClient]:
    with viewer_session(story.config, viewer_token(story.config)) as app:
        yield app


def _section(page: str) -> str:
    found = re.search(
        r'<section id="llm" class="llm">(.*)</section>\s*<section class="actions"', page, re.S
    )
    assert found, "no LLM section on the page"
    return found[1]


def test_the_llm_section_draws_every_llm_panel_with_data(client: AppClient, story: Story) -> None:
    section = _section(get_page(client, "/models/assistant"))
    charts = CHART.findall(section)
    assert [panel for panel, _ in charts] == [panel.id for panel in LLM_PANELS]
    points = {panel: int(count) for panel, count in charts}
    for panel in ("llm_tokens", "llm_cost", "llm_cache", "llm_judge", "llm_kappa"):
        assert points[panel] > 0, panel
    assert points["llm_hallucinations"] > 0
    embedded = {c["panel"]["id"]: c for c in map(json.loads, DATA.findall(section))}
    # Prompt history is an annotation on every LLM chart: v1 labelled production.
    for chart in embedded.values():
        texts = [a["text"] for a in chart["annotations"]]
        assert any("production – → 1" in text for text in texts), texts
    # Cost: one line per tenant, and the cache's savings dashed.
    cost = embedded["llm_cost"]
    names = [s["name"] for s in cost["series"]]
    assert names == ["tenant acme", "tenant globex", "saved by the cache"]
    spent = sum(v for s in cost["series"][:2] for v in s["y"] if v)
    assert spent == pytest.approx(story.cost)
    assert sum(v for v in cost["series"][2]["y"] if v) == pytest.approx(story.saved)
    # The judge's chart: both versions' gold runs and the bands under the champion's score.
    judge = embedded["llm_judge"]
    lines = {s["name"]: s for s in judge["series"]}
    assert lines["1 gold"]["y"] == [pytest.approx(4.25)] and lines["1 gold"]["arm"] == "champion"
    assert lines["2 gold"]["y"][0] < 2 and lines["2 gold"]["arm"] == "challenger"
    assert lines["pause band"]["y"][0] == pytest.approx(4.25 - 0.7)
    assert "Version 2 at pause" in judge["note"]


def test_the_summary_tables_and_signals(client: AppClient, story: Story) -> None:
    section = _section(get_page(client, "/models/assistant"))
    requests = re.search(r'id="llm-requests">([^<]+)<', section)
    assert requests and requests[1] == str(story.calls)
    assert f"{story.hits / story.calls * 4:.0f}" == "1"  # one call in four hit the cache
    assert 'id="llm-hit-rate">25.0 %' in section
    tenants = re.search(r'id="llm-tenants">(.*?)</div>\s*<div id="llm-prompts"', section, re.S)
    assert tenants and "acme" in tenants[1] and "globex" in tenants[1]
    assert "assistant-system/1" in section and "assistant-system/2" in section
    signal = re.search(
        r'<tr class="signal" data-signal="llm:judge" data-version="2" data-level="([a-z]+)">',
        section,
    )
    assert signal and signal[1] == "pause"
    assert 'data-signal="llm:hallucination" data-version="2" data-level="pause"' in section
    history = re.search(r'<table class="rows" id="llm-prompt-history">(.*?)</table>', section, re.S)
    assert history and "production – → 1" in history[1] and "version 2 registered" in history[1]


def test_a_script_gets_the_llm_section_as_json(client: AppClient, story: Story) -> None:
    status, _, body = client.call("/models/assistant", headers={"accept": "application/json"})
    assert status == 200
    llm = json.loads(body)["llm"]
    assert llm["totals"]["requests"] == story.calls
    assert llm["totals"]["completion_tokens"] + llm["totals"]["prompt_tokens"] == story.tokens
    assert llm["cache"]["exact_hits"] + llm["cache"]["semantic_hits"] == story.hits
    assert llm["cache"]["saved"] == pytest.approx(story.saved)
    assert {row["tenant"] for row in llm["tenants"]} == {"acme", "globex"}
    kappa = [s for s in llm["signals"] if s["signal"] == "llm:kappa"]
    # A fixed calibration slice: the judge agrees with people as much on every run.
    assert {s["version"]: s["level"] for s in kappa} == {"1": "unknown", "2": "ok"}
    # No judge run checks cache hits (production runs judge provider answers only), so the
    # wrong-hit rate is the cache benchmark's, and says so.
    assert llm["cache"]["wrong_hit_rate"] == 0.0
    assert llm["cache"]["wrong_hits_source"].startswith("the cache benchmark's rate, not this")


def test_a_model_without_llm_data_has_no_llm_section(story: Story, tmp_path: Path) -> None:
    from shipyard.ui.data import llm_view, parse_range
    from tests.support import project_of

    project = project_of(story.config)
    try:
        window = parse_range("1h", None, None, "24h")
        assert llm_view(project, "not-an-llm", window) is None
        view = llm_view(project, "assistant", window, explicit=True)
        assert view is not None and view.totals["requests"] == story.calls
    finally:
        project.close()


def test_an_unreadable_trace_file_is_an_error_on_the_trace_charts(
    client: AppClient, story: Story
) -> None:
    config = story.config
    today = f"date={datetime.now(UTC).date().isoformat()}"
    folder = config.resolve(config.serving.logs) / "traces" / "model=assistant" / today
    assert folder.is_dir()  # the story's calls were logged today
    bad = folder / "part-not-parquet.parquet"
    bad.write_bytes(b"not a parquet file")
    try:
        status, _, body = client.call("/models/assistant", headers={"accept": "application/json"})
        assert status == 200, body[:500]
        charts = {c["panel"]["id"]: c for c in json.loads(body)["llm"]["charts"]}
        for panel in ("llm_tokens", "llm_cost", "llm_cache"):
            assert charts[panel]["error"].startswith("Trace log:"), charts[panel]
        assert charts["llm_judge"]["error"] is None and charts["llm_judge"]["series"]
    finally:
        bad.unlink()


def test_the_fleet_shows_an_llm_models_calls_from_its_traces(
    client: AppClient, story: Story
) -> None:
    status, _, body = client.call("/?range=1h", headers={"accept": "application/json"})
    assert status == 200
    (row,) = [r for r in json.loads(body) if r["model"] == "assistant"]
    assert row["requests_per_second"] == pytest.approx(story.calls / 3600)
    assert row["error_rate"] == 0 and row["latency_ms"]["p50"] is not None
    assert row["champion"] == "1"
