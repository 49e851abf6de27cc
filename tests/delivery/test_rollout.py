"""The roll-out state machine: steps, traffic per step, pause, abort, rollback, promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.delivery import read_traffic
from shipyard.delivery.rollout import (
    abort_rollout,
    active_rollout,
    advance,
    complete_rollout,
    pause_rollout,
    resume_rollout,
    start_rollout,
)
from shipyard.errors import ConfigError, NotFoundError
from shipyard.store import Store

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path}/control.db", actor="tester")
    return Store(request.getfixturevalue("postgres_url"), actor="tester")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_canary_walks_its_steps_then_hands_over_for_promotion(store: Store) -> None:
    rollout = start_rollout(
        store,
        "churn",
        "4",
        champion="3",
        steps=(10, 50, 100),
        step_seconds=600,
        min_requests=100,
        now=at(0),
    )
    assert rollout.describe_step() == "canary 10 %"
    assert read_traffic(store, "churn")[1].challengers == {"4": 0.1}
    # Passing, but the step has not lasted its 10 minutes yet: stay.
    assert advance(store, "churn", verdict="pass", requests=500, now=at(5)).step_index == 0
    # Long enough, but too few requests: stay.
    assert advance(store, "churn", verdict="pass", requests=50, now=at(11)).step_index == 0
    moved = advance(store, "churn", verdict="pass", requests=500, now=at(11))
    assert moved.step_index == 1 and moved.state == "running"
    assert read_traffic(store, "churn")[1].challengers == {"4": 0.5}
    # The step clock restarted at the move.
    assert advance(store, "churn", verdict="pass", requests=900, now=at(15)).step_index == 1
    advance(store, "churn", verdict="pass", requests=900, now=at(22))
    assert read_traffic(store, "churn")[1].challengers == {"4": 1.0}
    last = advance(store, "churn", verdict="pass", requests=900, now=at(33))
    assert last.state == "promoting"
    done = complete_rollout(store, "churn", now=at(34))
    assert done.state == "promoted" and active_rollout(store, "churn") is None
    assert read_traffic(store, "churn")[1].empty
    assert [h["to"] for h in done.history] == [
        "running",
        "running",
        "running",
        "promoting",
        "promoted",
    ]
    kinds = [e.kind for e in store.events(subject="model:churn/4")]
    assert kinds[0] == "rollout.promoted" and kinds[-1] == "rollout.started"


def test_a_breach_rolls_back_at_once_with_its_evidence(store: Store) -> None:
    start_rollout(store, "churn", "4", champion="3", now=at(0))
    evidence = {"reason": "error rate 3.1 % vs 1.0 %", "p_value": 0.001}
    rolled = advance(store, "churn", verdict="breach", requests=40, evidence=evidence, now=at(1))
    assert rolled.state == "rolled_back" and rolled.reason == "error rate 3.1 % vs 1.0 %"
    assert rolled.history[-1]["evidence"] == {**evidence, "requests": 40}
    assert read_traffic(store, "churn")[1].empty  # the champion has everything back
    assert active_rollout(store, "churn") is None
    # A finished roll-out ignores late verdicts, and a new one may start.
    start_rollout(store, "churn", "5", champion="3", now=at(2))


def test_pause_holds_the_step_and_resume_restarts_its_clock(store: Store) -> None:
    start_rollout(store, "churn", "4", champion="3", step_seconds=600, min_requests=0, now=at(0))
    pause_rollout(store, "churn", "investigating latency", now=at(9))
    held = advance(store, "churn", verdict="pass", requests=999, now=at(20))
    assert held.state == "paused" and held.step_index == 0
    assert read_traffic(store, "churn")[1].challengers == {"4": 0.1}  # traffic unchanged
    resumed = resume_rollout(store, "churn", now=at(20))
    assert resumed.remaining(at(25)) == pytest.approx(300)
    assert advance(store, "churn", verdict="pass", requests=1, now=at(31)).step_index == 1


def test_abort_gives_all_traffic_back(store: Store) -> None:
    start_rollout(store, "churn", "4", champion="3", strategy="shadow", now=at(0))
    settings = read_traffic(store, "churn")[1]
    assert settings.shadow == "4" and settings.shadow_share == 1.0 and not settings.challengers
    aborted = abort_rollout(store, "churn", now=at(1))
    assert aborted.state == "aborted" and read_traffic(store, "churn")[1].empty
    with pytest.raises(NotFoundError, match="no roll-out in progress"):
        abort_rollout(store, "churn")


def test_blue_green_validates_in_shadow_then_switches_everything(store: Store) -> None:
    start_rollout(
        store,
        "churn",
        "4",
        champion="3",
        strategy="bluegreen",
        step_seconds=0,
        min_requests=0,
        now=at(0),
    )
    assert read_traffic(store, "churn")[1].shadow == "4"
    switched = advance(store, "churn", verdict="pass", requests=10, now=at(1))
    assert switched.describe_step() == "live 100 %"
    assert read_traffic(store, "churn")[1].challengers == {"4": 1.0}
    advance(store, "churn", verdict="breach", requests=10, now=at(2))
    assert read_traffic(store, "churn")[1].empty  # instant switch back


def test_bad_plans_are_refused_with_a_hint(store: Store) -> None:
    with pytest.raises(ConfigError, match="must lie in"):
        start_rollout(store, "churn", "4", champion="3", steps=(0, 50))
    with pytest.raises(ConfigError, match="must not go down"):
        start_rollout(store, "churn", "4", champion="3", steps=(50, 10))
    with pytest.raises(ConfigError, match="already the champion"):
        start_rollout(store, "churn", "3", champion="3")
    with pytest.raises(ConfigError, match="Unknown roll-out strategy"):
        start_rollout(store, "churn", "4", champion="3", strategy="yolo")  # type: ignore[arg-type]
    start_rollout(store, "churn", "4", champion="3")
    with pytest.raises(ConfigError, match="already has a roll-out in progress"):
        start_rollout(store, "churn", "5", champion="3")
