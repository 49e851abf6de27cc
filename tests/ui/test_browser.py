"""The dashboard in a real browser: Debian's chromium on ``shipyard ui`` over a real project.

The project (:mod:`tests.support.dashboard_project`) was served, labelled, monitored,
promoted, rolled back and alerted on; the dashboard runs as ``shipyard ui`` in its own
process. Each test drives chromium through the pages as a person would: refused
without a token, logged in with a viewer's token (every page renders with data, every
chart of the model page has points that plotly drew, nothing failed in the console or
on the network, nothing came from outside the dashboard), refused the rollback button,
and logged in with a deployer's token, rolling churn back from the model page.

The screenshots in ``docs/img/dashboard-*.png`` are made here (1280×900), so the docs
show what the test saw. A run rewrites them only when ``SHIPYARD_TEST_SCREENSHOTS=1`` asks;
otherwise they go to a temporary folder, so ``make test`` leaves the checkout as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shipyard.registry.aliases import alias_moves
from shipyard.ui.panels import panels_for
from tests.support import call, free_port, project_of
from tests.support.browser import VIEWPORT, PageWatch
from tests.support.dashboard_project import KPI, MODEL, QUIET, SHIFTED, Dashboard

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

# The first test builds the project (three trainings, a server, two monitor runs): about
# a minute on an idle laptop, several under `stress --cpu 4` on two cores.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
# Read at import: the per-test fixture clears SHIPYARD_* from the environment.
SHOTS = (
    DOCS_IMG
    if os.environ.get("SHIPYARD_TEST_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="dashboard-screenshots-"))
)
# What plotly leaves in the SVG for a drawn trace: a line or markers, a bar, a heatmap image.
MARKS = "path.js-line, path.point, g.trace.bars path, g.hm image"
# True once plotly has drawn an SVG into every chart of the page (none: at once) and no
# chart is still fetching its data (a KPI chart is marked data-loading until it is drawn).
DRAWN = (
    "() => [...document.querySelectorAll('.chart[data-panel]')]"
    ".every(chart => chart.querySelector('svg.main-svg') && !chart.hasAttribute('data-loading'))"
)
# Long enough for a page of a busy 2-core machine; only a limit, never a pace.
WAIT_MS = 120_000


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile for one visitor: no cookies from another test."""
    fresh = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, timezone_id="UTC")
    fresh.set_default_timeout(WAIT_MS)
    yield fresh
    fresh.close()


def visit(page: Page, url: str, *, secrets: tuple[str, ...] = ()) -> None:
    """Open ``url``, wait until its network has settled and every chart is drawn, and
    check that none of ``secrets`` (token secrets) is anywhere in the page."""
    answer = page.goto(url, wait_until="networkidle")
    assert answer is not None and answer.ok, f"{url}: {answer and answer.status}\n" + (
        page.inner_text("body")
    )
    page.wait_for_function(DRAWN)
    html = page.content()
    assert not [secret for secret in secrets if secret in html], f"a token is in {url}"


def log_in(page: Page, dashboard: Dashboard, token: str, then: str = "/") -> None:
    """Log in through the form, as a person pastes their token."""
    visit(page, f"{dashboard.url}/login?next={then}")
    page.fill("#token", token)
    page.click("#login-form [type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    settle(page)


def settle(page: Page) -> None:
    """Wait until the page's network is idle and every chart is drawn (a KPI chart fetched
    after the page would otherwise be cut off by the next navigation)."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function(DRAWN)


def screenshot(page: Page, name: str) -> None:
    """The visible 1280×900 of the page, for the docs (see :data:`SHOTS`)."""
    shot = SHOTS / f"dashboard-{name}.png"
    page.screenshot(path=str(shot), animations="disabled")
    assert shot.stat().st_size > 10_000, f"{shot} is too small to show the page"


def drawn_charts(page: Page) -> list[tuple[str, int, int]]:
    """Each chart's (panel id, data-points, marks plotly drew in its SVG), in page order (a
    panel may have several charts: one per declared KPI)."""
    found: list[tuple[str, int, int]] = []
    for chart in page.locator(".chart[data-panel]").all():
        panel = chart.get_attribute("data-panel") or ""
        points = int(chart.get_attribute("data-points") or 0)
        found.append((panel, points, chart.locator(MARKS).count()))
    return found


def champion(dashboard: Dashboard) -> str | None:
    """churn's champion as the control plane records it (the last alias move)."""
    project = project_of(dashboard.config)
    try:
        moves = alias_moves(project.store, MODEL, "champion")
        return moves[-1].to_version if moves else None
    finally:
        project.close()


