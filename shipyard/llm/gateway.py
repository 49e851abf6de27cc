"""The OpenAI-compatible gateway: an LLM version served as ``/v1/chat/completions``.

Routes::

    POST /v1/chat/completions   chat, whole or streamed (SSE)     serve:invoke*
    POST /v1/embeddings         embeddings, float or base64        serve:invoke*
    GET  /v1/models             the served model and its versions  serve:invoke*
    GET  /v1/models/{model}     one of them (404 when not served)  serve:invoke*
    GET  /v2/health/live, /, /ping, /health                        open
    GET  /v2/health/ready       readiness, traffic and generation  open
    GET  /metrics               Prometheus                         models:read with metrics_auth
    GET  /version                                                  open

(* when ``serving.auth`` requires tokens, as for the classical server.)

The two POST routes are answered as plain ASGI, without Starlette's router and
middleware layers (as the classical server's prediction routes are): the request id
is honoured or made, the body read within ``serving.max_body_mb`` and
``serving.body_timeout_seconds``, and every error answered in OpenAI's shape
(:mod:`shipyard.llm.wire`). The chat flow is :mod:`shipyard.llm.chat_flow`. Every
other route is Starlette's, with the same error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from shipyard import __version__
from shipyard.access import Scope as AccessScope
from shipyard.errors import RequestError, ShipyardError
from shipyard.jsonable import dump_json
from shipyard.llm.chat_flow import PROTOCOL, ChatFlow, send_json
from shipyard.llm.embeddings_flow import EmbeddingsFlow
from shipyard.llm.gateway_seams import GatewayParts
from shipyard.llm.wire import OpenAIError, error_of, model_pin
from shipyard.serving.fast_path import inflate, length_of
from shipyard.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from shipyard.serving.middleware import RequestIdMiddleware
from shipyard.serving.protocols import check_size
from shipyard.serving.request import new_request_id, request_id_from

__all__ = ["CHAT_PATH", "EMBEDDINGS_PATH", "Gateway", "create_gateway"]

logger = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
_JSON = "application/json"


class Gateway:
    """The gateway's ASGI app: the two POST routes itself, the rest through Starlette."""

    def __init__(
        self,
        parts: GatewayParts,
        *,
        max_body_bytes: int = 10 * 1024 * 1024,
        body_timeout_seconds: float = 30.0,
        on_shutdown: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.parts = parts
        self.flow = ChatFlow(parts)
        self.embeddings = EmbeddingsFlow(parts, self.flow)
        self.started = time.time()  # the models' "created"

        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.app = Starlette(
            routes=_routes(self),
            exception_handlers={
                HTTPException: _route_error,
                ShipyardError: _shipyard_error,
                Exception: _internal_error,
            },
            middleware=[
                Middleware(
                    RequestIdMiddleware,
                    body_timeout_seconds=body_timeout_seconds,
                    max_body_bytes=max_body_bytes,
                )
            ],
            lifespan=self._lifespan(on_shutdown),
        )
        self.app.state.gateway = self
        self.app.state.metrics = parts.metrics

    @property
    def state(self) -> Any:
        """The Starlette app's state (``metrics``, ``gateway``)."""
        return self.app.state

    @property
    def routes(self) -> list[Any]:
        """Every route, the two POST routes included."""
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            if path == CHAT_PATH:
                await self._serve(scope, receive, send, self.flow.answer)
                return
            if path == EMBEDDINGS_PATH:
                await self._serve(scope, receive, send, self.embeddings.answer)
                return
        await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, answer: Any) -> None:
        started = time.perf_counter()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = ""
        try:
            request_id = request_id_from(headers.get("x-request-id"))
            check_size(length_of(headers.get("content-length")), self.max_body_bytes)
            body = await _read_body(receive, self.max_body_bytes, self.body_timeout_seconds)
            encoding = headers.get("content-encoding")
            if encoding is not None:
                body = inflate(body, encoding, self.max_body_bytes)
        except _Disconnected:
            return
        except ShipyardError as error:
            request_id = request_id or new_request_id()
            status, payload, extra = error_of(error, request_id)
            await send_json(send, status, payload, request_id, extra)
            self.parts.metrics.count_request(
                self.parts.name, "unknown", "unknown", PROTOCOL, status
            )
            return
        status, version, role = await answer(headers, body, request_id, send, receive)
        metrics = self.parts.metrics
        metrics.count_request(self.parts.name, version, role, PROTOCOL, status)
        if status == 200:
            metrics.time_request(self.parts.name, version, PROTOCOL, time.perf_counter() - started)

    # -- lifespan ----------------------------------------------------------------------

    def _lifespan(
        self, on_shutdown: Sequence[Callable[[], None]]
    ) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            yield
            await self.flow.drain()
            closing = getattr(self.parts.pool, "aclose", None)
            if closing is not None:
                with contextlib.suppress(Exception):
                    await closing()
            for step in on_shutdown:
                step()

        return lifespan


