"""Local stand-ins for the services alerts are posted to, which tests cannot reach.

An :class:`AlertReceiver` is a real HTTP server on 127.0.0.1 (stdlib ``http.server`` in
a thread) that records each POST and checks its body against the documented format of
the service it stands in for, answering as that service does:

- ``webhook``: any JSON object, ``200``;
- ``slack``: incoming-webhook rules for text and Block Kit blocks, ``200 ok`` or ``400``;
- ``pagerduty``: what Events API v2 ``/v2/enqueue`` validates (a 32-character routing
  key, the event action, summary/source/severity on a trigger), ``202`` with
  ``{"status": "success"}`` or ``400`` with its error list.

It can be told to answer some statuses first, as a service that is down for a while.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from shipyard.config import AlertRoute

__all__ = ["PD_KEY", "AlertReceiver"]

PD_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, as PagerDuty requires


def _check_slack(body: Any) -> tuple[int, Any]:
    """Slack's incoming-webhook rules for a message with text and Block Kit blocks."""
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return 400, "no_text"
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return 400, "invalid_blocks"
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            text = block["text"]
            if text["type"] != "plain_text" or len(text["text"]) > 150:
                return 400, "invalid_blocks"
        elif kind == "section":
            if "text" in block and (
                block["text"]["type"] not in ("mrkdwn", "plain_text")
                or not 1 <= len(block["text"]["text"]) <= 3000
            ):
                return 400, "invalid_blocks"
            fields = block.get("fields", [])
            if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                return 400, "invalid_blocks"
        elif kind == "context":
            if not 1 <= len(block["elements"]) <= 10:
                return 400, "invalid_blocks"
        elif kind not in ("divider", "image", "actions", "rich_text"):
            return 400, "invalid_blocks"
    return 200, "ok"


def _check_pagerduty(body: Any) -> tuple[int, Any]:
    """PagerDuty Events API v2: what /v2/enqueue validates, and its answers."""
    errors = []
    if not isinstance(body, dict):
        errors.append("Event object is not an object")
        body = {}
    if len(str(body.get("routing_key", ""))) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    if len(str(body.get("dedup_key", ""))) > 255:
        errors.append("'dedup_key' is too long")
    if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
        errors.append("'dedup_key' is required")
    if action == "trigger":
        payload = body.get("payload") or {}
        if not payload.get("summary") or len(payload["summary"]) > 1024:
            errors.append("'payload.summary' is missing or too long")
        if not payload.get("source"):
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("'payload.severity' is invalid")
    if errors:
        return 400, {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        }
    return 202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}


def _check_webhook(body: Any) -> tuple[int, Any]:
    return (200, {"ok": True}) if isinstance(body, dict) else (400, {"error": "not an object"})


CHECKS: dict[str, Callable[[Any], tuple[int, Any]]] = {
    "webhook": _check_webhook,
    "slack": _check_slack,
    "pagerduty": _check_pagerduty,
}


class AlertReceiver:
    """A local HTTP server standing in for ``kind``: records each POST, answers as it does.

    ``failures`` are statuses answered, in order, before the service looks at a body
    (those bodies are not in :attr:`received`). :attr:`statuses` and :attr:`headers`
    hold one entry per POST that arrived.
    """

    def __init__(self, kind: str = "webhook", *, failures: Iterable[int] = ()) -> None:
        if kind not in CHECKS:
            raise ValueError(f"no stand-in for {kind!r}: one of {sorted(CHECKS)}")
        self.kind = kind
        self.failures = list(failures)
        self.received: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{kind}-receiver",
            daemon=True,
        )
        self.thread.start()

    def _answer(self, raw: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            self.headers.append(headers)
            if self.failures:
                status, answer = self.failures.pop(0), "upstream trouble"
            else:
                body = json.loads(raw)
                self.received.append(body)
                status, answer = CHECKS[self.kind](body)
            self.statuses.append(status)
        return status, answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                status, data = receiver._answer(raw, dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @property
    def url(self) -> str:
        """Where to post: PagerDuty's path for the PagerDuty stand-in, ``/hook`` otherwise."""
        host, port = self.server.server_address[:2]
        path = "/v2/enqueue" if self.kind == "pagerduty" else "/hook"
        return f"http://{host!s}:{port}{path}"

    def route(self, **fields: Any) -> AlertRoute:
        """An alert route to this receiver (PagerDuty's with a valid routing key)."""
        settings: dict[str, Any] = {"kind": self.kind, "url": self.url}
        if self.kind == "pagerduty":
            settings["routing_key"] = PD_KEY
        return AlertRoute.model_validate(settings | fields)

    def close(self) -> None:
        """Stop listening; the port is free again (closing twice is harmless)."""
        if not self.thread.is_alive():
            return
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
