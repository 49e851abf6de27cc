"""What the gateway is built from: the providers, the cache, the caps, the prices, and the
:class:`GatewayParts` record that holds them with the slot, the tokens and the metrics.

Each is a small interface the gateway is handed when it is built
(:func:`shipyard.llm.server.build_gateway` passes the real ones: the
:class:`~shipyard.llm.providers.ProviderPool`, the
:class:`~shipyard.llm.cache.SemanticCache`, the :class:`~shipyard.llm.caps.CapGuard`
and the :class:`~shipyard.llm.prices.PriceBook`). The ``No…`` classes here stand in
when a part is off (no cache configured, no caps, no prices): each costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.llm.types import Completion, Cost, TokenUsage
from shipyard.models.llm import LLMSpec

if TYPE_CHECKING:
    from shipyard.config.llm import CacheSettings, CapSettings
    from shipyard.llm.metrics import LlmMetrics
    from shipyard.llm.traces import Trace
    from shipyard.logs.pii import PiiPolicy
    from shipyard.serving.auth import ServerAccess
    from shipyard.serving.hot_swap import ModelSlot
    from shipyard.serving.metrics import ServerMetrics
    from shipyard.serving.router import StickyKey

__all__ = [
    "CacheHitLike",
    "CacheLike",
    "CapsLike",
    "GatewayParts",
    "NoCaps",
    "NoPrices",
    "PoolLike",
    "PricesLike",
    "provider_model",
]


class PoolLike(Protocol):
    """The provider pool: chat (whole or streamed) and embeddings, with retries and fallback."""

    async def chat(self, spec: LLMSpec, body: dict[str, Any]) -> Completion: ...

    def stream(self, spec: LLMSpec, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]: ...

    async def embed(self, body: dict[str, Any], provider: str | None = None) -> dict[str, Any]: ...


class CacheHitLike(Protocol):
    """A cached answer: the completion body, the layer that found it, how close it was."""

    @property
    def answer(self) -> dict[str, Any]: ...

    @property
    def layer(self) -> str: ...

    @property
    def similarity(self) -> float: ...

    @property
    def age_seconds(self) -> float: ...


class CacheLike(Protocol):
    """The semantic cache: per-tenant namespaces, scoped by version, prompt and context."""

    def lookup(self, namespace: str, scope: str, query: str) -> CacheHitLike | None: ...

    def store(self, namespace: str, scope: str, query: str, answer: dict[str, Any]) -> None: ...


class CapsLike(Protocol):
    """Per-tenant caps: check (counts the request, 429 when over), charge, headers."""

    def check(self, tenant: str, header: str | None = None) -> Any: ...

    def charge(self, tenant: str, cents: float) -> None: ...

    def headers(self, decision: Any) -> dict[str, str]: ...


class PricesLike(Protocol):
    """The price book: what a call cost (provider-reported wins)."""

    def cost(
        self, provider_model: str, usage: TokenUsage, at: datetime, reported: float | None
    ) -> Cost: ...


class NoCaps:
    """No caps: every tenant may call without limit."""

    def check(self, tenant: str, header: str | None = None) -> None:
        """Nothing to check."""
        return None

    def charge(self, tenant: str, cents: float) -> None:
        """Nothing to charge."""

    def headers(self, decision: Any) -> dict[str, str]:
        """No rate-limit headers."""
        return {}


class NoPrices:
    """No price table: a provider-reported cost, else unpriced."""

    def __init__(self, currency: str = "USD") -> None:
        self.currency = currency

    def cost(
        self, provider_model: str, usage: TokenUsage, at: datetime, reported: float | None
    ) -> Cost:
        """The reported cost, or 0 marked unpriced."""
        if reported is not None:
            return Cost(float(reported), self.currency, "provider")
        return Cost(0.0, self.currency, "unpriced")


def header_of(headers: Mapping[str, str], name: str) -> str | None:
    """Header ``name`` (any case) from lower-cased ``headers``."""
    return headers.get(name.lower())


@dataclass
class GatewayParts:
    """What one gateway answers with; ``build_gateway`` fills it from the configuration."""

    name: str
    slot: ModelSlot
    pool: PoolLike
    access: ServerAccess
    caps: CapsLike
    prices: PricesLike
    metrics: ServerMetrics
    cap_settings: CapSettings
    cache: CacheLike | None = None
    cache_settings: CacheSettings | None = None
    sticky: StickyKey | None = None
    record: Callable[[Trace], None] | None = None  # the trace log and metrics (a TraceSink)
    pii: PiiPolicy | None = None
    guardrails: tuple[re.Pattern[str], ...] = ()
    shadow_capacity: int = 1000
    llm_metrics: LlmMetrics | None = None  # tokens, cost, cache, ttft, refusals


def provider_model(completion: Completion, spec: LLMSpec) -> str:
    """The model name the provider that answered knows the version's model by."""
    return str(completion.extra.get("provider_model") or completion.body.get("model") or spec.model)
