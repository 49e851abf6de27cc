"""The agent's judge runs, end to end: a regression found by the judge rolls back.

Every provider call goes to the deterministic stand-in provider
(tests/support/llm_provider.py, a real HTTP server on 127.0.0.1) through the real
ProviderPool the agent builds from the project's llm.providers. Alerts go to a local
webhook receiver (tests/support/receivers.py). Versions are registered with plain MLflow
(tests/support/llm_evals.py): v1's prompt gives the model the bank's facts, v2's does not,
so the stand-in judge scores v2 far below v1. Real SQLite store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shipyard.agent import Agent
from shipyard.agent.llm_evals import LlmEvalWatch
from shipyard.config import Config
from shipyard.delivery.rollout import get_rollout, start_rollout
from shipyard.registry.aliases import move_alias
from shipyard.registry.pointers import trusted_version
from shipyard.store import EventKind
from tests.support import AlertReceiver, project_of
from tests.support.llm_evals import GOOD, WORSE, llm_project, register_version
from tests.support.llm_provider import StandInProvider, stand_in

Receivers = Callable[..., AlertReceiver]


@pytest.fixture
def provider() -> Iterator[StandInProvider]:
    with stand_in() as running:
        yield running


def _config(tmp_path: Path, provider: StandInProvider, receiver: AlertReceiver) -> Config:
    config = llm_project(tmp_path, provider)
    settings = config.monitoring.model_copy(update={"routes": [receiver.route()]})
    return config.model_copy(update={"monitoring": settings})


def _events(config: Config, kind: EventKind) -> list[Any]:
    project = project_of(config)
    try:
        return project.store.events(kind=kind.value)
    finally:
        project.close()


def test_a_canary_that_the_judge_finds_worse_is_rolled_back_and_paged(
    tmp_path: Path, provider: StandInProvider, alert_receiver: Receivers
) -> None:
    """Stand-in provider: champion v1, v2 canaried; the agent's first judge run (the
    model was never judged, so it is due at once) finds v2 at the pause band of the judge
    score and stops the roll-out; the owner is paged through the webhook."""
    webhook = alert_receiver("webhook")
    config = _config(tmp_path, provider, webhook)
    v1, v2 = register_version(config, GOOD), register_version(config, WORSE)
    project = project_of(config)
    move_alias(project.store, None, "assistant", "champion", v1, action="promote")
    rollout = start_rollout(project.store, "assistant", v2, champion=v1)

    agent = Agent(project)
    assert agent.llm_evals is not None
    actions = agent.tick().actions
    assert any(f"roll-out {rollout.id} rolled back to assistant/{v1}" in a for a in actions)
    assert get_rollout(project.store, rollout.id).state == "rolled_back"
    assert trusted_version(project.store, "assistant", "champion") == v1  # still serving v1

    breaches = [
        e for e in _events(config, EventKind.LLM_BREACH) if e.payload["role"] == "candidate"
    ]
    judge = next(e for e in breaches if e.payload["signal"] == "llm:judge")
    assert judge.subject == f"model:assistant/{v2}" and judge.payload["level"] == "pause"
    assert "rolled back" in judge.payload["action"]
    assert judge.payload["evidence"]["baseline_version"] == v1
    (rolled,) = _events(config, EventKind.ROLLOUT_ROLLED_BACK)
    assert "LLM judge" in rolled.payload["reason"]

    signals = {body["signal"]: body for body in webhook.received}
    assert signals[f"rollout:{rollout.id}"]["level"] == "pause"  # the rollback page
    assert "LLM judge" in signals[f"rollout:{rollout.id}"]["summary"]
    assert signals[f"llm:judge@v{v2}"]["level"] == "pause"  # and the band's alert
    before = len(webhook.received)
    assert not any("judge" in a for a in agent.tick().actions)  # not due again until 02:00
    assert len(webhook.received) == before
    project.close()


def test_a_champion_that_regresses_after_its_roll_out_goes_back_to_the_previous_one(
    tmp_path: Path, provider: StandInProvider, alert_receiver: Receivers
) -> None:
    """Stand-in provider: v1 (prompt version 1) was champion and judged; v2 (prompt
    version 2, labelled production) replaced it; at the next nightly run v2's gold score
    is far below v1's, so the champion alias goes back to v1 and the prompt's production
    label back to version 1, both audited, and the breach is alerted. Registered with
    the prompt registry and register_llm, as `shipyard prompts register` /
    `shipyard llm register` do."""
    from shipyard.llm.prompts import label_prompt, register_prompt
    from shipyard.llm.registry import register_llm

    webhook = alert_receiver("webhook")
    config = _config(tmp_path, provider, webhook)
    project = project_of(config)
    register_prompt(project, "assistant-system", GOOD, "with the facts")
    label_prompt(project, "assistant-system", "production", "1")
    v1 = register_llm(project, provider="standin", model="chat").version
    register_prompt(project, "assistant-system", WORSE, "friendlier")
    label_prompt(project, "assistant-system", "production", "2")
    v2 = register_llm(project, provider="standin", model="chat").version
    move_alias(project.store, None, "assistant", "champion", v1, action="promote")
    first = Agent(project)
    first.tick()  # the first run: v1 judged (its gold score is the baseline)
    move_alias(project.store, None, "assistant", "champion", v2, action="override")

    tomorrow = datetime.now(UTC) + timedelta(days=1, hours=1)
    agent = Agent(project)
    agent.llm_evals = LlmEvalWatch(project, clock=lambda: tomorrow)  # the next night
    actions = agent.tick().actions
    assert any(f"champion rolled back from {v2} to {v1}" in a for a in actions), actions
    assert trusted_version(project.store, "assistant", "champion") == v1
    (moved,) = _events(config, EventKind.ALIAS_ROLLBACK)
    assert moved.payload["from_version"] == v2 and moved.payload["to_version"] == v1
    assert "LLM judge" in moved.payload["reason"]
    (label,) = [
        e for e in _events(config, EventKind.PROMPT_LABELLED) if e.payload["action"] == "rollback"
    ]
    assert label.subject == "prompt:assistant-system@production"
    assert (label.payload["from_version"], label.payload["to_version"]) == ("2", "1")
    assert any("assistant-system@production from 2 to 1" in a for a in actions)
    breach = next(
        e for e in _events(config, EventKind.LLM_BREACH) if e.payload["signal"] == "llm:judge"
    )
    assert breach.payload["role"] == "champion" and breach.payload["level"] == "pause"
    assert any(b["signal"] == "llm:judge" and b["level"] == "pause" for b in webhook.received)
    project.close()


def test_the_watch_does_nothing_for_a_classical_model(tmp_path: Path) -> None:
    from tests.support import copy_example
    from tests.support.projects import load

    config = load(copy_example(tmp_path / "churn"))
    project = project_of(config)
    assert Agent(project).llm_evals is None
    assert LlmEvalWatch(project).tick() == []
    project.close()


def test_a_canary_at_the_inspect_band_is_alerted_not_rolled_back(
    tmp_path: Path, provider: StandInProvider, alert_receiver: Receivers
) -> None:
    """Stand-in provider: on a four-item gold set, v2 leaves one reference word out of one
    answer, so its score is 0.25 below v1's: the inspect band. The owner is told; the
    roll-out carries on."""
    import json

    items = [
        {"id": f"q{n}", "input": f"question {n}", "reference": words,
         "variables": {"facts": words, "short": short}}
        for n, (words, short) in enumerate(
            [
                ("alpha bravo charlie delta", "alpha bravo charlie"),
                ("echo foxtrot golf hotel", "echo foxtrot golf hotel"),
                ("india juliet kilo lima", "india juliet kilo lima"),
                ("mike november oscar papa", "mike november oscar papa"),
            ]
        )
    ]  # fmt: skip
    webhook = alert_receiver("webhook")
    config = _config(tmp_path, provider, webhook)
    (config.root / "gold.jsonl").write_text(
        "".join(json.dumps(item) + "\n" for item in items), encoding="utf-8"
    )
    v1 = register_version(config, "Facts: {{facts}}")
    v2 = register_version(config, "Facts: {{short}}")
    project = project_of(config)
    move_alias(project.store, None, "assistant", "champion", v1, action="promote")
    rollout = start_rollout(project.store, "assistant", v2, champion=v1)

    actions = Agent(project).tick().actions
    assert any("judge score fell by 0.25 (inspect band" in a for a in actions), actions
    assert get_rollout(project.store, rollout.id).state == "running"
    (breach,) = _events(config, EventKind.LLM_BREACH)
    assert breach.payload["level"] == "inspect" and breach.payload["action"] is None
    (alert,) = webhook.received
    assert alert["signal"] == f"llm:judge@v{v2}" and alert["level"] == "inspect"
    assert alert["actions"] == []
    project.close()
