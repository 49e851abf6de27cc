"""A rollback pages the model's owner with the guardrail evidence; a failing route is recorded.

The routes post to local stand-ins for PagerDuty Events API v2 and a generic webhook
(``tests.support.AlertReceiver``), which check what the services check and answer as
they do. Retries never wait: the ``sleep`` seam records the delays instead, or the
backoff is set to 0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.agent import Agent
from shipyard.config import AlertRoute, Config, load_config
from shipyard.delivery import active_rollout, advance, start_rollout
from shipyard.delivery.notify import (
    ROLLOUT_ALERT_DELIVERED,
    ROLLOUT_ALERT_FAILED,
    notify_rollback,
)
from shipyard.delivery.rollout import Rollout
from shipyard.registry import Tracking
from shipyard.store import Store
from tests.support import PD_KEY, AlertReceiver, log_requests, project_of

Receivers = Callable[..., AlertReceiver]


def with_routes(config: Config, *routes: AlertRoute, **monitoring: Any) -> Config:
    settings = config.monitoring.model_copy(update={"routes": list(routes), **monitoring})
    return config.model_copy(update={"monitoring": settings})


# --- the agent pages once on a rollback -----------------------------------------------


def test_a_rollback_pages_the_owner_once_with_the_evidence(
    project: tuple[Config, Store, Tracking], alert_receiver: Receivers
) -> None:
    config, store, _tracking = project
    pagerduty, webhook = alert_receiver("pagerduty"), alert_receiver("webhook")
    config = with_routes(config, pagerduty.route(), webhook.route())
    rollout = start_rollout(
        store,
        "churn",
        "2",
        champion="1",
        step_seconds=0,
        min_requests=50,
        context={"cycle": 12},
    )
    rng = np.random.default_rng(0)
    log_requests(config, "1", rng.normal(2.0, 0.3, 400), "c")
    log_requests(config, "2", rng.normal(6.0, 0.5, 150), "k")
    agent = Agent(project_of(config))
    actions = agent.tick().actions
    assert len(actions) == 1 and "rolled back at canary 10 %" in actions[0]
    assert agent.tick().actions == []  # nothing left to do, and no second page

    assert len(pagerduty.received) == 1
    event = pagerduty.received[0]
    assert event["event_action"] == "trigger" and event["routing_key"] == PD_KEY
    assert event["dedup_key"] == f"shipyard/churn/rollout/{rollout.id}"
    payload = event["payload"]
    assert payload["severity"] == "critical" and payload["source"] == "shipyard/churn"
    assert "roll-out rolled back at canary 10 %" in payload["summary"]
    assert "growth-analytics" in payload["summary"]
    details = payload["custom_details"]
    assert details["owner"] == "growth-analytics" and details["version"] == "2"
    evidence = details["evidence"]
    assert evidence["checks"]["latency"]["verdict"] == "breach"
    assert evidence["checks"]["latency"]["value"] > evidence["checks"]["latency"]["limit"]
    assert evidence["rollout"]["champion"] == "1" and evidence["rollout"]["step"] == "canary 10 %"
    assert evidence["rollout"]["context"] == {"cycle": 12}
    assert details["actions"] == ["rolled back to churn/1"]

    assert len(webhook.received) == 1
    page = webhook.received[0]
    assert page["schema"] == "shipyard.alert/1" and page["severity"] == "critical"
    assert page["signal"] == f"rollout:{rollout.id}" and page["owner"] == "growth-analytics"
    assert page["evidence"]["reason"].startswith("latency")

    delivered = store.events(kind=ROLLOUT_ALERT_DELIVERED)
    assert len(delivered) == 2 and {e.subject for e in delivered} == {"model:churn/2"}
    assert all(e.payload["attempts"] == 1 for e in delivered)
    assert store.events(kind=ROLLOUT_ALERT_FAILED) == []


def test_the_agent_records_a_failing_route_and_carries_on(
    project: tuple[Config, Store, Tracking], alert_receiver: Receivers
) -> None:
    config, store, _tracking = project
    down = alert_receiver("pagerduty", failures=(503,) * 3)
    config = with_routes(config, down.route(), retries=2, backoff_seconds=0.0)
    start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=0)
    rng = np.random.default_rng(1)
    log_requests(config, "1", rng.normal(2.0, 0.3, 300), "c")
    log_requests(config, "2", rng.normal(9.0, 0.3, 300), "k")
    actions = Agent(project_of(config)).tick().actions
    assert "rolled back" in actions[0]
    assert len(actions) == 2 and "rollback alert to" in actions[1] and "503" in actions[1]
    assert active_rollout(store, "churn") is None  # the rollback stands
    assert down.statuses == [503] * 3  # the first attempt and two retries
    failed = store.events(kind=ROLLOUT_ALERT_FAILED)
    assert len(failed) == 1 and failed[0].payload["attempts"] == 3
    assert "HTTP 503" in failed[0].payload["errors"][0]


# --- notify_rollback on its own ------------------------------------------------------


@pytest.fixture
def rolled_back(example_project: Path) -> tuple[Config, Store, Rollout]:
    config = load_config(example_project / "shipyard.yaml", environ={})
    store = Store(f"sqlite:///{example_project}/control.db", actor="tester")
    start_rollout(store, "churn", "4", champion="3", step_seconds=0, min_requests=0)
    evidence = {"reason": "errors: candidate 9 % vs limit 2 %", "checks": {}}
    return config, store, advance(store, "churn", verdict="breach", requests=10, evidence=evidence)


def test_a_refused_event_is_not_retried_and_never_raises(
    rolled_back: tuple[Config, Store, Rollout], alert_receiver: Receivers
) -> None:
    config, store, rollout = rolled_back
    refusing = alert_receiver("pagerduty", failures=(400,))
    delays: list[float] = []
    deliveries = notify_rollback(
        with_routes(config, refusing.route(), retries=4, backoff_seconds=0.5),
        store,
        rollout,
        {"reason": rollout.reason, "checks": {}},
        sleep=delays.append,
    )
    assert [d.ok for d in deliveries] == [False] and deliveries[0].attempts == 1
    assert delays == [] and refusing.statuses == [400]  # a 400 will not get better
    assert store.events(kind=ROLLOUT_ALERT_FAILED)[0].payload["attempts"] == 1


def test_retries_back_off_then_deliver(
    rolled_back: tuple[Config, Store, Rollout], alert_receiver: Receivers
) -> None:
    config, store, rollout = rolled_back
    flaky = alert_receiver("webhook", failures=(502, 502))  # back for the third attempt
    delays: list[float] = []
    deliveries = notify_rollback(
        with_routes(config, flaky.route(), retries=4, backoff_seconds=0.5),
        store,
        rollout,
        {"reason": rollout.reason, "checks": {}},
        sleep=delays.append,
    )
    assert deliveries[0].ok and deliveries[0].attempts == 3
    assert delays == [0.5, 1.0] and flaky.statuses == [502, 502, 200]
    assert store.events(kind=ROLLOUT_ALERT_DELIVERED)[0].payload["attempts"] == 3


def test_a_route_that_cannot_be_built_is_recorded(
    rolled_back: tuple[Config, Store, Rollout],
) -> None:
    config, store, rollout = rolled_back
    route = AlertRoute.model_validate(
        {
            "kind": "pagerduty",
            "url": "https://events.example/v2/enqueue",
            "routing_key": "${PD_KEY}",
        }
    )
    deliveries = notify_rollback(
        with_routes(config, route), store, rollout, {"reason": "x"}, environ={}
    )
    assert deliveries == []
    failed = store.events(kind=ROLLOUT_ALERT_FAILED)
    assert len(failed) == 1 and "PD_KEY" in failed[0].payload["errors"][0]


def test_an_unreachable_route_is_recorded(
    rolled_back: tuple[Config, Store, Rollout], alert_receiver: Receivers
) -> None:
    config, store, rollout = rolled_back
    closed = alert_receiver("webhook")
    route = closed.route()
    closed.close()  # nothing listens on that port any more
    deliveries = notify_rollback(
        with_routes(config, route, retries=1), store, rollout, {}, sleep=lambda _: None
    )
    assert not deliveries[0].ok and deliveries[0].attempts == 2
    assert store.events(kind=ROLLOUT_ALERT_FAILED)[0].payload["route"] == deliveries[0].route


@pytest.fixture
def project(two_versions: tuple[Config, Store, Tracking]) -> tuple[Config, Store, Tracking]:
    return two_versions
