"""``shipyard traffic show|set|clear`` against the example project's registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.cli import run
from shipyard.delivery import read_traffic
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from tests.support import TrainedExamples, project_of


def test_traffic_commands(
    trained_examples: TrainedExamples,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = trained_examples.copy(tmp_path / "churn", {}, {}, {})  # churn/1, /2 and /3
    monkeypatch.chdir(config.root)
    store, tracking = project_of(config).store, Tracking(config)
    move_alias(store, tracking.client, "churn", "champion", "1", action="promote")
    before = store.generation("churn")

    assert run(["traffic", "set", "churn", "--challenger", "2=10%", "--shadow", "3"]) == 0
    generation, settings = read_traffic(store, "churn")
    assert generation == before + 1
    assert settings.challengers == {"2": 0.1} and settings.shadow == "3"
    assert settings.shadow_share == 1.0
    assert store.events(kind="traffic.changed")[0].payload["challengers"] == {"2": 0.1}
    capsys.readouterr()

    assert run(["traffic", "show", "churn", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["champion"] == {"version": "1", "weight": pytest.approx(0.9)}
    assert shown["challengers"] == {"2": 0.1}
    assert run(["traffic", "show", "churn"]) == 0
    assert "challenger" in capsys.readouterr().out

    # Mistakes are refused with a hint, and change nothing.
    assert run(["traffic", "set", "churn", "--challenger", "2"]) == 2
    assert "VERSION=SHARE" in capsys.readouterr().err
    assert run(["traffic", "set", "churn", "--challenger", "2=0.7", "--challenger", "3=0.6"]) == 2
    assert "more than all traffic" in capsys.readouterr().err
    assert run(["traffic", "set", "churn", "--challenger", "9=0.1"]) == 3
    assert read_traffic(store, "churn")[1].challengers == {"2": 0.1}

    assert run(["traffic", "clear", "churn"]) == 0
    generation, settings = read_traffic(store, "churn")
    assert settings.empty and generation == before + 2
