"""What the gateway needs from the providers, the cache, the caps and the prices.

Each is a small interface the gateway is handed when it is built
(:func:`shipyard.llm.server.build_gateway` passes the real ones: the
:class:`~shipyard.llm.providers.ProviderPool`, the
:class:`~shipyard.llm.cache.SemanticCache`, the :class:`~shipyard.llm.caps.CapGuard`
and the :class:`~shipyard.llm.prices.PriceBook`). The ``No…`` classes here stand in
when a part is off (no cache configured, no caps, no prices): each costs nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from shipyard.llm.types import Completion, Cost, TokenUsage
from shipyard.models.llm import LLMSpec

__all__ = [
    "CacheHitLike",
    "CacheLike",
    "CapsLike",
    "NoCaps",
    "NoPrices",
    "PoolLike",
    "PricesLike",
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
