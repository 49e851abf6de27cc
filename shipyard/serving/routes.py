"""The routes that do not predict: health, model metadata and readiness, feedback, metrics.

Plain Starlette routes over the served slot. Predictions are not here: the fast path
answers them through the pipeline (:mod:`shipyard.serving.pipeline`), and
:func:`server_routes` only lists their paths, so the route table stays complete for the
OpenAPI document and its test.

Each route that needs a token is wrapped in a guard that asks the server's
:class:`~shipyard.serving.auth.ServerAccess` (the table is in :mod:`shipyard.serving.auth`)
and leaves the principal in ``request.scope["shipyard.principal"]``; health and
readiness are never wrapped.

Every readiness route (``/v2/health/ready``, ``/v2/models/{name}[/versions/{v}]/ready``,
``GET /v1/models/{name}``) answers from one :class:`~shipyard.serving.health.HealthCheck`:
200 with ``"ready": true`` when the worker should get traffic, 503 with ``"ready": false``
when not, and ``degraded`` naming what is wrong either way. Liveness (``/v2/health/live``,
``/``, ``/ping``, ``/health``) is 200 while the process answers at all.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any, cast

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard import __version__
from shipyard.access import Scope
from shipyard.errors import RequestError
from shipyard.models.signature import dump_json
from shipyard.serving.auth import PRINCIPAL_KEY, ServerAccess
from shipyard.serving.feedback import FeedbackDesk
from shipyard.serving.health import HealthCheck
from shipyard.serving.hot_swap import Lineup, ModelSlot
from shipyard.serving.metrics import CONTENT_TYPE as METRICS_TYPE
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.openapi import openapi_document
from shipyard.serving.protocols import datatype_of, model_metadata
from shipyard.serving.request import JSON, WireProtocol
from shipyard.serving.stages import check_model, pinned_model

__all__ = ["server_routes"]

Endpoint = Callable[[Request], Response | Awaitable[Response]]


def server_routes(
    slot: ModelSlot,
    protocols: tuple[WireProtocol, ...],
    *,
    labels: FeedbackDesk | None,
    metrics: ServerMetrics,
    max_body_bytes: int,
    access: ServerAccess | None = None,
) -> list[Route]:
    """Every route of the server: the prediction paths first, then the others.

    ``access`` says which routes need a token (default: none does).
    """
    access = ServerAccess.open() if access is None else access
    answers = _Answers(slot, labels, max_body_bytes, metrics.health)
    # GET on a prediction path that /v1/models/{name} also matches: 405, not "unknown model".
    answers.prediction_paths = [
        re.compile(re.sub(r"\{\w+\}", "[^/]+", path))
        for protocol in protocols
        for path in protocol.paths
    ]
    name = answers.name

    def guard(endpoint: Endpoint, scope: Scope, needed: bool) -> Endpoint:
        return _guarded(endpoint, access, scope, name) if needed else endpoint

    def metadata(endpoint: Endpoint) -> Endpoint:
        return guard(endpoint, Scope.MODELS_READ, access.metadata)

    # First, so that e.g. /v1/models/{name} does not claim /v1/models/x:predict.
    predictions = [
        Route(path, _fast_path_only, methods=["POST"])
        for protocol in protocols
        for path in protocol.paths
    ]
    return [
        *predictions,
        Route("/", lambda _r: _json({"status": "alive"})),
        Route("/v1/models", metadata(lambda _r: _json({"models": [name]}))),
        Route("/v1/models/{name}", answers.v1_model),
        Route(
            "/v2",
            lambda _r: _json(
                {"name": "shipyard", "version": __version__, "extensions": ["binary_tensor_data"]}
            ),
        ),
        Route("/v2/health/live", lambda _r: _json({"live": True})),
        Route("/v2/health/ready", answers.ready),
        Route("/v2/models/{name}/ready", answers.v2_model_ready),
        Route("/v2/models/{name}/versions/{version}/ready", answers.v2_model_ready),
        Route("/v2/models/{name}", metadata(answers.v2_metadata)),
        Route("/v2/models/{name}/versions/{version}", metadata(answers.v2_metadata)),
        Route(
            "/v1/feedback",
            guard(answers.feedback, Scope.LABELS_WRITE, access.feedback),
            methods=["POST"],
        ),
        Route("/ping", lambda _r: Response(b"\n", media_type=JSON)),
        Route("/health", lambda _r: Response(b"\n", media_type=JSON)),
        Route("/version", lambda _r: Response(__version__.encode(), media_type="text/plain")),
        Route(
            "/metrics",
            guard(
                lambda _r: Response(metrics.render(), media_type=METRICS_TYPE),
                Scope.MODELS_READ,
                access.metrics,
            ),
        ),
        Route(
            "/openapi.json",
            metadata(lambda _r: _json(openapi_document(slot.current, max_body_bytes))),
        ),
    ]


def _guarded(endpoint: Endpoint, access: ServerAccess, scope: Scope, served: str) -> Endpoint:
    """``endpoint``, answered only for a principal holding ``scope`` on the model.

    The model is the one the path names, else the one served. The principal is left in
    ``request.scope[PRINCIPAL_KEY]`` for the endpoint (feedback records who sent labels).
    """

    is_async = inspect.iscoroutinefunction(endpoint)

    async def guarded(request: Request) -> Response:
        model = request.path_params.get("name", served)
        principal = access.require(request.headers.get("authorization"), scope, model)
        request.scope[PRINCIPAL_KEY] = principal
        if is_async:  # as Starlette does: coroutines awaited, plain functions in a thread
            return await cast("Callable[[Request], Awaitable[Response]]", endpoint)(request)
        return await run_in_threadpool(cast("Callable[[Request], Response]", endpoint), request)

    return guarded


class _Answers:
    """The handlers that read the slot or write labels."""

    def __init__(
        self,
        slot: ModelSlot,
        labels: FeedbackDesk | None,
        max_body_bytes: int,
        health: HealthCheck,
    ) -> None:
        self.slot = slot
        self.name = slot.current.name
        self.labels = labels
        self.max_body_bytes = max_body_bytes
        self.health = health
        self.prediction_paths: list[re.Pattern[str]] = []

    def lineup(self, request: Request) -> Lineup:
        lineup = self.slot.lineup  # read once
        check_model(request.path_params["name"], self.name)
        return lineup

    async def feedback(self, request: Request) -> Response:
        if self.labels is None:
            raise RequestError(
                "This server does not record feedback: it runs without logs.", status=409
            )
        return await self.labels.respond(request, self.max_body_bytes)

    async def v2_metadata(self, request: Request) -> Response:
        lineup = self.lineup(request)
        version = request.path_params.get("version")
        model = lineup.champion if version is None else pinned_model(lineup, version)
        label_type = datatype_of(model.classes.dtype) if model.classes is not None else "FP64"
        outputs: dict[str, tuple[str, list[int]]] = {"predict": (label_type, [-1])}
        if model.classes is not None:
            outputs["predict_proba"] = ("FP64", [-1, len(model.classes)])
        versions = [model.version] if version else sorted(lineup.models)
        # A model served from entity keys lists what the client sends (keys and request
        # inputs), not the columns the server looks up.
        from shipyard.serving.features import sent_spec

        return _json(model_metadata(self.name, versions, sent_spec(model.spec), outputs))

    async def v2_model_ready(self, request: Request) -> Response:
        lineup = self.lineup(request)
        version = request.path_params.get("version")
        if version is not None:
            pinned_model(lineup, version)
        return self._model_ready()

    async def v1_model(self, request: Request) -> Response:
        if any(path.fullmatch(request.url.path) for path in self.prediction_paths):
            raise HTTPException(405, headers={"Allow": "POST"})
        self.lineup(request)
        return self._model_ready()

    def _model_ready(self) -> Response:
        health = self.health()
        return _json({"name": self.name, **health.to_dict()}, 200 if health.ready else 503)

    def ready(self, _request: Request) -> Response:
        health = self.health()
        plan = self.slot.lineup.plan
        details = {**self.slot.details(), "generation": plan.generation, "traffic": plan.to_dict()}
        return _json({**health.to_dict(), "details": details}, 200 if health.ready else 503)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(dump_json(payload), status_code=status, media_type=JSON)


async def _fast_path_only(_request: Request) -> Response:
    raise RuntimeError("prediction routes are answered by PredictionRoutes")
