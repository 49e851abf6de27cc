"""Alerting end to end: signals in, events and HTTP posts out.

The routes post to real HTTP servers on 127.0.0.1 standing in for a webhook, Slack and
PagerDuty, which tests cannot reach (``tests.support.AlertReceiver``): each checks the
body against the service's documented format and answers as the service does. Retries
never wait: the ``sleep`` seam records the delays instead.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shipyard.config import Config
from shipyard.delivery import read_traffic
from shipyard.errors import ConfigError
from shipyard.monitoring import KL_BANDS, PSI_BANDS
from shipyard.monitoring.alerting import (
    ALERT_DELIVERED,
    ALERT_DELIVERY_FAILED,
    ALERT_OPENED,
    MONITOR_PAUSED,
    RETRAIN_REQUESTED,
    Alert,
    Alerter,
    Level,
    Signal,
)
from shipyard.store import Store
from tests.support import PD_KEY, AlertReceiver

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
Receivers = Callable[..., AlertReceiver]


@pytest.fixture(autouse=True)
def _pd_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PD_KEY", PD_KEY)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path}/s.db", actor="tester")
    yield store
    store.close()


# --- helpers ------------------------------------------------------------------------------


def config(*routes: dict[str, Any], **monitoring: Any) -> Config:
    return Config.model_validate(
        {
            "model": {"name": "churn", "owner": "risk-team"},
            "monitoring": {"routes": list(routes), "retries": 2, "backoff_seconds": 0.5}
            | monitoring,
        }
    )


def webhook(service: AlertReceiver, **extra: Any) -> dict[str, Any]:
    return {"kind": "webhook", "url": service.url, **extra}


def slack(service: AlertReceiver, **extra: Any) -> dict[str, Any]:
    return {"kind": "slack", "url": service.url, **extra}


def pagerduty(service: AlertReceiver, **extra: Any) -> dict[str, Any]:
    return {"kind": "pagerduty", "url": service.url, "routing_key": "${PD_KEY}", **extra}


def signal(
    level: Level | None,
    score: float | None = 0.3,
    name: str = "feature:age",
    evidence: dict[str, Any] | None = None,
) -> Signal:
    return Signal(
        "churn", "3", name, level, score, bands=PSI_BANDS, evidence=evidence or {"n": 5000}
    )


class Alerts:
    """An Alerter whose clock is fixed and whose sleeps are recorded."""

    def __init__(self, cfg: Config, store: Store) -> None:
        self.sleeps: list[float] = []
        self.alerter = Alerter(cfg, store, clock=lambda: NOW, sleep=self.sleeps.append)

    def __call__(self, *signals: Signal) -> Any:
        return self.alerter.process(signals)


def events(store: Store, kind: str) -> list[Any]:
    return list(reversed(store.events(kind=kind, limit=1000)))


# --- payload formats ---------------------------------------------------------------------


def test_webhook_body_is_the_documented_object(
    alert_receiver: Receivers, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "s3cret")
    hook = alert_receiver("webhook")
    alerts = Alerts(config(webhook(hook, headers={"Authorization": "Bearer ${HOOK_TOKEN}"})), store)
    evidence = {"method": "psi", "p": np.float64(0.25), "bins": np.array([1, 2]), "x": np.nan}

    outcome = alerts(signal("retrain", score=0.31, evidence=evidence))

    assert [a.status for a in outcome.opened] == ["opened"]
    (body,) = hook.received
    assert body == {
        "schema": "shipyard.alert/1",
        "status": "opened",
        "model": "churn",
        "version": "3",
        "signal": "feature:age",
        "level": "retrain",
        "previous_level": None,
        "severity": "warning",
        "score": 0.31,
        "bands": {"inspect": 0.10, "retrain": 0.25, "pause": 0.40},
        "owner": "risk-team",
        "summary": "churn v3: feature:age score 0.31 reached the retrain band 0.25 "
        "(owner: risk-team)",
        "evidence": {"method": "psi", "p": 0.25, "bins": [1, 2], "x": None},
        "actions": ["retrain requested"],
        "dedup_key": outcome.opened[0].dedup_key,
        "time": NOW.isoformat(),
    }
    assert body["dedup_key"].startswith("shipyard/churn/feature:age/")
    assert hook.headers[0]["Authorization"] == "Bearer s3cret"
    assert hook.headers[0]["Content-Type"] == "application/json"


def test_slack_message_follows_the_incoming_webhook_format(
    alert_receiver: Receivers, store: Store
) -> None:
    channel = alert_receiver("slack")
    alerts = Alerts(config(slack(channel)), store)

    outcome = alerts(signal("inspect", score=0.12, name="feature:<!channel>&x"))

    assert outcome.failed == ()
    assert channel.statuses == [200]  # the stand-in accepted the blocks
    (message,) = channel.received
    header, section, *_rest, context = message["blocks"]
    mrkdwn = [message["text"], section["text"]["text"], context["elements"][0]["text"]]
    assert all("<!channel>" not in text for text in mrkdwn)  # it would ping everyone
    assert "&lt;!channel&gt;&amp;x" in message["text"]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert header["text"]["text"].startswith(":large_blue_circle: Inspect: churn")
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in section["fields"]}
    assert fields["*Owner*"] == "risk-team"
    assert fields["*Level*"] == "inspect"
    assert fields["*Bands*"] == "0.1 / 0.25 / 0.4"
    assert context["type"] == "context"


def test_pagerduty_trigger_and_resolve_share_the_dedup_key(
    alert_receiver: Receivers, store: Store
) -> None:
    pd = alert_receiver("pagerduty")
    alerts = Alerts(config(pagerduty(pd)), store)

    alerts(signal("pause", score=0.55))
    alerts(signal(None, score=0.03))

    assert pd.statuses == [202, 202]
    trigger, resolve = pd.received
    assert trigger["routing_key"] == PD_KEY
    assert trigger["event_action"] == "trigger"
    payload = trigger["payload"]
    assert payload["severity"] == "critical"
    assert payload["source"] == "shipyard/churn"
    assert payload["summary"].startswith("churn v3: feature:age score 0.55 reached the pause")
    assert payload["custom_details"]["owner"] == "risk-team"
    assert payload["custom_details"]["evidence"] == {"n": 5000}
    assert resolve == {
        "routing_key": PD_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


# --- alert life cycle ---------------------------------------------------------------------


def test_a_repeated_breach_pages_once(alert_receiver: Receivers, store: Store) -> None:
    pd, hook = alert_receiver("pagerduty"), alert_receiver("webhook")
    alerts = Alerts(config(pagerduty(pd), webhook(hook)), store)

    first = alerts(signal("retrain"))
    later = [alerts(signal("retrain", score=0.33)), alerts(signal("inspect", score=0.12))]

    assert len(first.opened) == 1 and len(first.deliveries) == 2
    assert all(o.opened == o.escalated == o.deliveries == () for o in later)
    assert len(pd.received) == len(hook.received) == 1
    assert len(events(store, ALERT_OPENED)) == 1
    assert len(events(store, RETRAIN_REQUESTED)) == 1


def test_escalation_renotifies_with_the_same_dedup_key(
    alert_receiver: Receivers, store: Store
) -> None:
    pd = alert_receiver("pagerduty")
    alerts = Alerts(config(pagerduty(pd)), store)

    alerts(signal("inspect", score=0.12))
    escalated = alerts(signal("retrain", score=0.3))
    alerts(signal("retrain", score=0.3))
    alerts(signal("pause", score=0.5))

    assert [e["payload"]["severity"] for e in pd.received] == ["info", "warning", "critical"]
    assert len({e["dedup_key"] for e in pd.received}) == 1
    previous = [e["payload"]["custom_details"]["previous_level"] for e in pd.received]
    assert previous == [None, "inspect", "retrain"]
    assert escalated.escalated[0].previous_level == "inspect" and escalated.opened == ()
    assert len(events(store, RETRAIN_REQUESTED)) == 1  # on crossing retrain, not again on pause


def test_back_within_bands_resolves_once(alert_receiver: Receivers, store: Store) -> None:
    hook, channel = alert_receiver("webhook"), alert_receiver("slack")
    alerts = Alerts(config(webhook(hook), slack(channel)), store)
    first = alerts(signal("inspect", score=0.12)).opened[0]

    resolved = alerts(signal(None, score=0.02))
    again = alerts(signal(None, score=0.01))

    assert [a.dedup_key for a in resolved.resolved] == [first.dedup_key]
    assert again.resolved == () and again.deliveries == ()
    assert [b["status"] for b in hook.received] == ["opened", "resolved"]
    assert hook.received[1]["dedup_key"] == first.dedup_key
    assert channel.received[1]["blocks"][0]["text"]["text"].startswith(":white_check_mark:")
    assert alerts.alerter.open_alert("churn", "feature:age") is None

    reopened = alerts(signal("inspect", score=0.11)).opened[0]
    assert reopened.dedup_key != first.dedup_key


def test_a_signal_without_a_score_does_not_resolve(alert_receiver: Receivers, store: Store) -> None:
    hook = alert_receiver("webhook")
    alerts = Alerts(config(webhook(hook)), store)
    alerts(signal("inspect", score=0.12))

    outcome = alerts(signal(None, score=None))

    assert outcome.resolved == () and len(hook.received) == 1
    assert alerts.alerter.open_alert("churn", "feature:age") is not None


def test_signals_whose_names_share_a_prefix_are_separate_alerts(
    alert_receiver: Receivers, store: Store
) -> None:
    hook = alert_receiver("webhook")
    alerts = Alerts(config(webhook(hook)), store)
    alerts(signal("inspect", name="feature:age"))
    for _ in range(10):  # more events of the longer name than one page of reads
        alerts(signal("inspect", name="feature:age_band"))
        alerts(signal(None, score=0.0, name="feature:age_band"))

    assert alerts.alerter.open_alert("churn", "feature:age") is not None
    assert alerts.alerter.open_alert("churn", "feature:age_band") is None
    assert alerts(signal("inspect", name="feature:age")).deliveries == ()


# --- delivery -----------------------------------------------------------------------------


def test_a_failing_route_is_retried_with_backoff(alert_receiver: Receivers, store: Store) -> None:
    pd = alert_receiver("pagerduty", failures=(500, 500))
    alerts = Alerts(config(pagerduty(pd), retries=4, backoff_seconds=0.5), store)

    outcome = alerts(signal("retrain"))

    assert pd.statuses == [500, 500, 202]
    assert alerts.sleeps == [0.5, 1.0]
    assert [(d.ok, d.attempts) for d in outcome.deliveries] == [(True, 3)]
    (delivered,) = events(store, ALERT_DELIVERED)
    assert delivered.payload["attempts"] == 3
    assert delivered.subject == "alert:churn/feature:age"
    assert events(store, ALERT_DELIVERY_FAILED) == []


def test_a_route_that_is_down_is_recorded_and_the_others_still_deliver(
    alert_receiver: Receivers, store: Store
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = alert_receiver("slack")
    down = {"kind": "webhook", "url": f"http://127.0.0.1:{port}/secret-token/hook"}
    alerts = Alerts(config(down, slack(channel), retries=2, backoff_seconds=0.5), store)

    outcome = alerts(signal("inspect", score=0.12), signal("retrain", name="feature:plan"))

    assert alerts.sleeps == [0.5, 1.0]  # backoff once; the second alert tries the route once
    first, second = outcome.failed
    assert first.attempts == 3 and "Connection" in (first.error or "")
    assert second.attempts == 1
    event, _ = events(store, ALERT_DELIVERY_FAILED)
    assert event.payload["attempts"] == 3 and len(event.payload["errors"]) == 3
    assert event.payload["route"] == "monitoring.routes[0] webhook (127.0.0.1)"
    assert "secret-token" not in json.dumps(event.payload)
    assert len(channel.received) == 2
    assert len(outcome.opened) == 2
    assert alerts.alerter.open_alert("churn", "feature:age") is not None


def test_a_rejected_event_is_not_retried(alert_receiver: Receivers, store: Store) -> None:
    pd = alert_receiver("pagerduty")
    route = pagerduty(pd, routing_key=PD_KEY[:-1])  # 31 characters: PagerDuty says 400
    alerts = Alerts(config(route, retries=4), store)

    (failed,) = alerts(signal("pause")).failed

    assert pd.statuses == [400] and alerts.sleeps == []
    assert failed.error is not None and "HTTP 400" in failed.error
    assert "routing_key" in failed.error
    assert len(events(store, ALERT_DELIVERY_FAILED)) == 1


def test_a_route_that_raises_anything_never_stops_process(store: Store) -> None:
    class Broken:
        name = "broken"
        min_level: Level = "inspect"

        def send(self, alert: Alert) -> None:
            raise RuntimeError("boom")

    alerter = Alerter(config(retries=1), store, routes=[Broken()], sleep=lambda _: None)

    outcome = alerter.process([signal("inspect")])

    assert [(d.route, d.attempts, d.error) for d in outcome.failed] == [("broken", 2, "boom")]


def test_routes_receive_levels_from_their_min_level(
    alert_receiver: Receivers, store: Store
) -> None:
    everything, retrain_up, pause_only = (alert_receiver("webhook") for _ in range(3))
    routes = [
        webhook(everything),
        webhook(retrain_up, min_level="retrain"),
        webhook(pause_only, min_level="pause"),
    ]
    alerts = Alerts(config(*routes), store)

    alerts(
        signal("inspect", name="feature:a"),
        signal("retrain", name="feature:b"),
        signal("pause", name="feature:c"),
    )
    alerts(signal(None, score=0.0, name="feature:b"))

    def seen(service: AlertReceiver) -> list[tuple[str, str]]:
        return [(b["signal"], b["status"]) for b in service.received]

    assert seen(everything) == [
        ("feature:a", "opened"),
        ("feature:b", "opened"),
        ("feature:c", "opened"),
        ("feature:b", "resolved"),
    ]
    assert seen(retrain_up) == [
        ("feature:b", "opened"),
        ("feature:c", "opened"),
        ("feature:b", "resolved"),
    ]
    assert seen(pause_only) == [("feature:c", "opened")]


# --- actions ------------------------------------------------------------------------------


def test_a_retrain_breach_requests_a_retrain_with_the_evidence(store: Store) -> None:
    alerts = Alerts(config(), store)
    evidence = {"method": "kl", "window": "last:5000", "n_current": 5000}

    alerts(signal("inspect", name="feature:income"))
    outcome = alerts(
        Signal("churn", "3", "feature:tenure", "retrain", 0.2, KL_BANDS, evidence),
    )

    assert [s.name for s in outcome.retrain_requested] == ["feature:tenure"]
    (request,) = events(store, RETRAIN_REQUESTED)
    assert request.subject == "model:churn"
    assert request.payload["evidence"] == evidence
    assert request.payload["cause"] == "monitor:feature:tenure"
    assert request.payload["version"] == "3" and request.payload["score"] == 0.2
    assert request.payload["bands"] == {"inspect": 0.05, "retrain": 0.15, "pause": 0.30}
    assert request.payload["dedup_key"] == outcome.opened[0].dedup_key


def test_a_pause_routes_all_traffic_to_the_fallback_version(
    alert_receiver: Receivers, store: Store
) -> None:
    hook = alert_receiver("webhook")
    alerts = Alerts(config(webhook(hook), pause_action="fallback", fallback_version="2"), store)

    outcome = alerts(signal("pause", score=0.6), signal("pause", name="prediction"))
    alerts(signal("pause", score=0.7))  # already open: no second traffic change

    generation, traffic = read_traffic(store, "churn")
    assert traffic.challengers == {"2": 1.0} and generation == 1
    assert [s.name for s in outcome.paused] == ["feature:age", "prediction"]
    (paused,) = events(store, MONITOR_PAUSED)  # one traffic change for the two signals
    assert paused.subject == "model:churn"
    assert paused.payload["fallback_version"] == "2" and paused.payload["generation"] == 1
    assert len(store.events(kind="traffic.changed")) == 1
    assert hook.received[0]["actions"] == ["retrain requested", "all traffic moved to version 2"]


def test_without_a_pause_action_a_pause_only_alerts(store: Store) -> None:
    alerts = Alerts(config(), store)

    outcome = alerts(signal("pause", score=0.6))

    assert outcome.paused == () and len(outcome.opened) == 1
    assert read_traffic(store, "churn")[0] == 0
    assert events(store, MONITOR_PAUSED) == []


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "monitoring", "message"),
    [
        (
            {"kind": "pagerduty", "url": "http://127.0.0.1:9/", "routing_key": "${NOT_SET}"},
            {},
            "NOT_SET",
        ),
        ({"kind": "pagerduty", "url": "http://127.0.0.1:9/"}, {}, "without a routing_key"),
        ({"kind": "slack", "url": "file:///etc/passwd"}, {}, "not an http(s) URL"),
        (None, {"pause_action": "fallback"}, "no fallback_version"),
    ],
)
def test_bad_route_configuration_says_what_to_fix(
    store: Store, route: dict[str, Any] | None, monitoring: dict[str, Any], message: str
) -> None:
    cfg = config(*([route] if route else []), **monitoring)

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        Alerter(cfg, store)

    assert e.value.hint
