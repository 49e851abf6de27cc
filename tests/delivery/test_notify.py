"""A rollback pages the model's owner with the guardrail evidence; a failing route is recorded.

The routes post to real HTTP servers on 127.0.0.1 (stdlib ``http.server`` in a thread)
standing in for PagerDuty Events API v2 (``/v2/enqueue``) and a generic webhook, which
tests cannot reach. The PagerDuty stand-in checks what ``/v2/enqueue`` checks (a
32-character routing key, the event action, summary/source/severity on a trigger) and
answers ``202`` as PagerDuty does; a stand-in can also be told to fail. Retries never
wait: the ``sleep`` seam records the delays instead, or the backoff is set to 0.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
from tests.delivery.requests_log import log_requests, two_versions
from tests.support import project_of

PD_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, as PagerDuty requires


@dataclass
class StandIn:
    """A local HTTP server recording each JSON POST; answers like PagerDuty or a webhook."""

    kind: str  # "pagerduty" or "webhook"
    status: int | None = None  # answer every POST with this status instead
    received: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.received.append(body)
                status = stand_in.status or stand_in.answer(body)
                data = json.dumps({"status": "success" if status < 300 else "error"}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def answer(self, body: dict[str, Any]) -> int:
        if self.kind == "webhook":
            return 200
        payload = body.get("payload") or {}
        valid = (
            len(str(body.get("routing_key", ""))) == 32
            and body.get("event_action") == "trigger"
            and 0 < len(str(body.get("dedup_key", ""))) <= 255
            and 0 < len(payload.get("summary", "")) <= 1024
            and payload.get("source")
            and payload.get("severity") in ("critical", "error", "warning", "info")
        )
        return 202 if valid else 400

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        path = "/v2/enqueue" if self.kind == "pagerduty" else "/hook"
        return f"http://{host!s}:{port}{path}"

    def route(self) -> AlertRoute:
        key = PD_KEY if self.kind == "pagerduty" else None
        return AlertRoute.model_validate({"kind": self.kind, "url": self.url, "routing_key": key})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def stand_ins() -> Iterator[list[StandIn]]:
    started: list[StandIn] = []
    yield started
    for stand_in in started:
        stand_in.close()


def start(started: list[StandIn], kind: str, status: int | None = None) -> StandIn:
    stand_in = StandIn(kind, status)
    started.append(stand_in)
    return stand_in


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def with_routes(config: Config, *routes: AlertRoute, **monitoring: Any) -> Config:
    settings = config.monitoring.model_copy(update={"routes": list(routes), **monitoring})
    return config.model_copy(update={"monitoring": settings})


# --- the agent pages once on a rollback -----------------------------------------------


def test_a_rollback_pages_the_owner_once_with_the_evidence(
    project: tuple[Config, Store, Tracking], stand_ins: list[StandIn]
) -> None:
    config, store, _tracking = project
    pagerduty, webhook = start(stand_ins, "pagerduty"), start(stand_ins, "webhook")
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
    project: tuple[Config, Store, Tracking], stand_ins: list[StandIn]
) -> None:
    config, store, _tracking = project
    down = start(stand_ins, "pagerduty", status=503)
    config = with_routes(config, down.route(), retries=2, backoff_seconds=0.0)
    start_rollout(store, "churn", "2", champion="1", step_seconds=0, min_requests=0)
    rng = np.random.default_rng(1)
    log_requests(config, "1", rng.normal(2.0, 0.3, 300), "c")
    log_requests(config, "2", rng.normal(9.0, 0.3, 300), "k")
    actions = Agent(project_of(config)).tick().actions
    assert "rolled back" in actions[0]
    assert len(actions) == 2 and "rollback alert to" in actions[1] and "503" in actions[1]
    assert active_rollout(store, "churn") is None  # the rollback stands
    assert len(down.received) == 3  # the first attempt and two retries
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
    rolled_back: tuple[Config, Store, Rollout], stand_ins: list[StandIn]
) -> None:
    config, store, rollout = rolled_back
    refusing = start(stand_ins, "pagerduty", status=400)
    delays: list[float] = []
    deliveries = notify_rollback(
        with_routes(config, refusing.route(), retries=4, backoff_seconds=0.5),
        store,
        rollout,
        {"reason": rollout.reason, "checks": {}},
        sleep=delays.append,
    )
    assert [d.ok for d in deliveries] == [False] and deliveries[0].attempts == 1
    assert delays == [] and len(refusing.received) == 1  # a 400 will not get better
    assert store.events(kind=ROLLOUT_ALERT_FAILED)[0].payload["attempts"] == 1


def test_retries_back_off_then_deliver(
    rolled_back: tuple[Config, Store, Rollout], stand_ins: list[StandIn]
) -> None:
    config, store, rollout = rolled_back
    flaky = start(stand_ins, "webhook", status=502)
    delays: list[float] = []

    def recover(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 2:
            flaky.status = None  # the service is back before the third attempt

    deliveries = notify_rollback(
        with_routes(config, flaky.route(), retries=4, backoff_seconds=0.5),
        store,
        rollout,
        {"reason": rollout.reason, "checks": {}},
        sleep=recover,
    )
    assert deliveries[0].ok and deliveries[0].attempts == 3
    assert delays == [0.5, 1.0]
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


def test_an_unreachable_route_is_recorded(rolled_back: tuple[Config, Store, Rollout]) -> None:
    config, store, rollout = rolled_back
    closed = StandIn("webhook")
    route = closed.route()
    closed.close()  # nothing listens on that port any more
    deliveries = notify_rollback(
        with_routes(config, route, retries=1), store, rollout, {}, sleep=lambda _: None
    )
    assert not deliveries[0].ok and deliveries[0].attempts == 2
    assert store.events(kind=ROLLOUT_ALERT_FAILED)[0].payload["route"] == deliveries[0].route


@pytest.fixture
def project(example_project: Path) -> tuple[Config, Store, Tracking]:
    return two_versions(example_project)
