"""One embeddings request through the gateway: ``POST /v1/embeddings``.

authenticate → parse → tenant → cap check → the champion's provider (the pool's
retries and fallback) → base64 if asked → respond → trace and charge.

The request's ``model`` is the provider's embedding model (passed on, mapped through
the provider's ``models``); the served LLM version only chooses the provider. The pool
always asks for floats; the gateway encodes ``base64`` itself (little-endian float32,
as OpenAI does), so both encodings carry the same numbers. The trace is an
``embeddings`` root span (role ``embeddings``) with a ``provider.embed`` span carrying
the tokens and cost, kept apart from chat answers (the production judge reads only
``gateway`` and ``provider.call`` spans).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shipyard.access import Scope
from shipyard.errors import CapExceeded, ProviderError, ShipyardError
from shipyard.jsonable import dump_json
from shipyard.llm.chat_flow import ChatFlow, Send, send_json
from shipyard.llm.gateway_seams import GatewayParts
from shipyard.llm.traces import Trace
from shipyard.llm.types import TokenUsage
from shipyard.llm.wire import error_of, parse_embeddings

__all__ = ["EmbeddingsFlow", "as_base64"]

logger = logging.getLogger(__name__)


class EmbeddingsFlow:
    """Answers ``POST /v1/embeddings`` with :class:`GatewayParts`."""

    def __init__(self, parts: GatewayParts, chat: ChatFlow) -> None:
        self.parts = parts
        self.chat = chat  # its trace hand-off

    async def answer(
        self,
        headers: Mapping[str, str],
        body: bytes,
        request_id: str,
        send: Send,
        _receive: Any = None,
    ) -> tuple[int, str, str]:
        """Answer one request on ``send``; the status, version and role, for the metrics."""
        from shipyard.llm.cap_policies import policy_header_of, tenant_of

        parts = self.parts
        champion = parts.slot.lineup.champion
        try:
            principal = None
            if parts.access.predictions:
                principal = parts.access.require(
                    headers.get("authorization"), Scope.SERVE_INVOKE, parts.name
                )
            request = parse_embeddings(body)
            tenant = tenant_of(principal, headers, parts.cap_settings)
            try:
                cap = parts.caps.check(tenant, policy_header_of(headers, parts.cap_settings))
            except CapExceeded:
                if parts.llm_metrics is not None:
                    parts.llm_metrics.refused(parts.name, tenant)
                raise
            answer = await self._embed(request, champion, tenant, request_id)
        except Exception as error:
            if not isinstance(error, ShipyardError):
                logger.exception("embeddings request %s failed", request_id)
            status, payload, extra = error_of(error, request_id)
            await send_json(send, status, payload, request_id, extra)
            return status, "unknown", "unknown"
        extra = {"x-model-version": champion.version, "x-model-role": "embeddings"}
        if cap is not None:
            extra.update(parts.caps.headers(cap))
        await send_json(send, 200, dump_json(answer), request_id, extra)
        return 200, champion.version, "embeddings"

    async def _embed(
        self, request: Any, champion: Any, tenant: str, request_id: str
    ) -> dict[str, Any]:
        parts = self.parts
        trace = Trace(
            request_id=request_id,
            model=parts.name,
            version=champion.version,
            role="embeddings",
            tenant=tenant,
        )
        root = trace.start("embeddings", "CHAIN")
        call = trace.start("provider.embed", "EMBEDDING", parent=root)
        provider = champion.model.spec.provider
        try:
            answer = await parts.pool.embed(request.provider_body(), provider=provider)
        except ProviderError as error:
            call.set(provider=error.provider).fail(error)
            root.fail(error)
            self.chat.finish(trace)
            if parts.llm_metrics is not None:
                parts.llm_metrics.provider_error(parts.name, error.provider, error.status)
            raise
        used = answer.get("usage") or {}
        usage = TokenUsage(int(used.get("prompt_tokens") or 0), 0, 0)
        cost = parts.prices.cost(request.model, usage, datetime.now(UTC), None)
        call.set(provider=provider, provider_model=request.model).usage(usage, cost)
        self.chat.finish(trace)
        if cost.amount > 0:
            try:
                parts.caps.charge(tenant, cost.amount * 100.0)
            except Exception as error:  # answered already: log, never fail it
                logger.warning("charging tenant %s failed: %s", tenant, error)
        answer = {**answer, "model": request.model}
        if request.encoding_format == "base64":
            answer["data"] = [as_base64(item) for item in answer.get("data") or []]
        return answer


def as_base64(item: Mapping[str, Any]) -> dict[str, Any]:
    """An embedding item with its vector as base64 little-endian float32 (OpenAI's form)."""
    vector = item.get("embedding")
    if isinstance(vector, str):
        return dict(item)
    packed = np.asarray(vector, dtype="<f4").tobytes()
    return {**item, "embedding": base64.b64encode(packed).decode("ascii")}