def test_the_watch_reports_what_goes_wrong(browser: Browser) -> None:
    page = browser.new_page()
    try:
        watch = PageWatch(page)
        nowhere = f"http://127.0.0.1:{free_port()}"
        page.set_content(
            f"<img src='{nowhere}/logo.png'><script>console.error('boom');</script>"
            "<script>throw new Error('kaput')</script>"
        )
        page.evaluate("1")  # the page's events have reached the watch
        problems = "\n".join(watch.problems())
        assert "boom" in problems and "kaput" in problems and "logo.png" in problems
        with pytest.raises(AssertionError, match="request outside"):
            watch.assert_clean("http://127.0.0.1:1")
    finally:
        page.close()


def test_pages_without_a_token_are_refused(context: BrowserContext, dashboard: Dashboard) -> None:
    page = context.new_page()
    for path in ("/", f"/models/{MODEL}", f"/models/{MODEL}/versions/2", "/audit", "/maturity"):
        visit(page, dashboard.url + path)
        assert "/login" in page.url, (path, page.url)
        assert page.locator("#login-form").is_visible()
    # A wrong token is refused on the form, and is never shown back.
    page.fill("#token", "shp_not-a-real-token")
    page.click("#login-form [type=submit]")
    page.wait_for_selector("#login-error")
    assert "/login" in page.url and "shp_not-a-real-token" not in page.content()
    # A script without a token gets 401 JSON; a form post with none changes nothing.
    status, headers, body = call(
        f"{dashboard.url}/models/{MODEL}", headers={"Accept": "application/json"}
    )
    assert status == 401 and headers["content-type"].startswith("application/json"), body
    assert "token" in json.loads(body)["error"].lower()
    status, _, _ = call(f"{dashboard.url}/models/{MODEL}/rollback", b"reason=x")
    assert status in (303, 401, 403) and champion(dashboard) == dashboard.champion


def test_a_viewer_sees_every_page_with_data(context: BrowserContext, dashboard: Dashboard) -> None:
    page = context.new_page()
    watch = PageWatch(page)
    secrets = (dashboard.viewer, dashboard.deployer)
    log_in(page, dashboard, dashboard.viewer)

    # Fleet: churn with its champion, challenger share, shadow and the open alerts.
    visit(page, dashboard.url + "/", secrets=secrets)
    order = [r.get_attribute("data-model") for r in page.locator("tr.fleet-row").all()]
    assert order == [MODEL, QUIET], order  # what needs attention first
    row = page.locator(f"tr.fleet-row[data-model={MODEL}]")
    text = row.inner_text()
    assert dashboard.champion in text and "20%" in text.replace(" %", "%"), text
    assert int(row.locator("td").last.inner_text()) >= 1  # the drift alert is open
    screenshot(page, "fleet")

    # Model: one chart per panel, each with points that plotly drew.
    visit(page, dashboard.url + dashboard.model_page, secrets=secrets)
    charts = drawn_charts(page)
    expected = [panel.id for panel in panels_for("model")]
    assert list(dict.fromkeys(panel for panel, _, _ in charts)) == expected, charts
    empty = [chart for chart in charts if chart[1] <= 0 or chart[2] <= 0]
    assert not empty, f"charts without points or without drawn marks: {empty}"
    page_text = page.inner_text("body")
    assert SHIFTED in page_text and KPI in page_text
    assert page.locator("#rollback-form").count() == 1
    screenshot(page, "model")
    # The second screen: traffic, drift and quality, from the traffic chart's top edge.
    page.locator("#chart-traffic").evaluate(
        "chart => window.scrollTo(0, chart.getBoundingClientRect().top + window.scrollY - 12)"
    )
    screenshot(page, "drift")

    # Version: lineage, its scorecard beside the champion's, the card, serving history.
    visit(page, f"{dashboard.url}/models/{MODEL}/versions/{dashboard.champion}", secrets=secrets)
    assert page.locator("#lineage").count() == 1
    assert "roc_auc" in page.inner_text("#scorecard")
    card = page.inner_text("#card").lower()
    assert "verified" in card and "signature and model files match" in card, card
    screenshot(page, "version")

    # Audit: the rollback by the deployer, and the log verifies.
    visit(page, f"{dashboard.url}/audit", secrets=secrets)
    audit_text = page.inner_text("body")
    assert "alias.rollback" in audit_text and dashboard.deployer_name in audit_text
    assert page.locator("#audit-events tr.event").count() >= 10
    assert page.inner_text("#verify-status").strip() == "verified"
    assert "no checkpoint" not in page.inner_text("#checkpoint").lower()
    screenshot(page, "audit")
    visit(page, f"{dashboard.url}/audit?kind=alias.rollback", secrets=secrets)
    found = page.locator("#audit-events tr.event")
    kinds = [found.nth(i).get_attribute("data-kind") for i in range(found.count())]
    assert kinds == ["alias.rollback"], kinds  # the one rollback of the project's history
    visit(page, f"{dashboard.url}/audit?q={dashboard.deployer_name}", secrets=secrets)
    found = page.locator("#audit-events tr.event")
    assert found.count() >= 4  # three promotions, a rollback, a traffic change
    assert all(dashboard.deployer_name in found.nth(i).inner_text() for i in range(found.count()))

    # Maturity: the project placed at a level, characteristic by characteristic.
    visit(page, f"{dashboard.url}/maturity", secrets=secrets)
    assert page.inner_text("#maturity-level").strip() in ("0", "1", "2")
    assert page.locator("#characteristics tbody tr").count() >= 5
    screenshot(page, "maturity")

    watch.assert_clean(dashboard.url)


