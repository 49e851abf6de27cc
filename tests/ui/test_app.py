"""The dashboard's pages on a real project: fleet, model (charts in the panel list's order,
their data embedded), version, audit (search, paging), maturity; 404 pages that say what
exists, 400 pages with the accepted forms, JSON for scripts, never a traceback."""

from __future__ import annotations

import html
import json
import re

import pytest

from shipyard.config import Config
from shipyard.registry import Tracking
from shipyard.store import Store
from shipyard.ui import panels_for
from shipyard.ui.app import dashboard_app
from shipyard.ui.auth import COOKIE
from tests.support.asgi import AppClient, in_process
from tests.support.dashboard_pages import (
    get_page,
)

HTML = {"accept": "text/html"}
CHART = re.compile(
    r'<figure class="chart" id="chart-(?P<id>[a-z_]+)" data-panel="(?P=id)" '
    r'data-points="(?P<points>\d+)"'
)
DATA = re.compile(r'<script type="application/json" class="chart-data">(.*?)</script>', re.S)


def test_the_fleet_lists_each_model_with_its_champion(client: AppClient) -> None:
    page = get_page(client, "/")
    assert 'data-model="churn"' in page
    assert '<a class="champion" href="/models/churn/versions/2">2</a>' in page
    assert '<option value="24h" selected>' in page  # ui.default_range
    assert 'class="active">Fleet' in page and "vera" in page


def test_the_model_page_draws_every_panel_in_the_lists_order(client: AppClient) -> None:
    page = get_page(client, "/models/churn?range=6h")
    charts = CHART.findall(page)
    assert [panel for panel, _ in charts] == [p.id for p in panels_for("model")]
    points = dict(charts)
    assert int(points["throughput"]) > 0 and int(points["latency"]) > 0
    embedded = [json.loads(text) for text in DATA.findall(page)]
    assert [chart["panel"]["id"] for chart in embedded] == list(points)
    for chart, (_, count) in zip(embedded, charts, strict=True):
        values = sum(len(s["y"]) for s in chart["series"])
        if chart["heatmap"]:
            values += sum(len(row) for row in chart["heatmap"]["z"])
        assert values == int(count), chart["panel"]["id"]
        assert "targets" not in chart["panel"]  # no PromQL shipped to the browser
    throughput = embedded[0]
    assert {s["arm"] for s in throughput["series"]} >= {"champion"}
    assert any(a["kind"] == "alias.promote" for a in throughput["annotations"])
    assert '<option value="6h" selected>' in page
    assert 'id="champion" href="/models/churn/versions/2"' in page
    assert 'id="rollback-form"' in page and 'id="needs-deployer"' in page
    assert "/static/plotly.min.js" in page and "/static/dashboard.js" in page


def test_the_model_page_takes_since_and_until(client: AppClient) -> None:
    page = get_page(client, "/models/churn?since=2026-01-01T00:00:00Z&until=2026-01-02")
    assert "from 2026-01-01 00:00:00 UTC to 2026-01-02 00:00:00 UTC" in page
    assert dict(CHART.findall(page))["throughput"] == "0"  # nothing logged back then


def test_an_unknown_model_or_version_is_a_404_saying_what_exists(client: AppClient) -> None:
    page = html.unescape(get_page(client, "/models/fraud", 404))
    assert "No model named 'fraud'" in page and "churn" in page
    page = html.unescape(get_page(client, "/models/churn/versions/9", 404))
    assert "9" in page and "1, 2" in page
    page = get_page(client, "/nowhere", 404)
    assert "There is no page /nowhere" in page


@pytest.mark.parametrize(
    "query",
    ["range=soon", "range=6x", "since=yesterday", "since=2026-02-01&until=2026-01-01", "range=0h"],
)
def test_a_malformed_range_is_a_400_listing_the_accepted_forms(
    client: AppClient, query: str
) -> None:
    page = get_page(client, f"/models/churn?{query}", 400)
    assert "Accepted: range=15m, 6h or 7d" in page and 'data-status="400"' in page
    status, _, body = client.call(f"/?{query}", headers={"accept": "application/json"})
    assert status == 400 and json.loads(body)["code"] == "bad_request"


def test_the_version_page_shows_lineage_scorecard_card_and_serving(client: AppClient) -> None:
    page = get_page(client, "/models/churn/versions/2")
    for section in ("lineage", "scorecard", "card", "serving"):
        assert f'id="{section}"' in page
    assert 'id="not-evaluated"' in page  # nothing scored it: the page says how to


def test_the_audit_log_is_searched_and_paged(client: AppClient) -> None:
    page = get_page(client, "/audit")
    assert 'id="verify"' in page and 'id="audit-events"' in page
    total = int(re.search(r"(\d+) matching events", page).group(1))  # type: ignore[union-attr]
    assert total >= 3
    page = get_page(client, "/audit?q=better")
    assert "1 matching events" in page and "alias.promote" in page
    page = get_page(client, "/audit?limit=1")
    assert 'id="next-page" href="/audit?q=&amp;kind=&amp;limit=1&amp;offset=1"' in page
    assert 'id="previous-page"' not in page
    page = get_page(client, "/audit?limit=1&offset=1")
    assert 'id="previous-page"' in page
    for bad in ("limit=0", "limit=many", "offset=-1", "limit=100000"):
        assert "must be" in get_page(client, f"/audit?{bad}", 400)


