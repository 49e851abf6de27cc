"""The prediction routes as plain ASGI: no framework layers between the socket and the model.

Starlette serves every other route. Prediction requests skip its router, its two
exception-handling layers and the middleware stack: in a profile at 5,000 req/s those
took a third of the server's time. What they did is done here once: the request id is
honoured or made, the body is read within the size limit and the time limit (else a
408 that closes the connection) and inflated when gzip or deflate encoded (within the
size limit again: a zip bomb gets 413), a :class:`ShipyardError` becomes its
``{"error": …}`` status, anything else a 500 (logged), and each request is counted and
timed for ``/metrics``. In between, every protocol's request goes through the same
:class:`~shipyard.serving.pipeline.PredictionService`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import types
import zlib
from collections.abc import Coroutine, Generator, Sequence
from typing import TYPE_CHECKING, Any, cast

from starlette.applications import Starlette
from starlette.datastructures import Headers, State
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from shipyard.errors import Forbidden, RequestError, ShipyardError, Unauthenticated
from shipyard.models.signature import dump_json
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.protocols import check_size
from shipyard.serving.request import Call, Reply, new_request_id, request_id_from

if TYPE_CHECKING:
    from shipyard.serving.pipeline import PredictionService
    from shipyard.serving.request import WireProtocol

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BODY_TIMEOUT_SECONDS",
    "BodyTimeout",
    "PredictionRoutes",
    "error_body",
    "error_headers",
    "inflate",
    "length_of",
]

DEFAULT_BODY_TIMEOUT_SECONDS = 30.0  # serving.body_timeout_seconds' default
_MAX_DIGITS = 20  # a byte count in a header: more digits is no real length


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
        body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
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
        self.body_timeout_seconds = body_timeout_seconds

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
            check_size(length_of(headers.get("content-length")), self.max_body_bytes)
            body = await _read_body(receive, self.max_body_bytes, self.body_timeout_seconds)
            encoding = headers.get("content-encoding")
            if encoding is not None:
                body = inflate(body, encoding, self.max_body_bytes)
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
        self.metrics.count_request(self.model, version, role, name, status)
        if status == 200:
            self.metrics.time_request(self.model, version, name, time.perf_counter() - started)


def error_body(error: ShipyardError) -> bytes:
    """The ``{"error": …}`` body of a Shipyard error: its message, then what to do."""
    text = f"{error.message} {error.hint}" if error.hint else error.message
    return dump_json({"error": text})


def error_headers(error: ShipyardError) -> dict[str, str]:
    """The headers a Shipyard error's answer carries: a Bearer challenge on 401 and 403.

    A 408 closes the connection: the rest of a body that stopped arriving is not read.
    """
    if isinstance(error, BodyTimeout):
        return {"Connection": "close"}
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer realm="shipyard"'}
    if isinstance(error, Forbidden):
        return {"WWW-Authenticate": 'Bearer realm="shipyard", error="insufficient_scope"'}
    return {}


class BodyTimeout(RequestError):
    """The body did not fully arrive within ``serving.body_timeout_seconds``: a 408."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the request body did not arrive within {seconds:g} s "
            "(serving.body_timeout_seconds); send the whole body at once",
            status=408,
        )


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


def length_of(header: str | None) -> int | None:
    """A byte count from a header such as Content-Length; None when absent or not a count."""
    if header and len(header) <= _MAX_DIGITS and header.isascii() and header.isdigit():
        return int(header)
    return None


async def _read_body(receive: Receive, limit: int, seconds: float) -> bytes:
    """The whole body within ``limit`` bytes; a 408 when it takes over ``seconds`` to arrive.

    The timer (a handle scheduled and cancelled: a cost on every request) is armed only
    once a receive has to wait. The server usually has a small body already, and then
    the first receive returns without suspending: the body is complete and untimed.
    """
    waiting = receive()
    step = getattr(waiting, "send", None)  # a coroutine's: run it up to where it would wait
    if step is None:
        chunks, pending = [], waiting
    else:
        try:
            suspended_on = step(None)
        except StopIteration as done:
            message = done.value
            if message["type"] == "http.request" and not message.get("more_body", False):
                body: bytes = message.get("body", b"")
                check_size(len(body), limit)
                return body
            chunks, pending = [_chunk(message, 0, limit)], None
        else:
            chunks, pending = (
                [],
                _resumed(cast("Coroutine[Any, Any, Message]", waiting), suspended_on),
            )
    size = len(chunks[0]) if chunks else 0
    try:
        async with asyncio.timeout(seconds):
            while True:
                message = await (receive() if pending is None else pending)
                pending = None
                chunk = _chunk(message, size, limit)
                size += len(chunk)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    except TimeoutError:
        raise BodyTimeout(seconds) from None


def _chunk(message: Message, size: int, limit: int) -> bytes:
    """A body message's bytes, after ``size`` bytes read: 413 past ``limit``."""
    if message["type"] == "http.disconnect":
        raise _Disconnected
    chunk: bytes = message.get("body", b"")
    check_size(size + len(chunk), limit)
    return chunk


@types.coroutine
def _resumed(
    coroutine: Coroutine[Any, Any, Message], suspended_on: Any
) -> Generator[Any, Any, Message]:
    """The rest of ``coroutine``, which suspended on ``suspended_on``, as an awaitable.

    What ``await`` does for a coroutine, from its first suspension on: the task waits on
    what it waits on, and sends (or throws: a timeout's cancellation) into it.
    """
    while True:
        try:
            sent = yield suspended_on
        except BaseException as error:
            try:
                suspended_on = coroutine.throw(error)
            except StopIteration as done:
                return cast("Message", done.value)
        else:
            try:
                suspended_on = coroutine.send(sent)
            except StopIteration as done:
                return cast("Message", done.value)


# Content-Encoding → zlib's window bits: gzip's header, or zlib's (HTTP "deflate").
_WINDOW_BITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from its Content-Encoding, never inflated beyond ``limit`` bytes.

    gzip (several members too) and deflate (zlib, or raw as some clients send it);
    ``identity`` is the body as is. 413 past ``limit``, 400 for a corrupt or truncated
    stream, 415 for another encoding. Inflated piecewise: a zip bomb costs at most
    ``limit`` + 1 bytes of memory.
    """
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return body
    bits = _WINDOW_BITS.get(name)
    if bits is None:
        shown = encoding if len(encoding) <= 40 else encoding[:37] + "..."
        raise RequestError(
            f"Content-Encoding {shown!r} is not supported: send gzip, deflate or identity",
            status=415,
        )
    try:
        return _inflate(body, bits, limit)
    except zlib.error as error:
        if name != "deflate":
            raise RequestError(f"the body is not valid {name} data: {error}") from None
    try:  # raw deflate, without zlib's header
        return _inflate(body, -zlib.MAX_WBITS, limit)
    except zlib.error as error:
        raise RequestError(f"the body is not valid deflate data: {error}") from None


def _inflate(body: bytes, bits: int, limit: int) -> bytes:
    inflated = bytearray()
    rest = body
    while rest:
        stream = zlib.decompressobj(bits)
        inflated += stream.decompress(rest, limit + 1 - len(inflated))
        if len(inflated) > limit or stream.unconsumed_tail:
            raise RequestError(
                f"the request body inflates to over the limit of {limit} bytes; "
                "send fewer rows per request",
                status=413,
            )
        if not stream.eof:
            raise RequestError("the compressed body is truncated: its stream never ends")
        rest = stream.unused_data
    return bytes(inflated)
