"""The records LLM modules pass each other: token usage, cost, a provider's completion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shipyard.jsonable import Record

__all__ = ["Completion", "Cost", "TokenUsage"]


@dataclass(frozen=True)
class TokenUsage(Record):
    """Tokens one call used: prompt (input), completion (output), and cached prompt tokens."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> TokenUsage:
        """Read an OpenAI ``usage`` object (``prompt_tokens_details.cached_tokens`` too)."""
        if not usage:
            return cls()
        details = usage.get("prompt_tokens_details") or {}
        return cls(
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            int(details.get("cached_tokens") or 0),
        )

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
        }


@dataclass(frozen=True)
class Cost(Record):
    """What a call cost, and where the number came from.

    ``source`` is ``provider`` (the provider reported it: it wins), ``computed`` (from
    the price table valid when the call was made, ``table_version``), or ``unpriced``
    (no price matched: ``amount`` is 0).
    """

    amount: float
    currency: str
    source: Literal["provider", "computed", "unpriced"]
    table_version: int | None = None


@dataclass(frozen=True)
class Completion:
    """A non-streamed chat completion, as the provider (or the cache) answered it.

    ``body`` is the OpenAI ``chat.completion`` object; ``provider`` the provider that
    answered; ``attempts`` the calls it took (retries and fallbacks included).
    """

    body: dict[str, Any]
    provider: str
    attempts: int = 1
    latency_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The first choice's message content ("" when there is none)."""
        choices = self.body.get("choices") or []
        if not choices:
            return ""
        return str((choices[0].get("message") or {}).get("content") or "")

    @property
    def usage(self) -> TokenUsage:
        """The provider-reported token usage."""
        return TokenUsage.from_openai(self.body.get("usage"))

    @property
    def reported_cost(self) -> float | None:
        """A cost the provider reported in ``usage.cost`` (OpenRouter-style), if any."""
        cost = (self.body.get("usage") or {}).get("cost")
        return None if cost is None else float(cost)
