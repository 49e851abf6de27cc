"""The pager stand-in receives what Shipyard's webhook route sends, and waits for it."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from shipyard.demo import PagerStandIn
from shipyard.monitoring.alerting import Alert, Level, Signal, WebhookRoute


def alert(level: Level = "pause") -> Alert:
    signal = Signal("loans", "2", "performance:accuracy", level=level, score=0.61)
    return Alert(
        signal,
        level=level,
        status="opened",
        owner="credit-risk",
        dedup_key="loans/performance:accuracy",
        time=datetime.now(UTC),
        actions=("rolled back to loans/1",),
    )


def test_the_webhook_route_pages_the_stand_in() -> None:
    with PagerStandIn() as pager:
        assert pager.url.startswith("http://127.0.0.1:")
        assert pager.pages == []
        WebhookRoute(pager.url).send(alert("retrain"))
        WebhookRoute(pager.url).send(alert("pause"))
        page = pager.wait_for(lambda body: body["level"] == "pause", timeout=5)
        assert page is not None
        assert page["schema"] == "shipyard.alert/1"
        assert page["owner"] == "credit-risk" and page["actions"] == ["rolled back to loans/1"]
        assert [body["level"] for body in pager.pages] == ["retrain", "pause"]
        assert pager.received[0].path == "/pages"


def test_wait_for_wakes_on_a_page_posted_later() -> None:
    with PagerStandIn() as pager:
        threading.Timer(0.2, WebhookRoute(pager.url).send, args=(alert(),)).start()
        page = pager.wait_for(timeout=10)
        assert page is not None and page["signal"] == "performance:accuracy"


def test_wait_for_gives_up_and_non_json_is_refused() -> None:
    with PagerStandIn() as pager:
        assert pager.wait_for(lambda body: body.get("level") == "pause", timeout=0.1) is None
        request = urllib.request.Request(pager.url, data=b"not json", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 400
        assert pager.pages == []


def test_stop_frees_the_port() -> None:
    pager = PagerStandIn().start()
    url = pager.url
    pager.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=2)
