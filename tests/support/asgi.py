"""An in-process client for API tests: the app's own ASGI calls, no socket, no uvicorn.

Starlette's ``TestClient`` runs the app on one event loop in a helper thread for the
whole ``with`` block (the micro-batcher binds to its loop on first use), runs the
app's lifespan, and lets several threads call at once. Errors come back as the
responses a caller would see, not as exceptions raised in the test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from starlette.testclient import TestClient

__all__ = ["AppClient", "in_process"]


class AppClient:
    """Requests to an app in this process, answered as ``(status, headers, body)``."""

    def __init__(self, client: TestClient) -> None:
        self.http = client  # the underlying HTTPX client, for what ``call`` does not cover

    def call(
        self, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request (POST with a body, else GET): status, lower-cased headers, body."""
        if body is None:
            response = self.http.get(path, headers=dict(headers or {}))
        else:
            response = self.http.post(path, content=body, headers=dict(headers or {}))
        lowered = {name.lower(): value for name, value in response.headers.items()}
        return response.status_code, lowered, response.content


@contextmanager
def in_process(app: Any) -> Iterator[AppClient]:
    """An :class:`AppClient` on ``app`` until the block ends (lifespan included)."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield AppClient(client)
