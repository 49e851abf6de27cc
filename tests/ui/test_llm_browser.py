"""The LLM section in a real browser: Debian's chromium on ``shipyard ui`` over the assistant
example (prompt v1 in production, v2 judged and regressing, twenty traced calls; judge
runs made through the provider stand-in of tests/support/llm_provider.py, a real HTTP
server whose answers are a pure function of the request).

A viewer logs in and opens the model page: every LLM chart that has data is drawn by
plotly, the summary shows cost and cache savings, version 2's judge signal is at the
pause band, nothing failed in the console or on the network, and nothing came from
outside the dashboard.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shipyard.ui.data.llm_charts import LLM_PANELS
from tests.support.browser import VIEWPORT, PageWatch
from tests.support.dashboard_pages import viewer_token
from tests.support.llm_dashboard import Story, assistant_story
from tests.support.llm_provider import stand_in
from tests.support.servers import UiProcess, server_environment

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MARKS = "path.js-line, path.point"
DRAWN = (
    "() => [...document.querySelectorAll('#llm .chart[data-panel]')].every(chart => "
    "chart.querySelector('svg.main-svg') || chart.querySelector('.plot.empty'))"
)
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Story, str, str]]:
    root = tmp_path_factory.mktemp("llm-browser") / "assistant"
    with stand_in() as provider:
        story = assistant_story(root, provider.base_url)
    token = viewer_token(story.config)
    with UiProcess(root / "shipyard.yaml", server_environment()) as ui:
        yield story, ui.url, token


def test_a_viewer_sees_the_llm_section_drawn(
    browser: Browser, served: tuple[Story, str, str]
) -> None:
    story, url, token = served
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, timezone_id="UTC")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        watch = PageWatch(page)
        page.goto(f"{url}/login?next=/models/assistant", wait_until="networkidle")
        page.fill("#token", token)
        page.click("#login-form [type=submit]")
        page.wait_for_url(lambda at: at.endswith("/models/assistant"))
        page.wait_for_load_state("networkidle")
        page.wait_for_function(DRAWN)

        charts = page.locator("#llm .chart[data-panel]").all()
        assert [c.get_attribute("data-panel") for c in charts] == [p.id for p in LLM_PANELS]
        for chart in charts:
            panel = chart.get_attribute("data-panel")
            points = int(chart.get_attribute("data-points") or 0)
            assert points > 0, panel  # every LLM panel has data in this story
            assert chart.locator(MARKS).count() > 0, f"{panel}: plotly drew nothing"

        summary = page.inner_text("#llm-summary")
        assert f"{story.calls} calls" in summary and "saved by the cache" in summary
        assert page.inner_text("#llm-hit-rate") == "25.0 %"
        row = page.locator('tr.signal[data-signal="llm:judge"][data-version="2"]')
        assert row.get_attribute("data-level") == "pause" and "pause" in row.inner_text()
        assert "production – → 1" in page.inner_text("#llm-prompt-history")
        # The prompt history is drawn on the charts as annotations (plotly's markers).
        assert page.locator("#chart-llm_tokens .annotation").count() >= 1

        shot = Path(tempfile.mkdtemp(prefix="llm-section-")) / "llm-section.png"
        page.locator("#llm").screenshot(path=str(shot), animations="disabled")
        assert shot.stat().st_size > 10_000
        watch.assert_clean(url)
        assert token not in page.content()
    finally:
        context.close()
