"""A registered CT gate runs in its place in every cycle: its evidence is recorded, its
failure halts the cycle. Real training, MLflow, SQLite and the churn example."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipyard.config import Config, load_config
from shipyard.delivery.rollout import active_rollout
from shipyard.pipelines import ContinuousTraining, manual_trigger
from shipyard.pipelines.gate_registry import (
    CycleRun,
    Gate,
    GateEvidence,
    GateResult,
    register,
    registered_gates,
    unregister,
)
from shipyard.pipelines.gates import gate_names, gate_summary
from tests.support import project_of

BUILT_IN = ("validate", "retrain", "scorecard", "feature_skew")


@dataclass(frozen=True)
class RowBudget(GateEvidence):
    """How many rows the retrain would use, against the most it may."""

    rows: int
    most: int


class WithinRowBudget(Gate):
    """Refuse to retrain on more rows than a budget allows (say, for the training bill)."""

    name = "row_budget"
    most = 10_000

    def describe(self, cycle: CycleRun) -> str:
        return "checking the row budget"

    def run(self, cycle: CycleRun) -> GateResult:
        assert cycle.window is not None  # the validate gate ran first
        evidence = RowBudget(cycle.window.rows, self.most)
        cycle.rollout_context["row_budget"] = self.most
        passed = cycle.window.rows <= self.most
        return GateResult(passed, evidence, reason=f"more than {self.most} rows to train on")

    def summary(self, evidence: MappingABC[str, Any]) -> str:
        return f"{evidence['rows']} of at most {evidence['most']} rows"


class TinyRowBudget(WithinRowBudget):
    most = 100


@pytest.fixture
def registering() -> Iterator[Callable[..., object]]:
    """Register gates for one test; they are gone after it."""
    added: list[str] = []

    def add(gate: type[Gate], **where: Any) -> object:
        added.append(gate.name)
        return register(gate, **where)

    yield add
    for name in added:
        unregister(name)
    assert tuple(gate.name for gate in registered_gates()) == BUILT_IN


@pytest.fixture
def config(example_project: Path) -> Config:
    """The churn example with a light scorecard (no latency bound: the machine may be busy)."""
    (example_project / "scorecard.yaml").write_text(
        yaml.safe_dump({"primary": {"metric": "roc_auc", "min": 0.7}})
    )
    return load_config(example_project / "shipyard.yaml", environ={})


def test_a_registered_gate_runs_in_its_place(
    config: Config, registering: Callable[..., object]
) -> None:
    registering(WithinRowBudget, before="retrain")
    said: list[str] = []
    project = project_of(config)

    cycle = ContinuousTraining(project).run(manual_trigger(), force=True, step=said.append)

    assert cycle.state == "running", cycle.reason
    assert [g["gate"] for g in cycle.gates] == [
        "validate",
        "row_budget",
        "retrain",
        "scorecard",
        "feature_skew",
    ]
    assert said[:3] == [
        "Gate 1: validating the new data",
        "Gate 2: checking the row budget",
        "Gate 3: retraining on 3000 rows",
    ]
    assert said[4].startswith("Gate 5: checking the served features")
    assert said[5].startswith("Gates 6–8: shadow, canary steps, promotion")
    budget = cycle.gate("row_budget")
    assert budget is not None and budget["status"] == "passed"
    assert budget["evidence"] == {"rows": 3000, "most": 10_000}
    assert gate_summary(budget) == "3000 of at most 10000 rows"
    assert gate_names()[:4] == ("validate", "row_budget", "retrain", "scorecard")  # ct status
    rollout = active_rollout(project.store, "churn")
    assert rollout is not None and rollout.candidate == cycle.candidate == "1"
    context = rollout.history[0]["evidence"]
    assert context["row_budget"] == 10_000 and context["cycle"] == cycle.id
    project.close()


def test_a_registered_gate_that_fails_halts_the_cycle(
    config: Config, registering: Callable[..., object]
) -> None:
    registering(TinyRowBudget, before="retrain")
    project = project_of(config)

    cycle = ContinuousTraining(project).run(manual_trigger(), force=True)

    assert cycle.state == "halted"
    assert cycle.reason == "row_budget: more than 100 rows to train on"
    assert [(g["gate"], g["status"]) for g in cycle.gates] == [
        ("validate", "passed"),
        ("row_budget", "failed"),
    ]
    assert project.client.search_model_versions("name='churn'") == []  # nothing trained
    assert active_rollout(project.store, "churn") is None
    project.close()


def test_a_gate_placed_before_one_that_is_not_registered_is_refused(
    registering: Callable[..., object],
) -> None:
    with pytest.raises(ValueError, match="no gate 'deploy'"):
        register(WithinRowBudget, before="deploy")
    assert "row_budget" not in [gate.name for gate in registered_gates()]
