"""What the Starlette routes share: the request id on every response, one error handler.

The prediction routes do both themselves, in :mod:`shipyard.serving.fast_path`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import RequestError, ShipyardError
from shipyard.serving.fast_path import error_body, error_headers
from shipyard.serving.request import JSON, new_request_id, request_id_from

__all__ = ["RequestIdMiddleware", "error_response"]


class RequestIdMiddleware:
    """Honours ``X-Request-ID`` or makes one, and echoes it on every response (pure ASGI).

    A client's id longer than 128 characters or with characters other than letters,
    digits and ``. _ : -`` is refused with a 400 naming the header.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        try:
            request_id = request_id_from(given.decode("latin-1") if given else None)
        except RequestError as refused:  # too long, or characters a log id may not hold
            request_id = new_request_id()
            refusal = Response(error_body(refused), status_code=400, media_type=JSON)
            refusal.headers["x-request-id"] = request_id
            await refusal(scope, receive, send)
            return
        scope["shipyard.request_id"] = request_id  # for the routes (feedback's audit event)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


async def error_response(request: Request, exc: Exception) -> Response:
    """A Shipyard error as its status, ``{"error": …}`` body and headers (a 401's challenge)."""
    assert isinstance(exc, ShipyardError)
    # Every Shipyard error knows its status (RequestError per instance): one handler.
    return Response(
        error_body(exc), status_code=exc.http_status, media_type=JSON, headers=error_headers(exc)
    )
