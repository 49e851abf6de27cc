"""The steps of the prediction pipeline: one small interface each, and what the server uses.

:class:`~shipyard.serving.pipeline.PredictionService` runs them in order for every
protocol: authenticate → validate → enrich → route → batch → predict → log (decode and
encode are the protocol's own, in :mod:`shipyard.serving.wire`). Each interface has one
method; pass another object with that method to the service to change one step, e.g. in a
test. :class:`Anonymous` lets anyone predict (``serving.auth: off``);
:class:`BearerAuthentication` needs a token with serve:invoke on the model. :class:`AsSent`
does nothing: the feature store fills it in.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from shipyard.access import Scope
from shipyard.errors import NotFoundError
from shipyard.logs.writer import PredictionBatch, PredictionLogWriter
from shipyard.models.served import Prediction, ServedModel
from shipyard.serving.batcher import BatchSettings, MicroBatcher
from shipyard.serving.features import sent_spec
from shipyard.serving.router import Decision, StickyKey

if TYPE_CHECKING:
    import numpy as np

    from shipyard.models.signature import InputSpec
    from shipyard.project import Principal
    from shipyard.serving.auth import ServerAccess
    from shipyard.serving.hot_swap import Lineup
    from shipyard.serving.metrics import ServerMetrics
    from shipyard.serving.request import Request

__all__ = [
    "Anonymous",
    "AsSent",
    "AuthenticateStep",
    "BatchStep",
    "BearerAuthentication",
    "CountedPredict",
    "EnrichStep",
    "Inputs",
    "LiveLog",
    "LogStep",
    "MicroBatching",
    "NoLog",
    "PredictStep",
    "RouteStep",
    "SignatureCheck",
    "TrafficRouting",
    "Unbatched",
    "ValidateStep",
    "check_model",
    "pinned_model",
]

# The request's inputs for a spec: validated, then enriched (the route step may need them).
Inputs = Callable[["Request", "InputSpec"], "np.ndarray"]


class AuthenticateStep(Protocol):
    """Who asks: a principal, or None for anyone; raise a ShipyardError (401/403) to refuse."""

    def authenticate(self, request: Request) -> Principal | None: ...


class Anonymous:
    """Everyone may predict, unidentified (``serving.auth: off``): costs nothing."""

    def authenticate(self, request: Request) -> Principal | None:
        """Nobody in particular."""
        return None


class BearerAuthentication:
    """Predictions need a bearer token whose principal holds serve:invoke on the model.

    The model is the one the path names, else the one served (``/invocations``). A
    request without a valid token is refused with 401, one whose principal lacks the
    scope or a grant on the model with 403, before anything else reads its body.
    """

    def __init__(self, access: ServerAccess, model: str) -> None:
        self.access = access
        self.model = model

    def authenticate(self, request: Request) -> Principal:
        """The principal of the request's ``Authorization: Bearer`` token."""
        return self.access.require(
            request.headers.get("authorization"),
            Scope.SERVE_INVOKE,
            request.model or self.model,
        )


class ValidateStep(Protocol):
    """The request's inputs for a model reading ``spec``; a RequestError (4xx) if unfit."""

    def validate(self, request: Request, spec: InputSpec) -> np.ndarray: ...


class SignatureCheck:
    """The body, read by its protocol against the model's signature (columns, types, ranges)."""

    def validate(self, request: Request, spec: InputSpec) -> np.ndarray:
        """The matrix the protocol reads, in ``spec``'s column order."""
        return request.protocol.read(request, spec)


class EnrichStep(Protocol):
    """The validated inputs with what the client does not send (e.g. looked-up features)."""

    def enrich(self, request: Request, spec: InputSpec, inputs: np.ndarray) -> np.ndarray: ...


class AsSent:
    """The inputs as the client sent them (until the server has a feature store)."""

    def enrich(self, request: Request, spec: InputSpec, inputs: np.ndarray) -> np.ndarray:
        """``inputs``, unchanged."""
        return inputs


class RouteStep(Protocol):
    """Which version in ``lineup`` answers, its role, and whether a shadow gets a copy."""

    def route(self, request: Request, lineup: Lineup, inputs: Inputs) -> Decision: ...


class TrafficRouting:
    """A pinned version as asked; else the lineup's router, sticky by a header or column."""

    def __init__(self, sticky: StickyKey | None = None) -> None:
        self.sticky = sticky

    def route(self, request: Request, lineup: Lineup, inputs: Inputs) -> Decision:
        """The pinned version (404 if not loaded), or the router's pick for the request's key."""
        if request.version is not None:
            version = pinned_model(lineup, request.version).version
            return Decision(version, lineup.role(version), False)
        key: str | None = None
        sticky = self.sticky
        if sticky is not None:
            if sticky.source == "header":
                key = request.headers.get(sticky.name)
            else:
                spec = lineup.champion.spec
                if sticky.name in spec.column_set:
                    key = str(inputs(request, spec)[0, spec.columns.index(sticky.name)])
                else:  # an entity key a feature model is looked up by, not a model column
                    sent = sent_spec(spec)
                    if sent is not spec and sticky.name in sent.column_set:
                        values = request.protocol.read(request, sent)
                        key = str(values[0, sent.columns.index(sticky.name)])
        return lineup.router.decide(key)


