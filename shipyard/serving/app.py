"""The ASGI app: KServe V1, Open Inference V2 and MLflow ``/invocations`` on one server.

Plain composition. The prediction routes of every protocol call one
:class:`~shipyard.serving.pipeline.PredictionService` (decode → authenticate → validate →
enrich → route → batch → predict → log → encode) through the fast ASGI path; Starlette
serves the other routes (:mod:`shipyard.serving.routes`) with one exception-handler
table. A request is routed (champion or challenger by weight, sticky by key), decoded
against that version's signature, predicted (micro-batched when on), logged (the log
only enqueues) and, when its route says so, copied to the shadow off the request path.
Every response carries ``X-Request-ID`` (the client's, or a new one), and every
prediction ``X-Model-Version`` and ``X-Model-Role``. Who may call which route is the
app's :class:`~shipyard.serving.auth.ServerAccess` (``serving.auth``): the prediction
routes ask it in their authenticate step, the others in their route guard.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from shipyard.errors import ShipyardError
from shipyard.logs.writer import PredictionLogWriter
from shipyard.models.served import ServedModel
from shipyard.serving.auth import ServerAccess
from shipyard.serving.batcher import BatchSettings
from shipyard.serving.fast_path import DEFAULT_BODY_TIMEOUT_SECONDS, PredictionRoutes
from shipyard.serving.features import FeatureCheck, FeatureLookup
from shipyard.serving.feedback import FeedbackDesk, feedback_desk
from shipyard.serving.hot_swap import ModelSlot
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.middleware import (
    RequestIdMiddleware,
    error_response,
    internal_error_response,
    route_error_response,
)
from shipyard.serving.pipeline import PredictionService
from shipyard.serving.router import StickyKey
from shipyard.serving.routes import server_routes
from shipyard.serving.shadow import ShadowRunner
from shipyard.serving.stages import (
    AuthenticateStep,
    BatchStep,
    BearerAuthentication,
    CountedPredict,
    EnrichStep,
    LiveLog,
    MicroBatching,
    NoLog,
    TrafficRouting,
    Unbatched,
    ValidateStep,
)
from shipyard.serving.wire import PROTOCOLS

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RequestIdMiddleware", "create_app"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


def create_app(
    served: ServedModel | ModelSlot,
    *,
    log: PredictionLogWriter | None = None,
    labels: PredictionLogWriter | FeedbackDesk | None = None,
    batch: BatchSettings | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    sticky: StickyKey | None = None,
    shadow_capacity: int = 1000,
    on_shutdown: Sequence[Callable[[], None]] = (),
    access: ServerAccess | None = None,
    authenticate: AuthenticateStep | None = None,
    validate: ValidateStep | None = None,
    enrich: EnrichStep | None = None,
) -> PredictionRoutes:
    """An app serving ``served`` under its model name on every protocol.

    ``served`` is one model, or a slot whose lineup (champion, challengers, shadow) a
    :class:`~shipyard.serving.hot_swap.GenerationWatcher` keeps current. ``log`` receives
    every prediction; ``labels`` (a feedback desk, or a label-log writer for its folder)
    takes ``POST /v1/feedback``; ``batch`` turns on micro-batching; ``sticky`` names the
    routing key. ``max_body_bytes`` bounds every body, before and after gzip or deflate
    decoding (413); ``body_timeout_seconds`` is how long a body may take to arrive after
    its headers (408, and the connection closes). ``on_shutdown`` runs when the server
    stops, after in-flight requests and queued shadow predictions are done.
    ``access`` says which routes need which token (:mod:`shipyard.serving.auth`; default:
    none, for an app behind authentication of its own; ``shipyard serve`` always passes
    one). ``authenticate``, ``validate`` and ``enrich`` replace those pipeline steps
    (default: ``access``'s rule for predictions, the model's signature, the inputs as
    sent) for every protocol.
    """
    slot = served if isinstance(served, ModelSlot) else ModelSlot(served)
    access = ServerAccess.open() if access is None else access
    if authenticate is None and access.predictions:
        authenticate = BearerAuthentication(access, slot.current.name)
    desk = feedback_desk(labels, slot.current.name, namespaced=authenticate is not None)
    metrics = ServerMetrics(slot, lambda: _writers(log, labels))
    shadows = ShadowRunner(log, capacity=shadow_capacity, observe=metrics.observe_shadow)
    metrics.shadows = shadows
    batching: BatchStep = Unbatched()
    if batch is not None and batch.enabled:
        batching = micro = MicroBatching(batch)
        metrics.batch_queue = lambda: micro.queued_rows
    service = PredictionService(
        slot,
        authenticate=authenticate,
        # A model with the features tag is served from entity keys; others as sent.
        validate=FeatureCheck() if validate is None else validate,
        enrich=FeatureLookup(metrics) if enrich is None else enrich,
        route=TrafficRouting(sticky),
        batch=batching,
        predict=CountedPredict(metrics),
        log=NoLog() if log is None else LiveLog(log),
        shadows=shadows,
    )

    routes = server_routes(
        slot,
        PROTOCOLS,
        labels=desk,
        metrics=metrics,
        max_body_bytes=max_body_bytes,
        access=access,
    )
    app = _starlette(routes, shadows, on_shutdown, body_timeout_seconds, max_body_bytes)
    app.state.shadows = shadows
    app.state.metrics = metrics
    app.state.service = service
    app.state.access = access
    return PredictionRoutes(
        app,
        service,
        PROTOCOLS,
        metrics=metrics,
        max_body_bytes=max_body_bytes,
        body_timeout_seconds=body_timeout_seconds,
    )


def _starlette(
    routes: Sequence[BaseRoute],
    shadows: ShadowRunner,
    on_shutdown: Sequence[Callable[[], None]],
    body_timeout_seconds: float,
    max_body_bytes: int,
) -> Starlette:
    """The Starlette app for every route but the fast prediction path."""
    return Starlette(
        routes=routes,
        exception_handlers=_EXCEPTION_HANDLERS,
        middleware=[
            Middleware(
                RequestIdMiddleware,
                body_timeout_seconds=body_timeout_seconds,
                max_body_bytes=max_body_bytes,
            )
        ],
        lifespan=_lifespan(shadows, on_shutdown),
    )


_EXCEPTION_HANDLERS: dict[Any, Any] = {
    ShipyardError: error_response,
    HTTPException: route_error_response,  # unknown routes, wrong methods
    Exception: internal_error_response,
}


def _lifespan(
    shadows: ShadowRunner, on_shutdown: Sequence[Callable[[], None]]
) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]:
    """On shutdown, after in-flight requests: drain the shadows, then ``on_shutdown``."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        shadows.close()
        for step in on_shutdown:
            step()

    return lifespan


def _writers(*logs: PredictionLogWriter | FeedbackDesk | None) -> list[PredictionLogWriter]:
    """The log writers among ``logs``, whose queues ``/metrics`` reports."""
    return [log for log in logs if isinstance(log, PredictionLogWriter)]
