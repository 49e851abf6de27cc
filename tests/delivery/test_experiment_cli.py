"""``shipyard experiment``: start, status, list and stop, as text and as JSON."""

from __future__ import annotations

import json

import pytest

from shipyard.cli import run
from shipyard.config import Config
from shipyard.registry import Tracking
from shipyard.store import Store
from shipyard.store.traffic import read_traffic


def test_start_status_list_stop(
    two_versions: tuple[Config, Store, Tracking],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, store, _ = two_versions
    monkeypatch.chdir(config.root)
    argv = ["experiment", "start", "churn", "--arms", "1,2", "--split", "70,30"]
    assert run([*argv, "--metric", "accuracy", "--min-effect", "0.05", "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["state"] == "running" and started["split"] == pytest.approx([0.7, 0.3])
    assert read_traffic(store, "churn")[1].challengers == {"2": pytest.approx(0.3)}

    assert run(["experiment", "status", "churn", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["verdict"]["outcome"] == "continue" and status["min_effect"] == 0.05
    assert run(["experiment", "status", "churn"]) == 0
    assert "Waiting for 100 observations" in capsys.readouterr().out

    # A second one is refused with a hint, and no traceback.
    assert run([*argv, "--metric", "accuracy"]) != 0
    assert "experiment stop churn" in capsys.readouterr().err

    # The experiment owns the split: traffic and roll-outs are refused until it ends.
    assert run(["traffic", "set", "churn", "--challenger", "2=50%"]) != 0
    assert "experiment stop churn" in capsys.readouterr().err
    assert run(["traffic", "clear", "churn"]) != 0
    assert "experiment stop churn" in capsys.readouterr().err
    assert run(["rollout", "start", "churn/2"]) != 0
    assert "experiment stop churn" in capsys.readouterr().err
    assert read_traffic(store, "churn")[1].challengers == {"2": pytest.approx(0.3)}

    assert run(["experiment", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["name"] == started["name"]
    assert run(["experiment", "stop", "churn", "--reason", "enough", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "stopped"
    assert read_traffic(store, "churn")[1].empty
    assert run(["experiment", "list"]) == 0
    assert "stopped" in capsys.readouterr().out
    assert run(["experiment", "start", "churn", "--arms", "1,2", "--metric", "r2"]) != 0
    assert "not a per-prediction metric" in capsys.readouterr().err
