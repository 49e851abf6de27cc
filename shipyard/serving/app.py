"""The ASGI app: KServe V1, Open Inference V2 and MLflow ``/invocations`` on one server.

Plain Starlette composition: routes, one exception-handler table, and the served model
handed in. Every response carries ``X-Request-ID`` (the client's, or a new one) and
``X-Model-Version``; every prediction is handed to the prediction log, which only
enqueues.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard import __version__
from shipyard.errors import NotFoundError, ShipyardError
from shipyard.serving.batcher import BatchSettings, MicroBatcher
from shipyard.serving.feedback import parse_feedback
from shipyard.serving.hot_swap import ModelSlot
from shipyard.serving.loader import Prediction, ServedModel
from shipyard.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.prediction_log import PredictionLogWriter, PredictionRecord
from shipyard.serving.protocols import (
    RequestError,
    check_size,
    datatype_of,
    decode_invocations,
    decode_v1,
    decode_v2,
    encode_invocations,
    encode_v1,
    encode_v2,
    model_metadata,
    select_outputs,
)
from shipyard.serving.protocols.signature import dump_json, load_json

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RequestIdMiddleware", "create_app"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
JSON = "application/json"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(dump_json(payload), status_code=status, media_type=JSON)


def create_app(
    served: ServedModel | ModelSlot,
    *,
    log: PredictionLogWriter | None = None,
    labels: PredictionLogWriter | None = None,
    batch: BatchSettings | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """An app serving ``served`` under its model name on every protocol.

    ``log`` receives every prediction; ``labels`` receives ``POST /v1/feedback``;
    ``batch`` turns on micro-batching (off when ``None`` or disabled).
    """
    slot = served if isinstance(served, ModelSlot) else ModelSlot(served)
    name = slot.current.name

    def model_or_404(requested: str, version: str | None = None) -> ServedModel:
        # Read the slot once: the request finishes on this model even if it is swapped.
        model = slot.current
        if requested != name or (version is not None and version != model.version):
            raise NotFoundError(
                f"Model {requested!r} is not served here.",
                hint=f"This server serves {name!r} version {model.version}.",
            )
        return model

    async def body_of(request: Request) -> bytes:
        length = request.headers.get("content-length")
        check_size(int(length) if length and length.isdigit() else None, max_body_bytes)
        body = await request.body()
        check_size(len(body), max_body_bytes)
        return body

    # One batcher per loaded model; a swapped-out model's batcher goes with it.
    batchers: weakref.WeakKeyDictionary[ServedModel, MicroBatcher[Prediction, Prediction]] = (
        weakref.WeakKeyDictionary()
    )

    metrics = ServerMetrics(slot, lambda: [w for w in (log, labels) if w is not None])

    def counted(model: ServedModel) -> Callable[[np.ndarray], Prediction]:
        rows = metrics.batch_rows.labels(model.name, model.version)

        def call(matrix: np.ndarray) -> Prediction:
            rows.observe(len(matrix))
            return model.predict(matrix)

        return call

    async def predict(model: ServedModel, matrix: np.ndarray) -> Prediction:
        if batch is None or not batch.enabled:
            return counted(model)(matrix)
        batcher = batchers.get(model)
        if batcher is None:
            batcher = batchers[model] = MicroBatcher(counted(model), batch)
        return await batcher.submit(matrix)

    async def run(request: Request, model: ServedModel, matrix: np.ndarray) -> Prediction:
        started = time.perf_counter()
        prediction = await predict(model, matrix)
        latency_ms = (time.perf_counter() - started) * 1000
        if log is not None:
            _log_rows(log, request.state.request_id, model, matrix, prediction, latency_ms)
        return prediction

    def versioned(response: Response, model: ServedModel) -> Response:
        response.headers["X-Model-Version"] = model.version
        return response

    async def v1_predict(request: Request) -> Response:
        model = model_or_404(request.path_params["name"])
        prediction = await run(request, model, decode_v1(await body_of(request), model.spec))
        return versioned(Response(encode_v1(prediction.labels), media_type=JSON), model)

    async def v2_infer(request: Request) -> Response:
        model = model_or_404(request.path_params["name"], request.path_params.get("version"))
        decoded = decode_v2(await body_of(request), request.headers, model.spec)
        prediction = await run(request, model, decoded.matrix)
        outputs: dict[str, Any] = {"predict": prediction.labels}
        if prediction.probabilities is not None:
            outputs["predict_proba"] = prediction.probabilities
        outputs = select_outputs(outputs, decoded.requested_outputs)
        body, headers = encode_v2(
            name,
            model.version,
            decoded.id or request.state.request_id,
            outputs,
            decoded.binary_outputs,
        )
        content_type = headers.pop("Content-Type", JSON)
        response = Response(body, media_type=content_type, headers=headers)
        return versioned(response, model)

    async def invocations(request: Request) -> Response:
        model = slot.current
        matrix = decode_invocations(
            await body_of(request), request.headers.get("content-type"), model.spec
        )
        prediction = await run(request, model, matrix)
        return versioned(Response(encode_invocations(prediction.labels), media_type=JSON), model)

    async def feedback(request: Request) -> Response:
        if labels is None:
            raise RequestError(
                "This server does not record feedback: it runs without logs.", status=409
            )
        records = parse_feedback(load_json(await body_of(request)), name)
        accepted = sum(labels.log(record) for record in records)
        return _json({"accepted": accepted, "dropped": len(records) - accepted})

    async def v2_metadata(request: Request) -> Response:
        model = model_or_404(request.path_params["name"], request.path_params.get("version"))
        label_type = datatype_of(model.classes.dtype) if model.classes is not None else "FP64"
        outputs: dict[str, tuple[str, list[int]]] = {"predict": (label_type, [-1])}
        if model.classes is not None:
            outputs["predict_proba"] = ("FP64", [-1, len(model.classes)])
        return _json(model_metadata(name, [model.version], model.spec, outputs))

    async def v2_model_ready(request: Request) -> Response:
        model_or_404(request.path_params["name"], request.path_params.get("version"))
        return _json({"name": name, "ready": True})

    async def v1_model(request: Request) -> Response:
        model_or_404(request.path_params["name"])
        return _json({"name": name, "ready": True})

    routes = [
        Route("/", lambda _r: _json({"status": "alive"})),
        Route("/v1/models", lambda _r: _json({"models": [name]})),
        Route("/v1/models/{name}:predict", v1_predict, methods=["POST"]),
        Route("/v1/models/{name}", v1_model),
        Route(
            "/v2",
            lambda _r: _json(
                {"name": "shipyard", "version": __version__, "extensions": ["binary_tensor_data"]}
            ),
        ),
        Route("/v2/health/live", lambda _r: _json({"live": True})),
        Route("/v2/health/ready", lambda _r: _json({"ready": True, "details": slot.status})),
        Route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", v2_infer, methods=["POST"]),
        Route("/v2/models/{name}/ready", v2_model_ready),
        Route("/v2/models/{name}/versions/{version}/ready", v2_model_ready),
        Route("/v2/models/{name}", v2_metadata),
        Route("/v2/models/{name}/versions/{version}", v2_metadata),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/ping", lambda _r: Response(b"\n", media_type=JSON)),
        Route("/health", lambda _r: Response(b"\n", media_type=JSON)),
        Route("/version", lambda _r: Response(__version__.encode())),
        Route("/metrics", lambda _r: Response(metrics.render(), media_type=METRICS_TYPE)),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={ShipyardError: _error_response},
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(RequestMetricsMiddleware, metrics=metrics, model=name),
        ],
    )


def _protocol(path: str) -> str | None:
    if path.startswith("/v1/models/") and path.endswith(":predict"):
        return "kserve_v1"
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        return "open_inference_v2"
    if path == "/invocations":
        return "mlflow"
    return None


class RequestMetricsMiddleware:
    """Counts prediction requests by status and times them, outside the handlers (pure ASGI)."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics, model: str) -> None:
        self.app = app
        self.metrics = metrics
        self.model = model

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        protocol = _protocol(scope["path"]) if scope["type"] == "http" else None
        if protocol is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, str] = {"status": "500", "version": "unknown"}

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = str(message["status"])
                for key, value in message.get("headers", []):
                    if key == b"x-model-version":
                        seen["version"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            version = seen["version"]
            self.metrics.requests.labels(
                self.model, version, "live", protocol, seen["status"]
            ).inc()
            if seen["status"] == "200":
                self.metrics.latency.labels(self.model, version, protocol).observe(
                    time.perf_counter() - started
                )


class RequestIdMiddleware:
    """Honours ``X-Request-ID`` or makes one, and echoes it on every response (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = given.decode("latin-1") if given else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShipyardError)
    # Every Shipyard error knows its status (RequestError per instance): one handler.
    return _json({"error": exc.message}, exc.http_status)


def _log_rows(
    log: PredictionLogWriter,
    request_id: str,
    model: ServedModel,
    matrix: np.ndarray,
    prediction: Prediction,
    latency_ms: float,
) -> None:
    now = datetime.now(UTC)
    columns = model.spec.columns
    per_row = latency_ms / max(len(matrix), 1)
    for row, values in enumerate(matrix):
        probabilities = (
            None if prediction.probabilities is None else prediction.probabilities[row].tolist()
        )
        log.log(
            PredictionRecord(
                request_id=request_id if len(matrix) == 1 else f"{request_id}:{row}",
                time=now,
                model=model.name,
                version=model.version,
                role="live",
                inputs=dict(zip(columns, values.tolist(), strict=True)),
                output=prediction.labels[row].item()
                if hasattr(prediction.labels[row], "item")
                else prediction.labels[row],
                probabilities=probabilities,
                latency_ms=per_row,
                status="ok",
            )
        )
