"""The prediction routes as plain ASGI: no framework layers between the socket and the model.

Starlette serves every other route. Prediction requests skip its router, its two
exception-handling layers and the middleware stack: in a profile at 5,000 req/s those
took a third of the server's time. What they did is done here once: the request id is
honoured or made, the body is read within the size limit, a :class:`ShipyardError`
becomes its ``{"error": …}`` status, anything else a 500 (logged), and each request is
counted and timed for ``/metrics``. In between, every protocol's request goes through
the same :class:`~shipyard.serving.pipeline.PredictionService`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.datastructures import Headers, State
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from shipyard.errors import Forbidden, ShipyardError, Unauthenticated
from shipyard.models.signature import dump_json
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.protocols import check_size
from shipyard.serving.request import Call, Reply, new_request_id, request_id_from

if TYPE_CHECKING:
    from shipyard.serving.pipeline import PredictionService
    from shipyard.serving.request import WireProtocol

logger = logging.getLogger(__name__)

__all__ = ["PredictionRoutes", "error_body", "error_headers"]


class PredictionRoutes:
    """Answers ``POST`` on the prediction paths itself; hands everything else to ``app``."""

    def __init__(
        self,
        app: Starlette,
        service: PredictionService,
        protocols: Sequence[WireProtocol],
        *,
        metrics: ServerMetrics,
        max_body_bytes: int,
    ) -> None:
        self.app = app
        self.service = service
        # (pattern, protocol); patterns use {param} like Starlette's.
        self._routes = [
            (re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)), protocol)
            for protocol in protocols
            for path in protocol.paths
        ]
        self.metrics = metrics
        self.model = service.name
        self.max_body_bytes = max_body_bytes

    @property
    def state(self) -> State:
        """The Starlette app's state (``shadows``, ``metrics``)."""
        return self.app.state

    @property
    def routes(self) -> list[BaseRoute]:
        """Every route, the prediction routes included."""
        return self.app.routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            for pattern, protocol in self._routes:
                match = pattern.fullmatch(path)
                if match is not None:
                    await self._serve(scope, receive, send, match.groupdict(), protocol)
                    return
        await self.app(scope, receive, send)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        params: dict[str, str],
        protocol: WireProtocol,
    ) -> None:
        started = time.perf_counter()
        self.metrics.tick()
        headers = Headers(scope=scope)
        request_id = ""  # the client's, once checked, or a new one
        version = role = "unknown"
        try:
            request_id = request_id_from(headers.get("x-request-id"))
            length = headers.get("content-length")
            check_size(
                int(length) if length and length.isascii() and length.isdigit() else None,
                self.max_body_bytes,
            )
            body = await _read_body(receive, self.max_body_bytes)
            reply = await self.service.serve(Call(params, headers, body, request_id), protocol)
        except ShipyardError as error:
            status = error.http_status
            reply = Reply(error_body(error), version, role, headers=error_headers(error))
        except _Disconnected:
            return
        except Exception:
            logger.exception("prediction request %s failed", request_id)
            message = f"internal error; the server log has the details (request {request_id})"
            status, reply = 500, Reply(dump_json({"error": message}), version, role)
        else:
            status, version, role = 200, reply.version, reply.role
        request_id = request_id or new_request_id()  # the client's was refused: a new one
        response_headers = [
            (b"content-type", reply.content_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode("latin-1")),
            (b"x-request-id", request_id.encode("latin-1")),
        ]
        if status == 200:
            response_headers.append((b"x-model-version", version.encode("latin-1")))
            response_headers.append((b"x-model-role", role.encode("latin-1")))
        response_headers += [
            (key.lower().encode("latin-1"), value.encode("latin-1"))
            for key, value in reply.headers.items()
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": reply.body})
        name = protocol.name
        self.metrics.requests.labels(self.model, version, role, name, str(status)).inc()
        if status == 200:
            self.metrics.latency.labels(self.model, version, name).observe(
                time.perf_counter() - started
            )


def error_body(error: ShipyardError) -> bytes:
    """The ``{"error": …}`` body of a Shipyard error: its message, then what to do."""
    text = f"{error.message} {error.hint}" if error.hint else error.message
    return dump_json({"error": text})


def error_headers(error: ShipyardError) -> dict[str, str]:
    """The headers a Shipyard error's answer carries: a Bearer challenge on 401 and 403."""
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer realm="shipyard"'}
    if isinstance(error, Forbidden):
        return {"WWW-Authenticate": 'Bearer realm="shipyard", error="insufficient_scope"'}
    return {}


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        check_size(size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
