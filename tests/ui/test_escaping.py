"""Every value rendered from data is escaped: ``<script>`` fed through a model name, a
version label, a feature (its name and a value), a KPI name and an event's reason
never reaches a page as a tag, in its HTML or in the charts' embedded JSON, while the
JSON still carries the text itself."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
import pytest

from shipyard.config import Config
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.store import MonitorRunRow, Store
from shipyard.store.monitor_runs import save_monitor_run
from shipyard.ui.app import dashboard_app
from shipyard.ui.auth import COOKIE
from tests.support import project_of
from tests.support.asgi import AppClient, in_process
from tests.support.logs import log_requests
from tests.support.projects import load
from tests.support.tokens import token_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser

MODEL = "<script>alert('model')"  # a model name cannot hold "/": no closing tag
LABEL = "<script>alert('label')</script>"
FEATURE = "<script>alert('feature')</script>"
VALUE = "<script>alert('value')</script>"
KPI = "<script>alert('kpi')</script>"
REASON = "<script>alert('reason')</script>"
ALL = (MODEL, LABEL, FEATURE, VALUE, KPI, REASON)

OWN_SCRIPT_TAGS = re.compile(
    r'<script(?: src="/static/(?:plotly\.min\.js\?v=[0-9.]+|dashboard\.js)"'
    r'| type="application/json" class="chart-data")>'
)
DATA = re.compile(r'<script type="application/json" class="chart-data">(.*?)</script>', re.S)


@pytest.fixture
def hostile(two_versions: tuple[Config, Store, Tracking]) -> Config:
    """A project whose data holds ``<script>`` wherever a user's text can go."""
    config, store, tracking = two_versions
    move_alias(store, tracking.client, "churn", "champion", "2", action="promote", reason=REASON)
    log_requests(config, LABEL, np.linspace(1.0, 3.0, 10), "s")
    log_requests(config, "2", np.linspace(1.0, 3.0, 10), "r")
    with PredictionLogWriter(config.resolve(config.serving.logs)) as writer:
        writer.log(
            PredictionBatch(
                request_id="hostile-1",
                time=datetime.now(UTC),
                model=MODEL,
                version="1",
                role="live",
                columns=(FEATURE,),
                matrix=np.array([[1.0]]),
                labels=np.array([0]),
                probabilities=None,
                latency_ms=1.0,
                status="ok",
            )
        )
    save_monitor_run(
        store,
        MonitorRunRow(
            model="churn",
            version="2",
            window_spec="1h",
            rows=20,
            level="inspect",
            result={
                "features": [
                    {
                        "feature": FEATURE,
                        "score": 0.2,
                        "bands": {"inspect": 0.1, "retrain": 0.25, "pause": 0.4},
                        "top_category": VALUE,
                    }
                ]
            },
            created_at=datetime.now(UTC) - timedelta(minutes=5),
        ),
    )
    kpi = (
        "\nkpis:\n"
        f"  - name: {json.dumps(KPI)}\n"
        "    sql: SELECT request_id, 1.0 AS value FROM read_csv('no-such-file.csv')\n"
        "    join: request_id\n"
    )
    with (config.root / "shipyard.yaml").open("a") as yaml_file:
        yaml_file.write(kpi)
    return load(config.root)


@pytest.fixture
def client(hostile: Config) -> Iterator[AppClient]:
    admin = project_of(hostile)
    try:
        token = token_for(admin, "viewer")
    finally:
        admin.close()
    with in_process(dashboard_app(hostile)) as app:
        app.http.cookies.set(COOKIE, token)
        yield app


def _safe(page: str) -> list[object]:
    """Assert no ``<script>`` from the data is a tag; the embedded charts' JSON, parsed."""
    for text in ALL:
        assert text not in page
    tags = re.findall(r"<script[^>]*>", page)
    assert all(OWN_SCRIPT_TAGS.fullmatch(tag) for tag in tags), tags
    assert page.count("<script") == page.count("</script>") == len(tags)
    return [json.loads(found) for found in DATA.findall(page)]


