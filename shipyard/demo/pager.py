"""A stand-in for the on-call pager: a local HTTP server that records the alerts it receives.

The demo cannot reach PagerDuty (no network, no account), so its workspace routes
alerts as the generic webhook (``monitoring.routes: [{kind: webhook, url: ...}]``) to
this server on 127.0.0.1, which keeps every JSON body posted to it; the demo shows
them as the pages the model's owner would get. Nothing here is specific to the demo's
payloads: any JSON POST is recorded.

    with PagerStandIn() as pager:
        workspace = create_workspace(folder, pager_url=pager.url)
        ...
        page = pager.wait_for(lambda body: body.get("level") == "pause", timeout=30)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Page", "PagerStandIn"]

_MAX_BODY = 1_000_000


@dataclass(frozen=True)
class Page:
    """One POST the pager received: its path, its JSON body and when it arrived."""

    path: str
    body: Any
    received_at: float  # seconds since the epoch


class PagerStandIn:
    """A local webhook receiver on 127.0.0.1 (a free port), recording every JSON POST.

    Answers ``202`` to a JSON body and ``400`` to anything else (recording only the
    former), as a real pager would refuse a malformed event.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._received: list[Page] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL to give the webhook route."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/pages"

    @property
    def pages(self) -> list[Any]:
        """The JSON bodies received so far, oldest first (a copy)."""
        with self._changed:
            return [page.body for page in self._received]

    @property
    def received(self) -> list[Page]:
        """Every page received so far, with its path and arrival time (a copy)."""
        with self._changed:
            return list(self._received)

    def start(self) -> PagerStandIn:
        """Start answering in a background thread; returns itself."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> PagerStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_for(
        self, predicate: Callable[[Any], bool] = lambda _body: True, timeout: float = 30.0
    ) -> Any | None:
        """The first body (oldest first) ``predicate`` accepts, waiting up to ``timeout`` s.

        ``None`` when none arrived in time. Without a predicate: the first page.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for page in self._received:
                    if predicate(page.body):
                        return page.body
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def _record(self, path: str, body: Any) -> None:
        with self._changed:
            self._received.append(Page(path, body, time.time()))
            self._changed.notify_all()


def _handler_for(pager: PagerStandIn) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self.close_connection = True  # the unread body must not be taken for a request
                self._answer(413, {"error": "body too large"})
                return
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                self._answer(400, {"error": "the body is not JSON"})
                return
            pager._record(self.path, body)
            self._answer(202, {"status": "paged"})

        def _answer(self, status: int, payload: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the demo's console shows the pages instead

    return _Handler
