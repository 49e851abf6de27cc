"""Fixtures of the dashboard's tests: one chromium per session, one served project,
and, per test, a promoted project with traffic and a viewer's in-process session on it.

The first two are expensive (a browser start; three trainings, a model server, two
monitor runs and ``shipyard ui``), so each is built once, and only when a test asks for
it. A module that needs another project or client defines its own ``project`` or
``client`` fixture, which wins over these.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.browser import launch
from tests.support.dashboard_pages import promoted_with_traffic, viewer_session, viewer_token
from tests.support.dashboard_project import Dashboard, dashboard_project

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from shipyard.config import Config
    from shipyard.registry import Tracking
    from shipyard.store import Store
    from tests.support.asgi import AppClient


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


@pytest.fixture
def project(two_versions: tuple[Config, Store, Tracking]) -> Config:
    """churn/1 then churn/2 champion, 40 requests logged for each version."""
    return promoted_with_traffic(two_versions)


@pytest.fixture
def viewer(project: Config) -> str:
    """A viewer's token on :func:`project`."""
    return viewer_token(project)


@pytest.fixture
def client(project: Config, viewer: str) -> Iterator[AppClient]:
    """The dashboard in process on :func:`project`, logged in as :func:`viewer`."""
    with viewer_session(project, viewer) as app:
        yield app