def _get(client: AppClient, path: str) -> tuple[int, str]:
    status, _, body = client.call(path, headers={"accept": "text/html"})
    return status, body.decode()


def test_the_fleet_escapes_a_model_name(client: AppClient, hostile: Config) -> None:
    status, page = _get(client, "/")
    assert status == 200
    _safe(page)
    assert "&lt;script&gt;alert(&#39;model&#39;)" in page
    assert f'href="/models/{quote(MODEL, safe="/")}"' in page


def test_the_model_pages_escape_names_labels_features_and_kpis(client: AppClient) -> None:
    status, page = _get(client, "/models/churn?range=1h")
    assert status == 200, page
    charts = _safe(page)
    carried = json.dumps(charts)
    for text in (LABEL, FEATURE, KPI):
        assert json.dumps(text)[1:-1] in carried  # the text itself reaches the chart
    assert "&lt;script&gt;alert(&#39;kpi&#39;)" in page  # the failing KPI's error
    assert "&lt;script&gt;alert(&#39;reason&#39;)" in page  # the promotion's reason
    status, page = _get(client, f"/models/{quote(MODEL, safe='')}?range=1h")
    assert status == 200, page
    _safe(page)
    assert "<h1>&lt;script&gt;alert(&#39;model&#39;)</h1>" in page


def test_error_pages_escape_what_was_asked_for(client: AppClient) -> None:
    for path in (
        f"/models/{quote(MODEL, safe='')}x",
        f"/models/churn/versions/{quote(LABEL, safe='')}x",
        f"/nowhere{quote(MODEL, safe='')}",
        f"/models/churn?range={quote(MODEL, safe='')}",
        f"/audit?limit={quote(MODEL, safe='')}",
    ):
        status, page = _get(client, path)
        assert status in (400, 404), (path, page)
        _safe(page)


def test_the_audit_and_version_pages_escape_reasons_and_queries(client: AppClient) -> None:
    status, page = _get(client, f"/audit?q={quote(REASON, safe='')}")
    assert status == 200
    _safe(page)
    assert "1 matching events" in page
    status, page = _get(client, "/models/churn/versions/2")
    assert status == 200
    _safe(page)


def test_chromium_shows_markup_in_chart_names_as_text(hostile: Config, browser: Browser) -> None:
    """Plotly reads a subset of HTML in trace names and hover text: a version label with
    markup is drawn as the text itself, no element is made of it, no script runs."""
    from tests.support.browser import VIEWPORT, PageWatch
    from tests.support.servers import serve_in_thread

    marked = "<b>bold</b><img src=x onerror=alert(2)>"
    log_requests(hostile, marked, np.linspace(1.0, 3.0, 10), "m")
    admin = project_of(hostile)
    try:
        token = token_for(admin, "viewer")
    finally:
        admin.close()
    with serve_in_thread(dashboard_app(hostile)) as url:
        page = browser.new_page(viewport=VIEWPORT)
        try:
            watch = PageWatch(page)
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{url}/login")
            page.fill("#token", token)
            page.click("#login-form [type=submit]")
            page.wait_for_url(f"{url}/")
            page.goto(f"{url}/models/churn?range=1h")
            figure = page.locator("figure.chart[data-panel=throughput]")
            figure.locator(".main-svg").first.wait_for()
            legend = figure.locator(".legend").text_content() or ""
            assert f"{marked} champion" in legend or f"{marked} challenger" in legend, legend
            assert page.locator("figure.chart svg img, figure.chart svg b").count() == 0
            assert page.locator("figure.chart .legend tspan[style*='bold']").count() == 0
            heatmap = page.locator("figure.chart[data-panel=feature_drift]")
            assert FEATURE in (heatmap.locator(".main-svg").first.text_content() or "")
            assert dialogs == [] and watch.console == [] and watch.errors == []
        finally:
            page.close()