def test_the_rollback_button_is_refused_for_a_viewer(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    watch = PageWatch(page)
    watch.expect(403, f"/models/{MODEL}/rollback")
    log_in(page, dashboard, dashboard.viewer)
    visit(page, dashboard.url + dashboard.model_page)
    form = page.locator("#rollback-form")
    assert page.locator("#needs-deployer").is_visible()
    form.locator("#rollback-reason").fill("viewer tries")
    with page.expect_response(lambda r: r.url.endswith("/rollback")) as answered:
        form.locator("[type=submit]").click()
    assert answered.value.status == 403
    page.wait_for_selector(".error-page[data-status='403']")
    assert "deployer" in page.inner_text(".error-page")
    assert champion(dashboard) == dashboard.champion
    watch.assert_clean(dashboard.url)


def test_a_deployer_rolls_back_from_the_model_page(
    context: BrowserContext, dashboard: Dashboard
) -> None:
    page = context.new_page()
    watch = PageWatch(page)
    log_in(page, dashboard, dashboard.deployer, then=f"/models/{MODEL}")
    visit(page, dashboard.url + dashboard.model_page)
    reason = "browser test: latency regression"
    form = page.locator("#rollback-form")
    form.locator("#rollback-reason").fill(reason)
    with page.expect_navigation(wait_until="networkidle"):
        form.locator("[type=submit]").click()
    settle(page)
    assert page.locator("#done").is_visible()
    assert page.inner_text("#champion").strip() == dashboard.previous
    assert champion(dashboard) == dashboard.previous
    project = project_of(dashboard.config)
    try:
        move = alias_moves(project.store, MODEL, "champion")[-1]
        event = project.store.events(kind="alias.rollback", limit=1)[0]
    finally:
        project.close()
    assert (move.action, move.actor, move.reason) == ("rollback", dashboard.deployer_name, reason)
    assert event.actor == dashboard.deployer_name and event.role == "deployer"
    assert event.payload.get("to_version", dashboard.previous) == dashboard.previous
    # The dashboard shows it: the fleet's champion moved, the audit log has the event.
    visit(page, dashboard.url + "/")
    assert dashboard.previous in page.locator(f"tr.fleet-row[data-model={MODEL}]").inner_text()
    visit(page, f"{dashboard.url}/audit?q={dashboard.deployer_name}")
    assert reason in page.inner_text("body")
    watch.assert_clean(dashboard.url)
    said = "".join(dashboard.ui_output)
    assert dashboard.deployer not in said and dashboard.viewer not in said
