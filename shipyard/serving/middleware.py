"""What the Starlette routes share: request ids, bounded bodies, and one error shape.

:class:`RequestIdMiddleware` honours or makes the request id and echoes it on every
response, refuses a malformed ``Content-Length``, and bounds the body every route reads:
at most ``max_body_bytes`` (else 413) within ``body_timeout_seconds`` (else 408, and
the connection is closed), inflated from gzip or deflate within the same size limit.
The error handlers answer in each protocol's shape: MLflow's ``{"error_code",
"message"}`` on its routes, ``{"error": …}`` everywhere else, for a Shipyard error, an
unknown route (404), a wrong method (405) or a bug (500).

The prediction routes do all of this themselves, in :mod:`shipyard.serving.fast_path`.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import RequestError, ShipyardError
from shipyard.models.signature import dump_json
from shipyard.serving.fast_path import (
    DEFAULT_BODY_TIMEOUT_SECONDS,
    BodyTimeout,
    error_body,
    error_headers,
    inflate,
    length_of,
)
from shipyard.serving.protocols import check_size
from shipyard.serving.request import JSON, new_request_id, request_id_from

__all__ = [
    "MLFLOW_PATHS",
    "RequestIdMiddleware",
    "error_response",
    "internal_error_response",
    "route_error_response",
]

logger = logging.getLogger(__name__)

# The MLflow scoring server's routes: their errors are {"error_code", "message"}.
MLFLOW_PATHS = frozenset(("/invocations", "/ping", "/health", "/version"))
_MLFLOW_CODES = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST", 500: "INTERNAL_ERROR"}
_NO_LIMIT = 1 << 62


class RequestIdMiddleware:
    """Request ids, a well-formed ``Content-Length`` and a bounded body (pure ASGI).

    A client's id longer than 128 characters or with characters other than letters,
    digits and ``. _ : -`` is refused with a 400 naming the header, as is a
    ``Content-Length`` that is not a byte count. A body over ``max_body_bytes`` is a
    413; one that has not fully arrived ``body_timeout_seconds`` after the request's
    headers is a 408 that closes the connection.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
        max_body_bytes: int = _NO_LIMIT,
    ) -> None:
        self.app = app
        self.body_timeout_seconds = body_timeout_seconds
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        try:
            request_id = request_id_from(given.decode("latin-1") if given else None)
            length = _header(scope, b"content-length")
            if length is not None and length_of(length.decode("latin-1")) is None:
                raise RequestError("the Content-Length header must be a byte count")
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

        bounded = self._bounded(receive)
        encoding = _header(scope, b"content-encoding")
        if encoding is not None and encoding.strip().lower() not in (b"", b"identity"):
            bounded = self._inflated(bounded, encoding.decode("latin-1"))
        await self.app(scope, bounded, send_with_id)

    def _inflated(self, receive: Receive, encoding: str) -> Receive:
        """``receive``, giving the whole body at once, inflated from ``encoding`` (bounded)."""
        inflated = False

        async def receive_inflated() -> Message:
            nonlocal inflated
            if inflated:
                return await receive()
            chunks = []
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return message
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            inflated = True
            body = inflate(b"".join(chunks), encoding, self.max_body_bytes)
            return {"type": "http.request", "body": body, "more_body": False}

        return receive_inflated

    def _bounded(self, receive: Receive) -> Receive:
        """``receive``, refusing a body that is too large or too slow (until it is whole)."""
        seconds, limit = self.body_timeout_seconds, self.max_body_bytes
        deadline = asyncio.get_running_loop().time() + seconds
        size = 0
        whole = False

        async def receive_bounded() -> Message:
            nonlocal size, whole
            if whole:  # the body is in: what follows is only the disconnect
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(seconds) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                whole = True
            size += len(message.get("body", b""))
            check_size(size, limit)
            return message

        return receive_bounded


async def error_response(request: Request, exc: Exception) -> Response:
    """A Shipyard error as its status, ``{"error": …}`` body and headers (a 401's challenge)."""
    assert isinstance(exc, ShipyardError)
    # Every Shipyard error knows its status (RequestError per instance): one handler.
    return Response(
        error_body(exc), status_code=exc.http_status, media_type=JSON, headers=error_headers(exc)
    )


async def route_error_response(request: Request, exc: Exception) -> Response:
    """An unknown route (404) or a method a route does not take (405), as JSON."""
    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        message = f"no route {path}: the server's routes are listed in /openapi.json"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{path} does not take {method}; it takes {allowed or 'other methods'}"
    else:
        message = str(exc.detail)
    return Response(
        _error_payload(path, exc.status_code, message),
        status_code=exc.status_code,
        media_type=JSON,
        headers=exc.headers,
    )


async def internal_error_response(request: Request, exc: Exception) -> Response:
    """A bug as a 500 in the route's error shape; the traceback goes to the server log only."""
    # Starlette answers a bug outside the middleware: the request id is set here.
    request_id = request.scope.get("shipyard.request_id") or new_request_id()
    message = f"internal error; the server log has the details (request {request_id})"
    return Response(
        _error_payload(request.url.path, 500, message),
        status_code=500,
        media_type=JSON,
        headers={"X-Request-ID": request_id},
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case), as Starlette's ``Headers.get``."""
    return next((value for key, value in scope["headers"] if key == name), None)


def _error_payload(path: str, status: int, message: str) -> bytes:
    if path in MLFLOW_PATHS:
        return dump_json(
            {"error_code": _MLFLOW_CODES.get(status, "BAD_REQUEST"), "message": message}
        )
    return dump_json({"error": message})
