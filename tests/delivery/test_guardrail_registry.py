"""A registered guardrail takes part in every step: its breach rolls the roll-out back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from shipyard.agent import Agent
from shipyard.config import load_config
from shipyard.delivery import active_rollout, read_traffic, start_rollout
from shipyard.delivery.guardrail_registry import (
    Guardrail,
    GuardrailCheck,
    StepLogs,
    register,
    registered_guardrails,
    unregister,
)
from shipyard.delivery.guardrails import GUARDRAILS, evaluate_guardrails
from shipyard.store import Store
from tests.support import log_requests, project_of

CEILING_MS = 5.0


class LatencyCeiling(Guardrail):
    """An absolute ceiling on the candidate's mean latency, whatever the champion's."""

    name = "latency_ceiling"

    def check(self, step: StepLogs) -> GuardrailCheck:
        answered = step.candidate.ok
        if not answered:
            return GuardrailCheck(
                None, None, CEILING_MS, "gathering", 0, True, "No answers yet.", unit="ms"
            )
        mean = step.candidate.mean
        return GuardrailCheck(
            mean,
            None,
            CEILING_MS,
            "breach" if mean > CEILING_MS else "ok",
            answered,
            True,
            f"mean {mean:.3g} ms against an absolute {CEILING_MS:g} ms",
            unit="ms",
        )


@pytest.fixture
def registering() -> Iterator[Callable[[type[Guardrail]], object]]:
    """Register guardrails for one test; they are gone after it."""
    added: list[str] = []

    def add(guardrail: type[Guardrail]) -> object:
        added.append(guardrail.name)
        return register(guardrail)

    yield add
    for name in added:
        unregister(name)
    assert tuple(g.name for g in registered_guardrails()) == GUARDRAILS


def test_a_registered_guardrail_that_breaches_rolls_the_step_back(
    example_project: Path, registering: Callable[[type[Guardrail]], object]
) -> None:
    config = load_config(example_project / "shipyard.yaml", environ={})
    store = Store(config.db_url, actor="tester")
    start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=50)
    rollout = active_rollout(store, "churn")
    assert rollout is not None
    rng = np.random.default_rng(0)
    log_requests(config, "1", rng.normal(8.0, 0.3, 400), "c")
    log_requests(config, "2", rng.normal(8.0, 0.3, 150), "k")  # as fast as the champion
    root = config.resolve(config.serving.logs)
    built_in = evaluate_guardrails(root, rollout, since=rollout.step_started_at)
    assert built_in.verdict == "pass", built_in.reason  # the built-ins see nothing wrong

    registering(LatencyCeiling)
    actions = Agent(project_of(config)).tick().actions

    assert actions and "rolled back at canary 10 %" in actions[0]
    assert "latency_ceiling: candidate 8" in actions[0]
    assert active_rollout(store, "churn") is None
    assert read_traffic(store, "churn")[1].empty  # the champion has all traffic back
    checks = store.events(kind="rollout.rolled_back")[0].payload["evidence"]["checks"]
    assert list(checks) == [*GUARDRAILS, "latency_ceiling"]  # after the built-ins
    assert checks["latency_ceiling"]["verdict"] == "breach"
    assert checks["latency_ceiling"]["limit"] == CEILING_MS
    assert all(checks[name]["verdict"] in ("ok", "n/a", "gathering") for name in GUARDRAILS)
    store.close()
