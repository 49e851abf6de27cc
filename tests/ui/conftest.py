"""Fixtures of the dashboard's tests: one chromium per session, one served project.

Both are expensive (a browser start; three trainings, a model server, two monitor runs
and ``shipyard ui``), so each is built once, and only when a test asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.browser import launch
from tests.support.dashboard_project import Dashboard, dashboard_project

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless (a skip without it, a failure when CI is set)."""
    with launch() as chromium:
        yield chromium


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The served, monitored churn project with ``shipyard ui`` on it (see
    :mod:`tests.support.dashboard_project`)."""
    with dashboard_project(tmp_path_factory.mktemp("dashboard")) as built:
        yield built