def create_gateway(
    parts: GatewayParts,
    *,
    max_body_bytes: int = 10 * 1024 * 1024,
    body_timeout_seconds: float = 30.0,
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Gateway:
    """The gateway app answering with ``parts`` (see :class:`Gateway`)."""
    return Gateway(
        parts,
        max_body_bytes=max_body_bytes,
        body_timeout_seconds=body_timeout_seconds,
        on_shutdown=on_shutdown,
    )


# -- the Starlette routes ------------------------------------------------------------


def _routes(gateway: Gateway) -> list[Route]:
    parts = gateway.parts
    name = parts.name
    access = parts.access
    metrics = parts.metrics

    def invoker(request: Request) -> None:
        if access.predictions:
            access.require(request.headers.get("authorization"), AccessScope.SERVE_INVOKE, name)

    def models(request: Request) -> Response:
        invoker(request)
        return _json({"object": "list", "data": _model_cards(gateway)})

    def model(request: Request) -> Response:
        invoker(request)
        wanted = request.path_params["model"]
        for card in _model_cards(gateway):
            if card["id"] == wanted:
                return _json(card)
        model_pin(wanted, name)  # a 404 naming what is served
        raise OpenAIError(
            404, f"The model '{wanted}' is not served here.", "model", "model_not_found"
        )

    def ready(_request: Request) -> Response:
        health = metrics.health()
        plan = parts.slot.lineup.plan
        details = {
            **parts.slot.details(),
            "generation": plan.generation,
            "traffic": plan.to_dict(),
            "shadow_calls": len(gateway.flow.shadows),
            "shadow_dropped": gateway.flow.shadows.dropped,
        }
        caps = getattr(parts.caps, "status", None)  # a CapGuard's; NoCaps has none
        if caps is not None:
            details["caps"] = caps.to_dict() if hasattr(caps, "to_dict") else caps
        return _json({**health.to_dict(), "details": details}, 200 if health.ready else 503)

    def metrics_page(request: Request) -> Response:
        if access.metrics:
            access.require(request.headers.get("authorization"), AccessScope.MODELS_READ, name)
        return Response(metrics.render(), media_type=METRICS_TYPE)

    alive = {"status": "alive"}
    return [
        Route("/", lambda _r: _json(alive)),
        Route("/v1/models", models),
        Route("/v1/models/{model:path}", model),
        Route("/v2/health/live", lambda _r: _json({"live": True})),
        Route("/v2/health/ready", ready),
        Route("/ping", lambda _r: Response(b"\n", media_type=_JSON)),
        Route("/health", lambda _r: Response(b"\n", media_type=_JSON)),
        Route("/version", lambda _r: Response(__version__.encode(), media_type="text/plain")),
        Route("/metrics", metrics_page),
        Route(CHAT_PATH, _fast_path_only, methods=["POST"]),
        Route(EMBEDDINGS_PATH, _fast_path_only, methods=["POST"]),
    ]


def _model_cards(gateway: Gateway) -> list[dict[str, Any]]:
    """The served name (its champion answers), then ``name/version`` for each loaded one."""
    parts = gateway.parts
    lineup = parts.slot.lineup
    created = int(gateway.started)
    cards = [{"id": parts.name, "object": "model", "created": created, "owned_by": "shipyard"}]
    for version in sorted(lineup.models, key=lambda v: (len(v), v)):
        cards.append(
            {
                "id": f"{parts.name}/{version}",
                "object": "model",
                "created": created,
                "owned_by": "shipyard",
                "role": lineup.role(version),
            }
        )
    return cards


def _json(payload: Any, status: int = 200) -> Response:
    return Response(dump_json(payload), status_code=status, media_type=_JSON)


async def _fast_path_only(_request: Request) -> Response:
    raise RuntimeError("the gateway answers its POST routes itself")


async def _route_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path, status = request.url.path, exc.status_code
    if status == 404:
        message = (
            f"Unknown route {request.method} {path}; the gateway serves "
            "/v1/chat/completions, /v1/embeddings and /v1/models."
        )
    elif status == 405:
        message = f"{path} does not take {request.method}."
    else:
        message = str(exc.detail)
    error = OpenAIError(status, message, None, "unknown_route" if status == 404 else None)
    return Response(error.body(), status_code=status, media_type=_JSON, headers=exc.headers)


async def _shipyard_error(request: Request, exc: Exception) -> Response:
    status, payload, extra = error_of(exc)
    return Response(payload, status_code=status, media_type=_JSON, headers=extra)


async def _internal_error(request: Request, exc: Exception) -> Response:
    request_id = new_request_id()
    logger.error("gateway route %s failed (request %s)", request.url.path, request_id, exc_info=exc)
    status, payload, _ = error_of(exc, request_id)
    return Response(
        payload, status_code=status, media_type=_JSON, headers={"X-Request-ID": request_id}
    )


# -- the body ------------------------------------------------------------------------


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


async def _read_body(receive: Receive, limit: int, seconds: float) -> bytes:
    """The whole body within ``limit`` bytes; a 408 when the rest takes over ``seconds``."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                chunk = _chunk(message, size, limit)
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        raise RequestError(
            f"the request body did not arrive within {seconds:g} s "
            "(serving.body_timeout_seconds); send the whole body at once",
            status=408,
        ) from None


def _chunk(message: Message, size: int, limit: int) -> bytes:
    if message["type"] == "http.disconnect":
        raise _Disconnected
    chunk: bytes = message.get("body", b"")
    check_size(size + len(chunk), limit)
    return chunk
