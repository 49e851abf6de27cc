"""The dashboard's pages in process: a project with a promotion in its log, a viewer's
session on it, and a page fetched as HTML that must not be a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from shipyard.config import Config
from shipyard.registry import Tracking
from shipyard.registry.aliases import move_alias
from shipyard.store import Store
from tests.support import project_of
from tests.support.asgi import AppClient, in_process
from tests.support.logs import log_requests
from tests.support.tokens import token_for

__all__ = ["HTML", "get_page", "promoted_with_traffic", "viewer_session", "viewer_token"]

HTML = {"accept": "text/html"}


def promoted_with_traffic(two_versions: tuple[Config, Store, Tracking]) -> Config:
    """churn/1 then churn/2 champion, 40 requests logged for each version."""
    config, store, tracking = two_versions
    log_requests(config, "1", np.linspace(2.0, 9.0, 40), "a")
    move_alias(store, tracking.client, "churn", "champion", "2", action="promote", reason="better")
    log_requests(config, "2", np.linspace(1.0, 5.0, 40), "b")
    return config


def viewer_token(config: Config, name: str = "vera") -> str:
    """A new viewer's token on the project."""
    admin = project_of(config)
    try:
        return token_for(admin, "viewer", name=name)
    finally:
        admin.close()


@contextmanager
def viewer_session(config: Config, token: str) -> Iterator[AppClient]:
    """The dashboard in process, with ``token`` in its login cookie."""
    from shipyard.ui.app import dashboard_app
    from shipyard.ui.auth import COOKIE

    with in_process(dashboard_app(config)) as app:
        app.http.cookies.set(COOKIE, token)
        yield app


def get_page(client: AppClient, path: str, status: int = 200) -> str:
    """The HTML of ``path``, which must answer ``status`` as HTML and hold no traceback."""
    got, headers, body = client.call(path, headers=HTML)
    text = body.decode()
    assert got == status, text
    assert headers["content-type"].startswith("text/html")
    assert "Traceback" not in text
    return text
