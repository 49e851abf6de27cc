"""Shadow calls: a copy of a live chat request sent to the shadow version, off the request path.

The live request hands the checked request to :meth:`ShadowCalls.submit`, which only
starts a task and returns. The task waits for the live request to go first, renders
the request with the *shadow's* prompt and parameters, calls its provider (whole, never
streamed), and traces the call with role ``shadow``: its answer is recorded, never
returned. At most ``shadow_capacity`` shadow calls run at once; what does not fit is
dropped and counted. A shadow that fails is a traced error, not an outage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.llm.gateway_seams import provider_model
from shipyard.llm.traces import TextMask, Trace
from shipyard.models.llm import render

if TYPE_CHECKING:
    from shipyard.llm.gateway_seams import GatewayParts
    from shipyard.llm.wire import ChatRequest
    from shipyard.models.llm import LLMSpec

__all__ = ["ShadowCalls"]


class ShadowCalls:
    """The shadow calls under way, each its own task; :meth:`submit` never waits."""

    def __init__(self, parts: GatewayParts, finish: Callable[[Trace], None]) -> None:
        self.parts = parts
        self.finish = finish
        self.running: set[asyncio.Task[None]] = set()
        self.dropped = 0

    def __len__(self) -> int:
        return len(self.running)

    def submit(self, request: ChatRequest, shadow: Any, tenant: str, request_id: str) -> bool:
        """Start the shadow's call of ``request``; False (and counted) when too many run."""
        if len(self.running) >= self.parts.shadow_capacity:
            self.dropped += 1
            return False
        task = asyncio.get_running_loop().create_task(
            self._call(request, shadow, tenant, request_id)
        )
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        return True

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds) for the shadow calls under way."""
        if self.running:
            await asyncio.wait(set(self.running), timeout=timeout)

    async def _call(self, request: ChatRequest, shadow: Any, tenant: str, request_id: str) -> None:
        await asyncio.sleep(0)  # let the live request go first
        parts = self.parts
        spec: LLMSpec = shadow.model.spec
        trace = Trace(
            request_id=request_id,
            model=parts.name,
            version=shadow.version,
            role="shadow",
            tenant=tenant,
            prompt=spec.prompt_ref,
            mask=TextMask.of(parts.pii, request.variables) if parts.pii else None,
        )
        root = trace.start("gateway", "CHAIN")
        call = trace.start("provider.call", "LLM", parent=root)
        try:
            messages = render(spec, request.variables, request.messages)
            body = {**request.params, **spec.params, "messages": messages}
            call.set(input=messages)
            completion = await parts.pool.chat(spec, body)
            usage = completion.usage
            cost = parts.prices.cost(
                provider_model(completion, spec), usage, datetime.now(UTC), completion.reported_cost
            )
            call.set(provider=completion.provider, output=completion.text).usage(usage, cost)
            root.set(output=completion.text)
        except Exception as error:  # the shadow's failure is data, not an outage
            call.fail(error)
            root.fail(error)
        call.end()
        root.end()
        self.finish(trace)
        status = "error" if root.fields.get("status") == "error" else "ok"
        parts.metrics.requests.labels(parts.name, shadow.version, "shadow", "shadow", status).inc()
