"""The ASGI app: KServe V1, Open Inference V2 and MLflow ``/invocations`` on one server.

Plain Starlette composition: routes, one exception-handler table, and the served lineup
handed in. A request is routed (champion or challenger by weight, sticky by key),
decoded against that version's signature, predicted (micro-batched when on), logged
(the log only enqueues) and, when its route says so, copied to the shadow off the
request path. Every response carries ``X-Request-ID`` (the client's, or a new one), and
every prediction ``X-Model-Version`` and ``X-Model-Role``.
"""

from __future__ import annotations

import contextlib
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
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
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.models.served import Prediction, ServedModel
from shipyard.models.signature import dump_json, load_json
from shipyard.serving.batcher import BatchSettings, MicroBatcher
from shipyard.serving.fast_path import Call, Handler, PredictionRoutes, Reply, error_body
from shipyard.serving.feedback import parse_feedback
from shipyard.serving.hot_swap import Lineup, ModelSlot
from shipyard.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.openapi import openapi_document
from shipyard.serving.protocols import (
    InputSpec,
    RequestError,
    V2Request,
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
from shipyard.serving.router import StickyKey
from shipyard.serving.shadow import ShadowRunner

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RequestIdMiddleware", "create_app"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
JSON = "application/json"
Decode = Callable[[InputSpec], np.ndarray]  # a request body decoded against a model's spec


def _json(payload: Any, status: int = 200) -> Response:
    return Response(dump_json(payload), status_code=status, media_type=JSON)


def create_app(
    served: ServedModel | ModelSlot,
    *,
    log: PredictionLogWriter | None = None,
    labels: PredictionLogWriter | None = None,
    batch: BatchSettings | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    sticky: StickyKey | None = None,
    shadow_capacity: int = 1000,
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> PredictionRoutes:
    """An app serving ``served`` under its model name on every protocol.

    ``served`` is one model, or a slot whose lineup (champion, challengers, shadow) a
    :class:`~shipyard.serving.hot_swap.GenerationWatcher` keeps current. ``log`` receives
    every prediction; ``labels`` receives ``POST /v1/feedback``; ``batch`` turns on
    micro-batching; ``sticky`` names the routing key. ``on_shutdown`` runs when the
    server stops, after in-flight requests and queued shadow predictions are done.
    """
    slot = served if isinstance(served, ModelSlot) else ModelSlot(served)
    name = slot.current.name
    metrics = ServerMetrics(slot, lambda: [w for w in (log, labels) if w is not None])
    shadows = ShadowRunner(log, capacity=shadow_capacity, observe=metrics.observe_shadow)
    metrics.shadows = shadows

    def lineup_for(requested: str) -> Lineup:
        lineup = slot.lineup  # read once: the request finishes on this lineup
        if requested != name:
            raise NotFoundError(
                f"Model {requested!r} is not served here.",
                hint=f"This server serves {name!r}.",
            )
        return lineup

    def pinned(lineup: Lineup, version: str) -> ServedModel:
        model = lineup.models.get(version)
        if model is None:
            raise NotFoundError(
                f"Version {version} of {name!r} is not served here.",
                hint=f"Served versions: {', '.join(sorted(lineup.models))}.",
            )
        return model

    async def body_of(request: Request) -> bytes:
        length = request.headers.get("content-length")
        check_size(
            int(length) if length and length.isascii() and length.isdigit() else None,
            max_body_bytes,
        )
        body = await request.body()
        check_size(len(body), max_body_bytes)
        return body

    # One batcher per loaded model; a swapped-out model's batcher goes with it.
    batchers: weakref.WeakKeyDictionary[ServedModel, MicroBatcher[Prediction, Prediction]] = (
        weakref.WeakKeyDictionary()
    )

    metrics.batch_queue = lambda: sum(b.queued_rows for b in list(batchers.values()))

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

    async def serve(
        call: Call, lineup: Lineup, decode: Decode, version: str | None = None
    ) -> tuple[ServedModel, Prediction]:
        """Route, decode, predict, log and shadow one request."""
        request_id = call.request_id
        champion = lineup.champion
        matrix: np.ndarray | None = None
        if version is not None:
            model, copy = pinned(lineup, version), False
        else:
            key: str | None = None
            if sticky is not None and sticky.source == "header":
                key = call.headers.get(sticky.name)
            elif sticky is not None and sticky.name in champion.spec.columns:
                matrix = decode(champion.spec)
                key = str(matrix[0, champion.spec.columns.index(sticky.name)])
            decision = lineup.router.decide(key)
            model, copy = lineup.models[decision.version], decision.shadow
        if matrix is None or model.spec != champion.spec:
            matrix = decode(model.spec)
        call.role = lineup.role(model.version)
        started = time.perf_counter()
        try:
            prediction = await predict(model, matrix)
        except Exception:
            # A failed live prediction is logged too: the roll-out's error guardrail
            # compares the candidate's failures with the champion's.
            if log is not None:
                log.log(_live_batch(request_id, name, model, matrix, None, started, "error"))
            raise
        if log is not None:
            log.log(_live_batch(request_id, name, model, matrix, prediction, started, "ok"))
        shadow = lineup.shadow if copy else None
        if shadow is not None:
            _submit_shadow(shadows, shadow, model, matrix, decode, request_id)
        return model, prediction

    async def v1_predict(call: Call) -> Reply:
        lineup = lineup_for(call.params["name"])
        model, prediction = await serve(call, lineup, lambda spec: decode_v1(call.body, spec))
        return Reply(encode_v1(prediction.labels), model.version, call.role)

    async def v2_infer(call: Call) -> Reply:
        lineup = lineup_for(call.params["name"])
        version = call.params.get("version")
        if version is not None:
            pinned(lineup, version)  # 404 before decoding the body
        decoded: list[V2Request] = []

        def decode(spec: InputSpec) -> np.ndarray:
            decoded.append(decode_v2(call.body, call.headers, spec))
            return decoded[-1].matrix

        model, prediction = await serve(call, lineup, decode, version)
        outputs: dict[str, Any] = {"predict": prediction.labels}
        if prediction.probabilities is not None:
            outputs["predict_proba"] = prediction.probabilities
        outputs = select_outputs(outputs, decoded[-1].requested_outputs)
        payload, headers = encode_v2(
            name,
            model.version,
            decoded[-1].id or call.request_id,
            outputs,
            decoded[-1].binary_outputs,
        )
        content_type = headers.pop("Content-Type", JSON)
        return Reply(payload, model.version, call.role, content_type, headers)

    async def invocations(call: Call) -> Reply:
        content_type = call.headers.get("content-type")
        model, prediction = await serve(
            call,
            slot.lineup,
            lambda spec: decode_invocations(call.body, content_type, spec),
        )
        return Reply(encode_invocations(prediction.labels), model.version, call.role)

    async def feedback(request: Request) -> Response:
        if labels is None:
            raise RequestError(
                "This server does not record feedback: it runs without logs.", status=409
            )
        records = parse_feedback(load_json(await body_of(request)), name)
        accepted = sum(labels.log(record) for record in records)
        return _json({"accepted": accepted, "dropped": len(records) - accepted})

    async def v2_metadata(request: Request) -> Response:
        lineup = lineup_for(request.path_params["name"])
        version = request.path_params.get("version")
        model = lineup.champion if version is None else pinned(lineup, version)
        label_type = datatype_of(model.classes.dtype) if model.classes is not None else "FP64"
        outputs: dict[str, tuple[str, list[int]]] = {"predict": (label_type, [-1])}
        if model.classes is not None:
            outputs["predict_proba"] = ("FP64", [-1, len(model.classes)])
        versions = [model.version] if version else sorted(lineup.models)
        return _json(model_metadata(name, versions, model.spec, outputs))

    async def v2_model_ready(request: Request) -> Response:
        lineup = lineup_for(request.path_params["name"])
        version = request.path_params.get("version")
        if version is not None:
            pinned(lineup, version)
        return _json({"name": name, "ready": True})

    async def v1_model(request: Request) -> Response:
        lineup_for(request.path_params["name"])
        return _json({"name": name, "ready": True})

    def ready(_request: Request) -> Response:
        plan = slot.lineup.plan
        details = {**slot.status, "generation": plan.generation, "traffic": plan.to_dict()}
        return _json({"ready": True, "details": details})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        shadows.close()
        for step in on_shutdown:
            step()

    routes = [
        Route("/", lambda _r: _json({"status": "alive"})),
        Route("/v1/models", lambda _r: _json({"models": [name]})),
        Route("/v1/models/{name}", v1_model),
        Route(
            "/v2",
            lambda _r: _json(
                {"name": "shipyard", "version": __version__, "extensions": ["binary_tensor_data"]}
            ),
        ),
        Route("/v2/health/live", lambda _r: _json({"live": True})),
        Route("/v2/health/ready", ready),
        Route("/v2/models/{name}/ready", v2_model_ready),
        Route("/v2/models/{name}/versions/{version}/ready", v2_model_ready),
        Route("/v2/models/{name}", v2_metadata),
        Route("/v2/models/{name}/versions/{version}", v2_metadata),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/ping", lambda _r: Response(b"\n", media_type=JSON)),
        Route("/health", lambda _r: Response(b"\n", media_type=JSON)),
        Route("/version", lambda _r: Response(__version__.encode(), media_type="text/plain")),
        Route("/metrics", lambda _r: Response(metrics.render(), media_type=METRICS_TYPE)),
        Route("/openapi.json", lambda _r: _json(openapi_document(slot.current, max_body_bytes))),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={ShipyardError: _error_response},
        middleware=[Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )
    app.state.shadows = shadows
    app.state.metrics = metrics
    # Routes the fast path answers; Starlette still lists them (for the OpenAPI test).
    predictions: list[tuple[str, str, Handler]] = [
        ("/v1/models/{name}:predict", "kserve_v1", v1_predict),
        ("/v2/models/{name}/infer", "open_inference_v2", v2_infer),
        ("/v2/models/{name}/versions/{version}/infer", "open_inference_v2", v2_infer),
        ("/invocations", "mlflow", invocations),
    ]
    # First, so that e.g. /v1/models/{name} does not claim /v1/models/x:predict.
    app.router.routes[:0] = [Route(p, _fast_path_only, methods=["POST"]) for p, _, _ in predictions]
    return PredictionRoutes(
        app, predictions, metrics=metrics, model=name, max_body_bytes=max_body_bytes
    )


def _live_batch(
    request_id: str,
    name: str,
    model: ServedModel,
    matrix: np.ndarray,
    prediction: Prediction | None,
    started: float,
    status: str,
) -> PredictionBatch:
    """One live request's log entry; ``prediction`` is None when the model failed."""
    return PredictionBatch(
        request_id=request_id,
        time=datetime.now(UTC),
        model=name,
        version=model.version,
        role="live",
        columns=model.spec.columns,
        matrix=matrix,
        labels=None if prediction is None else prediction.labels,
        probabilities=None if prediction is None else prediction.probabilities,
        latency_ms=(time.perf_counter() - started) * 1000,
        status=status,
    )


def _submit_shadow(
    shadows: ShadowRunner,
    shadow: ServedModel,
    live: ServedModel,
    matrix: np.ndarray,
    decode: Decode,
    request_id: str,
) -> None:
    """Queue the shadow copy; a request the shadow cannot read is logged as its error."""
    if shadow.spec != live.spec:
        try:
            matrix = decode(shadow.spec)
        except RequestError:
            matrix = np.empty((0, len(shadow.spec.columns)), dtype=object)
    shadows.submit(shadow, matrix, request_id)


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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


async def _fast_path_only(_request: Request) -> Response:
    raise RuntimeError("prediction routes are answered by PredictionRoutes")


async def _error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ShipyardError)
    # Every Shipyard error knows its status (RequestError per instance): one handler.
    return Response(error_body(exc), status_code=exc.http_status, media_type=JSON)
