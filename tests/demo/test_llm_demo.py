"""``shipyard demo --llm``: the LLM loop end to end, offline, and the page it leaves.

The provider is the deterministic stand-in (shipyard.demo.provider.StandInProvider, the
suite's one stand-in: a real HTTP server whose answers are a pure function of the
request); the gateway is a real ``shipyard serve`` child process, the traffic the real
``openai`` client, the pager the demo's local stand-in. Prompt v1 goes to production,
v2 is canaried, the agent's judge run flags v2 (it drops the facts the gold answers
need) and rolls it back; the dashboard's LLM section then shows cost and cache savings.
No time limit is asserted: the demo's speed is measured, not tested.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.store import Store
from tests.support.dashboard_pages import get_page, viewer_session, viewer_token
from tests.support.projects import load


@pytest.mark.timeout(600)
def test_the_llm_demo_rolls_back_the_regressing_prompt_and_shows_the_savings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "assistant"
    code = run(["demo", "--llm", "--folder", str(folder), "--json"])
    printed = capsys.readouterr().out
    assert code == 0, printed[-4000:]
    summary = json.loads(printed[printed.rindex('{\n  "workspace"') :])
    assert summary["rolled_back"] is True and summary["champion_after"] == "1"
    assert summary["champion_score"] == pytest.approx(4.25)
    assert summary["candidate_score"] < summary["champion_score"] - 0.7  # past the pause band
    assert summary["candidate_calls"] > 0 and summary["failed_calls"] == 0
    assert 0 < summary["cache_hits"] <= summary["cache_lookups"] <= summary["calls"]
    assert summary["cost"] > 0 and summary["saved"] > 0
    assert summary["paged"] and "pause" in summary["paged"]

    # The audit log holds the rollback: the roll-out of version 2 ended rolled back.
    store = Store(f"sqlite:///{folder / '.shipyard' / 'shipyard.db'}", actor="tester")
    try:
        ended = store.events(kind="rollout.rolled_back")
        assert ended and ended[0].subject == "model:assistant/2"
        assert "judge score fell" in str(ended[0].payload.get("reason"))
        labelled = [e.payload["to_version"] for e in store.events(kind="prompt.labelled")]
        assert sorted(labelled) == ["1", "2"]  # production → v1, staging → v2
    finally:
        store.close()

    # The page: the LLM section with the demo's cost and savings.
    config = load(folder)
    with viewer_session(config, viewer_token(config)) as client:
        page = get_page(client, "/models/assistant")
        status, _, body = client.call("/models/assistant", headers={"accept": "application/json"})
    assert status == 200 and 'id="llm"' in page and "saved by the cache" in page
    llm = json.loads(body)["llm"]
    assert llm["totals"]["requests"] == summary["calls"]
    assert llm["totals"]["cost"] == pytest.approx(summary["cost"], abs=1e-6)
    assert llm["cache"]["saved"] == pytest.approx(summary["saved"], abs=1e-6)
    # A call is one hit however many of its spans carry the cache result.
    assert llm["cache"]["exact_hits"] + llm["cache"]["semantic_hits"] == summary["cache_hits"]
    assert llm["cache"]["lookups"] == summary["cache_lookups"]
    judge = {(s["signal"], s["version"]): s["level"] for s in llm["signals"]}
    assert judge[("llm:judge", "2")] == "pause"
    versions = re.findall(r'data-signal="llm:judge" data-version="(\d+)"', page)
    assert "2" in versions