def check_model(requested: str, served: str) -> None:
    """A 404 unless ``requested`` is the model this server serves."""
    if requested != served:
        raise NotFoundError(
            f"Model {requested!r} is not served here.", hint=f"This server serves {served!r}."
        )


def pinned_model(lineup: Lineup, version: str) -> ServedModel:
    """``version`` from ``lineup``, or a 404 naming the versions it has."""
    model = lineup.models.get(version)
    if model is None:
        raise NotFoundError(
            f"Version {version} of {lineup.champion.name!r} is not served here.",
            hint=f"Served versions: {', '.join(sorted(lineup.models))}.",
        )
    return model


class PredictStep(Protocol):
    """``model``'s prediction for a matrix (one request's rows, or a batch of requests)."""

    def predict(self, model: ServedModel, inputs: np.ndarray) -> Prediction: ...


class CountedPredict:
    """The model's own ``predict``, with the rows of each call counted for ``/metrics``."""

    def __init__(self, metrics: ServerMetrics | None = None) -> None:
        self.metrics = metrics

    def predict(self, model: ServedModel, inputs: np.ndarray) -> Prediction:
        """``model.predict(inputs)``."""
        if self.metrics is not None:
            self.metrics.batch_rows.labels(model.name, model.version).observe(len(inputs))
        return model.predict(inputs)


class BatchStep(Protocol):
    """One request's prediction by ``predict``, maybe in one call with concurrent requests'."""

    async def submit(
        self, model: ServedModel, inputs: np.ndarray, predict: PredictStep
    ) -> Prediction: ...


class Unbatched:
    """Each request is its own ``predict`` call."""

    async def submit(
        self, model: ServedModel, inputs: np.ndarray, predict: PredictStep
    ) -> Prediction:
        """The prediction for ``inputs`` alone."""
        return predict.predict(model, inputs)


class MicroBatching:
    """Concurrent requests for one version share a ``predict`` call (one batcher per model)."""

    def __init__(self, settings: BatchSettings) -> None:
        self.settings = settings
        # A swapped-out model's batcher goes with it.
        self._batchers: weakref.WeakKeyDictionary[
            ServedModel, MicroBatcher[Prediction, Prediction]
        ] = weakref.WeakKeyDictionary()

    @property
    def queued_rows(self) -> int:
        """Rows waiting for their batch, over every model."""
        return sum(batcher.queued_rows for batcher in list(self._batchers.values()))

    async def submit(
        self, model: ServedModel, inputs: np.ndarray, predict: PredictStep
    ) -> Prediction:
        """``inputs``' share of the next batched prediction of ``model``."""
        batcher = self._batchers.get(model)
        if batcher is None:  # the predict step of the model's first request serves it
            call = functools.partial(predict.predict, model)
            batcher = self._batchers[model] = MicroBatcher(call, self.settings)
        return await batcher.submit(inputs)


class LogStep(Protocol):
    """Record one live prediction; ``prediction`` is None when the model failed."""

    def log(
        self,
        request: Request,
        model: ServedModel,
        inputs: np.ndarray,
        prediction: Prediction | None,
        started: float,
    ) -> None: ...


class LiveLog:
    """Journals each live prediction (or failure) before the answer leaves.

    One ``write`` to the worker's journal (:mod:`shipyard.logs.journal`), no disk flush:
    a killed worker loses nothing it answered, and the Parquet roll happens off the
    request path.
    """

    def __init__(self, writer: PredictionLogWriter) -> None:
        self.writer = writer

    def log(
        self,
        request: Request,
        model: ServedModel,
        inputs: np.ndarray,
        prediction: Prediction | None,
        started: float,
    ) -> None:
        """One log entry, timed from ``started`` (a ``perf_counter`` reading) to now.

        Features served for ``model`` add their entity keys and event times after its
        columns (:class:`~shipyard.serving.features.ServedFeatures`).
        """
        columns = model.spec.columns
        served = request.features
        if served is not None and served.spec is model.spec:
            columns, inputs = served.beside(columns, inputs)
        self.writer.log(
            PredictionBatch(
                request_id=request.log_id,  # in the caller's namespace
                time=datetime.now(UTC),
                model=model.name,
                version=model.version,
                role="live",
                columns=columns,
                matrix=inputs,
                labels=None if prediction is None else prediction.labels,
                probabilities=None if prediction is None else prediction.probabilities,
                latency_ms=(time.perf_counter() - started) * 1000,
                status="error" if prediction is None else "ok",
            )
        )


class NoLog:
    """Records nothing (``--no-log-predictions``)."""

    def log(
        self,
        request: Request,
        model: ServedModel,
        inputs: np.ndarray,
        prediction: Prediction | None,
        started: float,
    ) -> None:
        """Nothing."""
