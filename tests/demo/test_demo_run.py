"""The demo, shortened: both acts on a real 2-worker server with the agent in-process.

Shorter windows and steps (``quick``) and 600 requests before the switch; everything else
is what ``make demo`` runs. The pager is the demo's local stand-in HTTP server. The acts
get deadlines far beyond what they take on an idle machine (about a minute in all), so
only a demo that never finishes fails on a busy one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from shipyard.demo.run import DemoOptions, run_demo
from shipyard.pipelines import list_cycles
from shipyard.store import Store


@pytest.mark.timeout(900)
def test_the_shortened_demo_retrains_after_drift_and_rolls_back_a_worse_candidate(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    folder = tmp_path / "loans"
    summary = run_demo(
        DemoOptions(
            folder=folder,
            quick=True,
            before_switch=600,
            act_one_timeout=300.0,
            act_two_timeout=150.0,
        ),
        Console(file=out, width=120),
    )
    printed = out.getvalue()
    assert summary.ok, (summary.notes, printed[-3000:])
    # Act one: the drift is found after the switch, and the retrained model ships.
    assert summary.false_alarms_before_switch == 0
    assert summary.detection_requests is not None and 0 < summary.detection_requests < 2000
    assert summary.drift_signal is not None and summary.drift_signal.startswith("performance:")
    assert summary.new_champion == "2"
    cycle = summary.cycle or {}
    assert [g["gate"] for g in cycle["gates"]] == [
        "guards",  # the guards' decisions, recorded on every started cycle
        "validate",
        "retrain",
        "scorecard",
        "feature_skew",  # skipped: the demo's model reads no feature views
        "shadow",
        "canary",
        "promote",
    ]
    assert all(g["status"] == "passed" for g in cycle["gates"] if g["gate"] != "feature_skew")
    assert summary.accuracy_new_champion is not None and summary.accuracy_old_after_switch
    assert summary.accuracy_new_champion > summary.accuracy_old_after_switch + 0.3
    # Act two: the worse candidate is rolled back at its first canary step, and paged.
    assert summary.bad_rollback_step is not None and summary.bad_rollback_step.startswith(
        "canary 10 %"
    )
    assert summary.bad_share_during_rollout is not None and summary.bad_share_during_rollout < 0.2
    assert summary.page is not None and "rolled back" in summary.page["summary"]
    assert summary.requests > 2000 and summary.failed_requests == 0
    # The workspace is left to explore, with the summary beside it.
    saved = json.loads((folder / ".shipyard" / "demo-summary.json").read_text())
    assert saved["ok"] is True and saved["new_champion"] == "2"
    store = Store(f"sqlite:///{folder / '.shipyard' / 'shipyard.db'}", actor="tester")
    assert list_cycles(store, "loans")[0].state == "promoted"
    store.close()
    assert "What happened" in printed and "drift detected" in printed
