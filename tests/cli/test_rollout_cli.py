"""``shipyard rollout start|status|pause|resume|promote|abort`` on the example project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.config import load_config
from shipyard.delivery import active_rollout, read_traffic
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.store import Store
from shipyard.training import train


def test_rollout_commands(
    example_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(example_project)
    config = load_config(example_project / "shipyard.yaml", environ={})
    store, tracking = Store(config.db_url), Tracking(config)
    train(config, store=store, tracking=tracking)
    train(config, store=store, tracking=tracking)
    move_alias(store, tracking.client, "churn", "champion", "1", action="promote")

    start = ["rollout", "start", "churn/2", "--steps", "10,50,100", "--step-duration", "5m"]
    assert run([*start, "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["champion"] == "1" and started["step"] == "canary 10 %"
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
