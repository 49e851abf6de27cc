"""The LLM provider stand-in for the tests: the one stand-in of the suite.

Tests of LLM workloads cannot reach a real provider (offline, no key, answers that
change), so they talk to :class:`~shipyard.demo.provider.StandInProvider`: a real HTTP
server on 127.0.0.1 that speaks OpenAI's documented API, answers as a pure function of
the request, and can be told to answer 429, 500, a timeout, a truncated stream or
garbage. Every test using it says so in its docstring.

    with stand_in() as provider:
        client = openai.OpenAI(base_url=provider.base_url, api_key="x")
        provider.fail("500", times=2)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shipyard.config.llm import ProviderSettings
from shipyard.demo.provider import (
    FAULTS,
    StandInProvider,
    answer_of,
    embedding_of,
    judge_verdict,
)

__all__ = [
    "FAULTS",
    "StandInProvider",
    "answer_of",
    "embedding_of",
    "judge_verdict",
    "provider_settings",
    "stand_in",
]


@contextmanager
def stand_in(*, report_cost: bool = False) -> Iterator[StandInProvider]:
    """A running stand-in on a free port for the block; stopped (held calls released) after."""
    with StandInProvider(report_cost=report_cost) as provider:
        yield provider


def provider_settings(
    provider: StandInProvider, name: str = "primary", **fields: object
) -> ProviderSettings:
    """``llm.providers`` settings pointing at ``provider``: no key, fast retries by default.

    ``fields`` override any setting (``api_key_env``, ``timeout_seconds``, ``max_retries``,
    ``backoff_seconds``, ``models`` ...).
    """
    values: dict[str, object] = {
        "name": name,
        "base_url": provider.base_url,
        "timeout_seconds": 5.0,
        "max_retries": 1,
        "backoff_seconds": 0.0,
    }
    return ProviderSettings.model_validate(values | fields)
