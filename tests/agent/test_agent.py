"""The agent advances roll-outs from guardrails computed on real prediction-log files."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.agent import Agent
from shipyard.config import Config
from shipyard.delivery import active_rollout, read_traffic, start_rollout
from shipyard.registry import Tracking
from shipyard.store import Store
from tests.support import PATIENCE, log_requests, project_of, wait_for


def test_a_slow_candidate_is_rolled_back_at_the_first_step(
    project: tuple[Config, Store, Tracking],
) -> None:
    config, store, _tracking = project
    start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=50)
    rng = np.random.default_rng(0)
    log_requests(config, "1", rng.normal(2.0, 0.3, 400), "c")
    log_requests(config, "2", rng.normal(6.0, 0.5, 150), "k")
    actions = Agent(project_of(config)).tick().actions
    assert actions and "rolled back at canary 10 %" in actions[0] and "latency" in actions[0]
    assert active_rollout(store, "churn") is None
    assert read_traffic(store, "churn")[1].empty  # the champion has all traffic back
    rolled = store.events(kind="rollout.rolled_back")[0]
    assert rolled.payload["evidence"]["checks"]["latency"]["verdict"] == "breach"


def test_a_healthy_candidate_walks_the_steps_then_waits_for_promotion_rules(
    project: tuple[Config, Store, Tracking],
) -> None:
    config, store, tracking = project
    start_rollout(
        store, "churn", "2", champion="1", steps=(10, 100), step_seconds=0, min_requests=50
    )
    rng = np.random.default_rng(1)
    agent = Agent(project_of(config))
    log_requests(config, "1", rng.normal(2.0, 0.3, 400), "c")
    log_requests(config, "2", rng.normal(2.0, 0.3, 60), "k")
    assert agent.tick().actions == []  # 60 candidate requests: not enough evidence yet
    log_requests(config, "2", rng.normal(2.0, 0.3, 100), "k1")
    assert agent.tick().actions == ["churn/2: on to canary 100 %"]
    assert read_traffic(store, "churn")[1].challengers == {"2": 1.0}
    # The new step counts only what was logged after it began: nothing yet, so it waits.
    assert agent.tick().actions == []
    log_requests(config, "2", rng.normal(2.0, 0.3, 150), "k2")
    log_requests(config, "1", rng.normal(2.0, 0.3, 150), "c2")
    assert agent.tick().actions == ["churn/2: every step passed"]
    # The example requires an approval and a passing scorecard: promotion waits, once.
    waiting = agent.tick().actions
    assert len(waiting) == 1 and "waiting to be promoted" in waiting[0]
    assert agent.tick().actions == []
    assert len(store.events(kind="rollout.awaiting_promotion")) == 1
    rollout = active_rollout(store, "churn")
    assert rollout is not None and rollout.state == "promoting"
    champion = tracking.client.get_model_version_by_alias("churn", "champion").version
    assert str(champion) == "1"  # never retired before the candidate is promoted


def test_agent_once_from_the_cli(
    project: tuple[Config, Store, Tracking],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shipyard.cli import run

    config, store, _ = project
    monkeypatch.chdir(config.root)
    assert run(["agent", "--once"]) == 0
    assert "Nothing to do." in capsys.readouterr().out
    start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=0)
    rng = np.random.default_rng(2)
    log_requests(config, "1", rng.normal(2.0, 0.3, 200), "c")
    log_requests(config, "2", rng.normal(9.0, 0.3, 200), "k")
    assert run(["agent", "--once"]) == 0
    assert "rolled back" in capsys.readouterr().out
    assert run(["agent", "--once", "--poll", "soon"]) == 2


def test_two_running_agents_act_once(project: tuple[Config, Store, Tracking]) -> None:
    import threading

    from shipyard.delivery.lease import Lease

    config, store, _tracking = project
    start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=0)
    rng = np.random.default_rng(3)
    log_requests(config, "1", rng.normal(2.0, 0.3, 200), "c")
    log_requests(config, "2", rng.normal(9.0, 0.3, 200), "k")
    stop = threading.Event()
    agents = [
        threading.Thread(
            target=Agent(project_of(config), poll=0.05).run,
            # A term far longer than a tick, however busy the machine: the other agent
            # may not take over while the holder still acts.
            args=(stop, Lease(Store(config.db_url, actor="tester"), "agent", ttl=30.0)),
        )
        for _ in range(2)
    ]
    for thread in agents:
        thread.start()
    wait_for(lambda: active_rollout(store, "churn") is None, what="one agent's rollback")
    stop.set()
    for thread in agents:
        thread.join(PATIENCE)
    assert not any(thread.is_alive() for thread in agents)
    assert len(store.events(kind="rollout.rolled_back")) == 1


@pytest.fixture
def project(two_versions: tuple[Config, Store, Tracking]) -> tuple[Config, Store, Tracking]:
    return two_versions
