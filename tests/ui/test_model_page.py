"""The model page's follow-ups from the demo: roll-out steps and CT gates as compact tables
(the full evidence folded away), the drift heatmap's colours, the x axis fitted to the data
without an explicit range, and the KPI charts fetched after the page (``/models/{name}/kpis``)."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from shipyard.config import Config
from shipyard.ui.app import dashboard_app
from shipyard.ui.auth import COOKIE
from tests.support import project_of
from tests.support.asgi import AppClient, in_process
from tests.support.dashboard_pages import (
    get_page,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

HTML = {"accept": "text/html"}
CHECK_ROW = re.compile(
    r'<tr class="check" data-guardrail="([^"]+)" data-verdict="([^"]+)"[^>]*>(.*?)</tr>', re.S
)
GATE_ROW = re.compile(
    r'<tr class="gate" data-gate="([^"]+)" data-status="([^"]+)">(.*?)</tr>', re.S
)

# A rolled-back canary step as the guardrails recorded it in `shipyard demo` (two of its six
# checks): every check carries its sequential test's internals.
ROLLED_BACK = {
    "reason": "quality: candidate 31 % vs limit 7.99 % (champion 4.99 %), always-valid p = 0.0134",
    "checks": {
        "errors": {
            "value": 0.0, "champion": 0.0, "limit": 0.01, "verdict": "ok", "samples": 113,
            "required": True, "reason": "No decision yet: e-value 0.727 < 1/alpha = 20.",
            "unit": "share", "p_value": 1.0,
            "test": {"verdict": "continue", "e_value": 0.7265905281985168, "p_value": 1.0,
                     "pass_e_value": 1.2978718055884304, "champion_count": 1039,
                     "candidate_count": 113, "margin": 0.01, "alpha": 0.05},
        },
        "disagreement": {
            "value": 0.5410764872521246, "champion": None, "limit": 0.2, "verdict": "ok",
            "samples": 353, "required": True, "unit": "share",
            "reason": "54.1 % of 353 shadow answers differ from live; excused: not worse.",
            "test": {"verdict": "breach", "e_value": 9.674605473610734e24},
            "excused_by": "quality",
        },
        "quality": {
            "value": 0.3103448275862069, "champion": 0.04990583804143126,
            "limit": 0.07990583804143125, "verdict": "breach", "samples": 116,
            "required": True, "unit": "share", "p_value": 0.013439214309061883,
            "reason": "The candidate is worse than the champion by more than 0.03.",
            "test": {"verdict": "breach", "e_value": 74.40911179798013,
                     "p_value": 0.013439214309061883, "pass_e_value": 0.22342189981520022,
                     "lower": 0.07396255885994243, "upper": 0.44691542022960884},
            "labelled": 1178,
        },
    },
}  # fmt: skip


def _section(page: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', page, re.S)
    assert found, name
    return found[1]


def _cells(row: str) -> list[str]:
    """The text of each cell of a table row."""
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]


def test_roll_out_steps_show_one_row_per_guardrail_and_fold_the_evidence(
    project: Config, client: AppClient
) -> None:
    from shipyard.delivery.rollout import advance, start_rollout
    from shipyard.pipelines.cycles import record_gate, start_cycle

    admin = project_of(project)
    store = admin.store
    start_rollout(store, "churn", "1", champion="2", steps=(0.1, 1.0), step_seconds=60.0,
                  min_requests=10)  # fmt: skip
    advance(store, "churn", verdict="breach", requests=116, evidence=ROLLED_BACK)
    cycle = start_cycle(store, "churn", "drift:feature:age", {"kind": "drift", "level": "retrain"},
                        champion="2")  # fmt: skip
    record_gate(store, cycle.id, "validate", "passed", {"window_rows": 3400, "failure_count": 0})
    record_gate(store, cycle.id, "guards", "failed", {
        "rows_after_trigger": {"allowed": False, "reason": "0 new rows since the trigger fired"}
    })  # fmt: skip
    admin.close()

    rollouts = _section(get_page(client, "/models/churn"), "rollouts")
    rows = CHECK_ROW.findall(rollouts)
    assert [(name, verdict) for name, verdict, _ in rows] == [
        ("errors", "ok"), ("disagreement", "ok"), ("quality", "breach")
    ]  # fmt: skip
    cells = {name: _cells(row) for name, _, row in rows}
    # guardrail | candidate | champion | limit | verdict | samples | p
    assert cells["quality"] == ["quality", "31 %", "4.99 %", "7.99 %", "breach", "116", "0.0134"]
    assert cells["errors"][1:4] == ["0 %", "0 %", "1 %"]
    assert cells["disagreement"][2] == "—" and "excused by quality" in cells["disagreement"][4]
    assert cells["disagreement"][6] == "e = 9.67e+24"  # no p recorded: its e-value
    assert re.search(r'<td class="verdict bad">breach</td>', rollouts)
    assert re.search(r'<td class="verdict good">ok', rollouts)
    # The test internals are only in the folded JSON, never as nested tables.
    assert '<dl class="kv">' not in rollouts
    folded = re.findall(r"<details class=\"evidence\">(.*?)</details>", rollouts, re.S)
    assert len(folded) == 1 and "pass_e_value" in folded[0]
    assert "pass_e_value" not in re.sub(r"<details.*?</details>", "", rollouts, flags=re.S)
    pre = re.search(r"<pre[^>]*>(.*)</pre>", folded[0], re.S)
    assert pre
    shown = json.loads(html.unescape(pre[1]))
    assert shown["checks"]["quality"]["test"]["lower"] == pytest.approx(0.074, abs=1e-3)

    cycles = _section(get_page(client, "/models/churn"), "cycles")
    gates = GATE_ROW.findall(cycles)
    assert [(g, s) for g, s, _ in gates] == [("validate", "passed"), ("guards", "failed")]
    validate, guards = (_cells(row) for _, _, row in gates)
    assert validate[3].startswith("3400 rows, 0 failures")  # gate_summary's line
    assert guards[1] == "failed" and guards[3].startswith("0 new rows since the trigger fired")
    assert '<td class="verdict bad">failed</td>' in cycles
    assert "(drift, level retrain)" in cycles  # the trigger in words, not a dict
    assert "{" not in re.sub(r"<pre.*?</pre>", "", cycles, flags=re.S)


def test_guardrail_rows_take_evidence_of_any_shape() -> None:
    from shipyard.ui.evidence import gate_rows, guardrail_rows

    assert guardrail_rows(None) == [] and guardrail_rows({"note": "by hand"}) == []
    assert guardrail_rows({"checks": {"odd": "text", "bare": {}}})[0].verdict == "—"
    # A gate whose evidence the registered summary cannot read still gets a row.
    odd = {"production": {"metric": "auc", "candidate": None, "champion": None}}
    rows = gate_rows([{"gate": "scorecard", "status": "passed", "evidence": odd}, "junk"])
    assert [(r.gate, r.tone) for r in rows] == [("scorecard", "good")]


@pytest.fixture
def drifted(project: Config) -> Config:
    """Two stored monitor runs: ``tenure`` past its retrain level (2×), ``age`` calm (0.04×)."""
    return _with_runs(project, 2)


def _with_runs(project: Config, runs: int) -> Config:
    """``runs`` stored monitor runs, 30 s apart: ``tenure`` drifted, ``age`` calm."""
    from shipyard.store import MonitorRunRow
    from shipyard.store.monitor_runs import save_monitor_run

    bands = {"inspect": 0.1, "retrain": 0.25, "pause": 0.4}
    admin = project_of(project)
    try:
        for ago in (60, 30)[-runs:]:
            save_monitor_run(
                admin.store,
                MonitorRunRow(
                    model="churn",
                    version="2",
                    window_spec="1h",
                    rows=40,
                    level="retrain",
                    result={
                        "features": [
                            {"feature": "tenure", "score": 0.5, "bands": bands},
                            {"feature": "age", "score": 0.01, "bands": bands},
                        ]
                    },
                    created_at=datetime.now(UTC) - timedelta(seconds=ago),
                ),
            )
    finally:
        admin.close()
    return project


def _logged_in(browser: Browser, url: str, token: str) -> Page:
    from tests.support.browser import VIEWPORT

    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{url}/login")
    page.fill("#token", token)
    page.click("#login-form [type=submit]")
    page.wait_for_url(f"{url}/")
    return page


def _drawn(page: Page, panel: str) -> dict[str, Any]:
    """What plotly drew for ``panel``: its full trace and axes, once it has drawn."""
    figure = page.locator(f"figure.chart[data-panel={panel}]")
    figure.locator(".main-svg").first.wait_for()
    drawn: dict[str, Any] = figure.locator(".plot").evaluate(
        """plot => ({
            trace: {type: plot._fullData[0].type, zmin: plot._fullData[0].zmin,
                    zmax: plot._fullData[0].zmax, reversescale: plot._fullData[0].reversescale,
                    colorscale: plot._fullData[0].colorscale, y: plot._fullData[0].y},
            xrange: plot._fullLayout.xaxis.range,
            autorange: plot.layout.xaxis.autorange,
            cells: (plot._fullData[0].y || []).map((_, i) => [
                plot._fullLayout._size.l + plot._fullLayout.xaxis.d2p(
                    plot._fullData[0].x ? plot._fullData[0].x[0] : plot._fullData[0].x0),
                plot._fullLayout._size.t + plot._fullLayout.yaxis.l2p(i)]),
        })"""
    )
    return drawn


@pytest.mark.parametrize("runs", [2, 1])
def test_the_drifted_feature_is_the_hot_cell_on_a_fixed_scale(
    project: Config, viewer: str, browser: Browser, tmp_path: Path, runs: int
) -> None:
    """Also with a single monitor run, whose one column plotly would draw 1 ms wide."""
    from PIL import Image

    from tests.support.servers import serve_in_thread

    drifted = _with_runs(project, runs)
    with serve_in_thread(dashboard_app(drifted)) as url:
        page = _logged_in(browser, url, viewer)
        try:
            page.goto(f"{url}/models/churn")
            drawn = _drawn(page, "feature_drift")
            shot = tmp_path / "heatmap.png"
            page.locator("figure.chart[data-panel=feature_drift] .plot").screenshot(path=shot)
        finally:
            page.close()
    trace = drawn["trace"]
    assert (trace["zmin"], trace["zmax"], trace["reversescale"]) == (0, 2, True)
    image = Image.open(shot).convert("RGB")
    colours = {
        name: image.getpixel((round(x), round(y)))
        for name, (x, y) in zip(trace["y"], drawn["cells"], strict=True)
    }
    hot, calm = colours["tenure"], colours["age"]
    # YlOrRd reversed: the drifted feature is dark red, the calm one pale yellow.
    assert hot[0] > 100 and hot[1] < 60 and hot[2] < 80, hot
    assert calm[0] > 230 and calm[1] > 230 and calm[2] > 150, calm


def _json(client: AppClient, path: str) -> dict[str, Any]:
    status, _, body = client.call(path, headers={"accept": "application/json"})
    assert status == 200, body
    found: dict[str, Any] = json.loads(body)
    return found


def _span(pair: list[str]) -> timedelta:
    return datetime.fromisoformat(pair[1]) - datetime.fromisoformat(pair[0])


def test_without_a_range_the_axis_fits_the_data_and_an_asked_range_stays_exact(
    client: AppClient,
) -> None:
    fitted = _json(client, "/models/churn")  # the default window is 24 h
    # 80 requests logged within seconds, and the promotion: a minute or two, not a day.
    assert _span(fitted["x_range"]) < timedelta(minutes=5)
    # The page was read again over that extent, so its buckets are seconds, not minutes.
    assert _span([fitted["since"], fitted["until"]]) < timedelta(minutes=30)
    throughput = fitted["charts"][0]
    assert throughput["panel"]["id"] == "throughput"
    x = throughput["series"][0]["x"]
    assert _span([x[0], x[1]]) <= timedelta(seconds=10)
    for asked in ("?range=24h", "?range=6h"):
        exact = _json(client, f"/models/churn{asked}")
        assert exact["x_range"] == [exact["since"], exact["until"]]
        assert _span(exact["x_range"]) == timedelta(hours=int(asked[7:-1]))
    old = _json(client, "/models/churn?since=2026-01-01T00:00:00Z&until=2026-01-02")
    assert old["x_range"] == ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"]


def test_the_extent_ignores_held_steps_and_idle_buckets_and_keeps_inside_the_window() -> None:
    from shipyard.ui.data import TimeRange, x_extent
    from shipyard.ui.panels import panel_named
    from shipyard.ui.views import Annotation, Chart, Series

    since = datetime(2026, 12, 7, tzinfo=UTC)
    until = since + timedelta(hours=24)
    window = TimeRange(since, until, "24h")
    at = [since + timedelta(hours=20, minutes=m) for m in (0, 10, 20)]
    text = [t.isoformat() for t in at]
    edges = [since.isoformat(), until.isoformat()]
    charts = [
        Chart(panel_named("traffic"), series=[Series("1 champion", edges, [1.0, 1.0])]),
        Chart(panel_named("throughput"), series=[Series("1", [edges[0], *text], [0.0, 0, 3, 0])]),
        Chart(panel_named("latency"), annotations=[Annotation(text[2], "alias.promote", "2")]),
    ]
    first, last = x_extent(charts, window, explicit=False)
    # From the only busy bucket to the annotation, a 30-second margin each side (5 % < 30 s).
    assert (first, last) == (at[1] - timedelta(seconds=30), at[2] + timedelta(seconds=30))
    assert x_extent(charts, window, explicit=True) == (since, until)
    assert x_extent(charts[:1], window, explicit=False) == (since, until)  # nothing measured
    late = [Chart(panel_named("latency"), annotations=[Annotation(edges[1], "alert", "x")])]
    assert x_extent(late, window, explicit=False)[1] == until  # never past the window


def test_chromium_draws_every_chart_over_the_pages_x_range(
    drifted: Config, viewer: str, browser: Browser
) -> None:
    from tests.support.servers import serve_in_thread

    with serve_in_thread(dashboard_app(drifted)) as url:
        page = _logged_in(browser, url, viewer)
        try:
            for asked in ("", "?range=24h"):
                page.goto(f"{url}/models/churn{asked}")
                wanted = json.loads(page.locator("#charts").get_attribute("data-x-range") or "")
                for panel in ("throughput", "feature_drift"):
                    drawn = _drawn(page, panel)
                    assert drawn["autorange"] is False
                    shown = [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in drawn["xrange"]]
                    expected = [datetime.fromisoformat(t) for t in wanted]
                    # plotly keeps dates to the tenth of a millisecond
                    gaps = [abs(a - b) for a, b in zip(shown, expected, strict=True)]
                    assert max(gaps) < timedelta(milliseconds=1), (panel, shown, expected)
                span = expected[1] - expected[0]
                assert span == timedelta(hours=24) if asked else span < timedelta(minutes=5)
        finally:
            page.close()


@pytest.fixture
def with_kpis(project: Config) -> Config:
    """Two KPIs: ``converted`` from a CSV of outcomes by request id, ``broken`` whose file
    does not exist (its error must show on its own chart, not fail the page)."""
    from tests.support.projects import load

    rows = "\n".join(f"{p}{i},{(i % 3) / 2}" for p in "ab" for i in range(40))
    (project.root / "outcomes.csv").write_text("request_id,value\n" + rows + "\n")
    with (project.root / "shipyard.yaml").open("a") as yaml_file:
        yaml_file.write(
            "\nkpis:\n"
            "  - name: converted\n"
            "    sql: SELECT request_id, value FROM read_csv('outcomes.csv')\n"
            "    join: request_id\n"
            "  - name: broken\n"
            "    sql: SELECT request_id, 1.0 AS value FROM read_csv('no-such-file.csv')\n"
            "    join: request_id\n"
        )
    return load(project.root)


FIGURE = re.compile(r"<figure ([^>]*)>(.*?)</figure>", re.S)


def test_the_page_leaves_kpi_placeholders_and_kpis_answers_them(
    with_kpis: Config, viewer: str
) -> None:
    with in_process(dashboard_app(with_kpis)) as client:
        client.http.cookies.set(COOKIE, viewer)
        page = get_page(client, "/models/churn")
        kpi = [(head, body) for head, body in FIGURE.findall(page) if 'data-panel="kpi"' in head]
        # One placeholder per declared KPI, marked loading, nothing evaluated: the broken
        # KPI's missing file is not even read, so no error is on the page yet.
        assert len(kpi) == 2 and all(" data-loading" in head for head, _ in kpi)
        assert all('data-points="0"' in head for head, _ in kpi)
        assert "no-such-file" not in page and "chart-error" not in "".join(b for _, b in kpi)
        assert "KPI converted: loading…" in page and "KPI broken: loading…" in page
        url = re.search(r'data-kpis-url="([^"]+)"', page)
        assert url and url[1].startswith("/models/churn/kpis?since=")

        status, headers, body = client.call(html.unescape(url[1]))
        assert status == 200 and headers["content-type"] == "application/json"
        answer = json.loads(body)
        converted, broken = answer["charts"]
        assert converted["points"] > 0 and converted["error"] is None
        assert converted["note"].startswith("KPI converted")
        assert "targets" not in converted["panel"]  # no PromQL shipped to the browser
        assert broken["points"] == 0 and "no-such-file.csv" in broken["error"]

        # Its own range parameters, checked like the page's.
        status, _, body = client.call("/models/churn/kpis?range=soon")
        assert status == 400 and "Accepted" in json.loads(body)["error"]
        status, _, body = client.call("/models/nope/kpis")
        assert status == 404 and "churn" in json.loads(body)["hint"]
        # A script asking for the page's JSON still gets the KPIs evaluated inline.
        inline = [c for c in _json(client, "/models/churn")["charts"] if c["panel"]["id"] == "kpi"]
        assert [bool(c["series"]) for c in inline] == [True, False]
        assert "no-such-file.csv" in inline[1]["error"]

    with in_process(dashboard_app(with_kpis)) as anonymous:
        status, _, body = anonymous.call("/models/churn/kpis")  # JSON even without asking
        assert status == 401 and json.loads(body)["code"] and b"converted" not in body


def test_chromium_fetches_each_kpi_into_its_placeholder(
    with_kpis: Config, viewer: str, browser: Browser
) -> None:
    from playwright.sync_api import expect

    from tests.support.browser import PageWatch
    from tests.support.servers import serve_in_thread

    with serve_in_thread(dashboard_app(with_kpis)) as url:
        page = _logged_in(browser, url, viewer)
        try:
            watch = PageWatch(page)
            page.goto(f"{url}/models/churn")
            expect(page.locator("figure.chart[data-loading]")).to_have_count(0)
            figures = page.locator("figure.chart[data-panel=kpi]")
            assert figures.count() == 2
            converted, broken = figures.nth(0), figures.nth(1)
            assert int(converted.get_attribute("data-points") or 0) > 0
            converted.locator("svg.main-svg").first.wait_for()
            assert "KPI converted" in (converted.locator(".chart-note").text_content() or "")
            assert converted.locator(".chart-error").count() == 0
            assert broken.get_attribute("data-points") == "0"
            assert "no-such-file.csv" in (broken.locator(".chart-error").text_content() or "")
            assert watch.console == [] and watch.errors == []
        finally:
            page.close()
