"""One request pipeline for every prediction route, whatever its protocol.

:meth:`PredictionService.serve` takes a call and the protocol it came in on, and runs:

decode → authenticate → validate → enrich → route → batch → predict → log → encode.

Decode and encode are the protocol's (:mod:`shipyard.serving.wire`). The other steps
are the service's, each a small object passed to its constructor
(:mod:`shipyard.serving.stages`), so a test or a later capability replaces one step for
every protocol at once.

Validate and enrich produce the inputs *for a model's input spec*, so they run when the
first spec is known, at most once per spec: before routing when the route is sticky by
an input column (the key is read from the champion's inputs), otherwise for the version
the router picked, and once more only if a version with another spec answers or shadows.
The lineup is read once: the request finishes on the models it started with. A failed
live prediction is logged too (the roll-out's error guardrail needs it); the shadow copy
is queued after the live answer is logged, off the request path.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from shipyard.errors import RequestError
from shipyard.serving.stages import (
    Anonymous,
    AsSent,
    AuthenticateStep,
    BatchStep,
    CountedPredict,
    EnrichStep,
    LogStep,
    NoLog,
    PredictStep,
    RouteStep,
    SignatureCheck,
    TrafficRouting,
    Unbatched,
    ValidateStep,
    check_model,
)

if TYPE_CHECKING:
    from shipyard.models.served import ServedModel
    from shipyard.models.signature import InputSpec
    from shipyard.serving.hot_swap import ModelSlot
    from shipyard.serving.request import Call, Reply, Request, WireProtocol
    from shipyard.serving.shadow import ShadowRunner

__all__ = ["PredictionService"]


class PredictionService:
    """Answers prediction calls from the models in ``slot``, one step object per stage.

    Every step has a default that does what the server does without configuration:
    anyone may predict, the body is checked against the model's signature and used as
    sent, traffic follows the lineup's plan (no sticky key), each request is its own
    ``predict`` call, and nothing is logged or shadowed.
    """

    def __init__(
        self,
        slot: ModelSlot,
        *,
        authenticate: AuthenticateStep | None = None,
        validate: ValidateStep | None = None,
        enrich: EnrichStep | None = None,
        route: RouteStep | None = None,
        batch: BatchStep | None = None,
        predict: PredictStep | None = None,
        log: LogStep | None = None,
        shadows: ShadowRunner | None = None,
    ) -> None:
        self.slot = slot
        self.name = slot.current.name
        self.authenticate = Anonymous() if authenticate is None else authenticate
        self.validate = SignatureCheck() if validate is None else validate
        self.enrich = AsSent() if enrich is None else enrich
        self.route = TrafficRouting() if route is None else route
        self.batch = Unbatched() if batch is None else batch
        self.predict = CountedPredict() if predict is None else predict
        self.log = NoLog() if log is None else log
        self.shadows = shadows

    async def serve(self, call: Call, protocol: WireProtocol) -> Reply:
        """Decode ``call``, predict with the version it is routed to, log it, and encode."""
        request = protocol.decode(call)
        request.principal = self.authenticate.authenticate(request)
        lineup = self.slot.lineup  # read once: the request finishes on this lineup
        if request.model is not None and request.model != self.name:
            check_model(request.model, self.name)
        decision = self.route.route(request, lineup, self.inputs)
        model = lineup.models[decision.version]
        request.role = decision.role
        inputs = self.inputs(request, model.spec)
        started = time.perf_counter()
        try:
            prediction = await self.batch.submit(model, inputs, self.predict)
        except Exception:
            self.log.log(request, model, inputs, None, started)
            raise
        self.log.log(request, model, inputs, prediction, started)
        if decision.shadow:
            shadow = lineup.shadow
            if shadow is not None and self.shadows is not None:
                self._copy_to_shadow(request, shadow, model, inputs)
        return protocol.encode(request, model, prediction)

    def inputs(self, request: Request, spec: InputSpec) -> np.ndarray:
        """The request's inputs for a model reading ``spec``: validated, then enriched."""
        if request.spec is not spec and request.spec != spec:
            matrix = self.validate.validate(request, spec)
            request.inputs = self.enrich.enrich(request, spec, matrix)
            request.spec = spec
        assert request.inputs is not None
        return request.inputs

    def _copy_to_shadow(
        self, request: Request, shadow: ServedModel, live: ServedModel, inputs: np.ndarray
    ) -> None:
        """Queue the shadow's copy; inputs the shadow cannot read are logged as its error."""
        assert self.shadows is not None
        if shadow.spec != live.spec:
            try:
                inputs = self.inputs(request, shadow.spec)
            except RequestError:
                inputs = np.empty((0, len(shadow.spec.columns)), dtype=object)
        served = request.features
        if served is not None and served.spec != shadow.spec:
            served = None  # looked up for another spec: not the shadow's features
        self.shadows.submit(shadow, inputs, request.log_id, served)