def test_the_maturity_page_shows_the_level_and_roi(client: AppClient) -> None:
    page = get_page(client, "/maturity")
    assert re.search(r'id="maturity-level">[012]<', page)
    assert 'id="characteristics"' in page and 'id="roi-metrics"' in page
    assert "Trend (per 7d)" in page
    page = get_page(client, "/maturity?period=1d")
    assert "Trend (per 1d)" in page and '<option value="1d" selected>' in page
    page = get_page(client, "/maturity?period=soon", 400)
    assert "is not a duration" in page and "7d" in page


def test_scripts_get_each_page_as_json(client: AppClient, viewer: str) -> None:
    header = {"authorization": f"Bearer {viewer}"}
    status, _, body = client.call("/models/churn?range=6h", headers=header)
    view = json.loads(body)
    assert status == 200 and view["model"] == "churn" and view["champion"] == "2"
    status, _, body = client.call("/models/churn/versions/1", headers=header)
    assert status == 200 and json.loads(body)["version"] == "1"
    status, _, body = client.call("/audit?kind=alias.promote", headers=header)
    assert status == 200 and {e["kind"] for e in json.loads(body)["events"]} == {"alias.promote"}
    status, _, body = client.call("/models/nope", headers=header)
    assert status == 404 and json.loads(body)["code"] == "not_found"


def test_an_unreachable_database_is_a_503_page_not_a_traceback(
    project: Config, viewer: str
) -> None:
    unreachable = project.model_copy(
        update={"database_url": "postgresql+psycopg://postgres@127.0.0.1:1/none"}
    )
    with in_process(dashboard_app(unreachable)) as client:
        client.http.cookies.set(COOKIE, viewer)
        status, _, body = client.call("/", headers=HTML)
        text = body.decode()
        assert status == 503, text
        assert "Traceback" not in text and 'id="error-message"' in text
        assert "database" in text
        assert viewer not in text
        status, _, body = client.call("/", headers={"authorization": f"Bearer {viewer}"})
        assert status == 503 and json.loads(body)["code"] == "database_error"


def test_shipyard_ui_prints_its_url_and_serves_the_local_viewer(trained_copy: Config) -> None:
    """``shipyard ui --port 0 --json`` as a real process: its URL, then pages for the OS
    user to read without a token (a local project on 127.0.0.1), refused for other hosts."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.support.servers import call, server_environment
    from tests.support.waiting import wait_for

    shipyard = str(Path(sys.executable).parent / "shipyard")
    config_file = str(trained_copy.root / "shipyard.yaml")
    process = subprocess.Popen(
        [shipyard, "--config", config_file, "ui", "--port", "0", "--json"],
        env=server_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed = "".join(iter(process.stdout.readline, "}\n")) + "}"
        answer = json.loads(printed)
        url = answer["url"]
        assert answer["local_viewer"] is True and url.startswith("http://127.0.0.1:")
        wait_for(lambda: call(f"{url}healthz")[0] == 200, what="shipyard ui to answer")
        status, _, body = call(url, headers=HTML)
        assert status == 200 and b'data-model="churn"' in body and b"(viewer)" in body
        assert call(url, headers={**HTML, "host": "evil.example"})[0] == 400
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Traceback" not in err


def test_numbers_read_without_exponents_and_missing_values_as_a_dash() -> None:
    from shipyard.ui.formatting import duration, measure, money, number, percent, when

    assert money(9.097e-05) == "$0.00009097" and money(12.5) == "$12.50"
    assert money(1234.5) == "$1,234.50" and money(0) == "$0.00"
    assert number(12345.6) == "12,346" and number(3) == "3" and number(0.25) == "0.25"
    assert percent(0.1234) == "12.3 %" and duration(90) == "1.5 min"
    assert when("2026-12-01T09:30:00+00:00") == "2026-12-01 09:30:00 UTC"
    assert money(6.7e-05) == "$0.000067" and money(0.5) == "$0.50"
    assert measure(7.22e-05, "USD") == "0.0000722 USD" and measure(0.25, "ratio") == "25.0 %"
    assert (
        measure(90, "s") == "1.5 min" and measure(3, "promotions per 7d") == "3 promotions per 7d"
    )
    for show in (money, number, percent, duration, when, measure):
        assert show(None) == "—" and show(float("nan")) == "—"


def test_serve_with_ui_serves_the_dashboard_next_to_the_model(
    two_versions: tuple[Config, Store, Tracking],
) -> None:
    """``shipyard serve churn --ui``: the model answers on its port, the dashboard on
    ``ui.port``, and the output names the dashboard's URL."""
    import signal

    from tests.support.servers import ServeProcess, call, free_port, server_environment

    config = two_versions[0]
    port = free_port()
    environ = server_environment(SHIPYARD_UI__PORT=str(port))
    with ServeProcess(config.root / "shipyard.yaml", "churn", args=["--ui"], environ=environ) as s:
        assert f"Dashboard on http://127.0.0.1:{port}/" in s.text
        assert call(f"{s.url}/v2/health/ready")[0] == 200
        status, _, body = call(f"http://127.0.0.1:{port}/", headers=HTML)
        assert status == 200 and b'data-model="churn"' in body
        assert s.process is not None
        s.process.send_signal(signal.SIGINT)  # Ctrl-C: both servers stop, the process ends
        assert s.process.wait(timeout=60) == 0, s.text
    assert "Stopped" in s.text and "Traceback" not in s.text
