"""``shipyard rollout start|status|pause|resume|promote|abort`` on the example project."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from shipyard.cli import run
from shipyard.config import Config
from shipyard.delivery import active_rollout, read_traffic, start_rollout
from shipyard.registry import Tracking
from shipyard.store import Store
from tests.support import PATIENCE, log_requests, project_of


def test_rollout_commands(
    two_versions: tuple[Config, Store, Tracking],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, store, _ = two_versions
    monkeypatch.chdir(config.root)
    monkeypatch.setenv("SHIPYARD_DELIVERY__MIN_REQUESTS", "77")  # the default of --min-requests

    start = ["rollout", "start", "churn/2", "--steps", "10,50,100", "--step-duration", "5m"]
    assert run([*start, "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["champion"] == "1" and started["step"] == "canary 10 %"
    assert started["step_seconds"] == 300 and started["min_requests"] == 77
    assert read_traffic(store, "churn")[1].challengers == {"2": 0.1}

    assert run(["rollout", "status", "churn"]) == 0
    out = capsys.readouterr().out
    assert "step 1 of 3" in out and "canary 10 %" in out
    assert run(["rollout", "pause", "churn", "--reason", "looking"]) == 0
    assert run(["rollout", "resume", "churn"]) == 0
    capsys.readouterr()

    # Promotion keeps the project's rules: no passing scorecard and no approval here.
    assert run(["rollout", "promote", "churn"]) != 0
    assert "Traceback" not in capsys.readouterr().err
    rollout = active_rollout(store, "churn")
    assert rollout is not None and rollout.state == "running"

    assert run(["rollout", "abort", "churn", "--reason", "not today"]) == 0
    assert read_traffic(store, "churn")[1].empty and active_rollout(store, "churn") is None
    capsys.readouterr()
    assert run(["rollout", "status", "churn"]) == 0
    assert "no roll-out in progress" in capsys.readouterr().out

    # Mistakes get a message and an exit code, not a traceback.
    assert run([*start[:3], "--steps", "ten"]) == 2
    assert run(["rollout", "start", "churn/1"]) == 2  # already the champion
    assert run(["rollout", "pause", "churn"]) == 3
    err = capsys.readouterr().err
    assert "percentages" in err and "already the champion" in err and "Traceback" not in err


@pytest.fixture
def canary(
    two_versions: tuple[Config, Store, Tracking], monkeypatch: pytest.MonkeyPatch
) -> tuple[Config, Store, Tracking]:
    """churn/2 in a canary roll-out against churn/1, from the project's directory."""
    config, store, tracking = two_versions
    monkeypatch.chdir(config.root)
    start_rollout(store, "churn", "2", champion="1", step_seconds=600, min_requests=50)
    return config, store, tracking


def test_status_shows_each_guardrail_against_its_limit(
    canary: tuple[Config, Store, Tracking], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, _ = canary
    rng = np.random.default_rng(0)
    log_requests(config, "1", rng.normal(10.0, 1.0, 400), "c")
    log_requests(config, "2", rng.normal(10.0, 1.0, 60), "k")
    assert run(["rollout", "status", "churn"]) == 0
    out = capsys.readouterr().out
    assert "Traffic: champion 1 90 %, candidate 2 10 %" in out
    left = re.search(r"At step 1 of 3 \(canary 10 %\), (\d+) s left", out)
    assert left and 0 < int(left[1]) <= 600, out  # however long the set-up took
    assert "needs 50 requests (60 so far)" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
    assert "12.5 ms" in rows["latency"] and "gathering" in rows["latency"]  # 1.25 × 10 ms
    assert " 60 " in rows["errors"] and " 1 % " in rows["errors"]  # champion 0 % + 1 point
    assert "18.5 ms" in rows["latency_p99"]  # the champion's p99 × 1.5
    assert "n/a" in rows["disagreement"] and "No labels yet." in out

    log_requests(config, "2", rng.normal(10.0, 1.0, 100), "k2")
    assert run(["rollout", "status", "churn", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["step"] == "canary 10 %" and status["history"][0]["to"] == "running"
    guardrails = status["guardrails"]
    assert guardrails["verdict"] == "pass" and guardrails["requests"] == 160
    latency = guardrails["checks"]["latency"]
    assert latency["verdict"] == "ok" and latency["samples"] == 160
    assert latency["limit"] == pytest.approx(1.25 * latency["champion"])


def test_status_watch_follows_the_roll_out_until_the_agent_rolls_it_back(
    canary: tuple[Config, Store, Tracking], capsys: pytest.CaptureFixture[str]
) -> None:
    import threading

    from shipyard.agent import Agent

    config, _, _tracking = canary
    rng = np.random.default_rng(1)
    log_requests(config, "1", rng.normal(2.0, 0.3, 300), "c")
    log_requests(config, "2", rng.normal(9.0, 0.3, 300), "k")
    stop = threading.Event()
    agent = threading.Thread(target=Agent(project_of(config), poll=0.1).run, args=(stop,))
    agent.start()
    try:
        # The watch ends by itself once the roll-out is no longer active.
        assert run(["rollout", "status", "churn", "--watch", "--every", "1s"]) == 0
    finally:
        stop.set()
        agent.join(PATIENCE)
    out = capsys.readouterr().out
    assert "churn/2 was rolled back at canary 10 %: latency" in out
    assert "┘churn" not in out  # the last frame ends its line
    assert active_rollout(Store(config.db_url, actor="tester"), "churn") is None


def test_status_watch_without_a_roll_out_says_how_the_last_one_ended(
    canary: tuple[Config, Store, Tracking], capsys: pytest.CaptureFixture[str]
) -> None:
    from shipyard.delivery import abort_rollout

    _, store, _ = canary
    assert run(["rollout", "status", "churn", "--watch", "--json"]) == 2
    assert "do not go together" in capsys.readouterr().err
    assert run(["rollout", "status", "churn", "--watch", "--every", "soon"]) == 2
    capsys.readouterr()
    abort_rollout(store, "churn", "not today")
    assert run(["rollout", "status", "churn", "--watch"]) == 0
    out = capsys.readouterr().out
    assert "no roll-out in progress" in out and "churn/2 was aborted" in out
    assert "not today" in out
