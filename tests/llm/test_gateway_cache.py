"""The semantic cache in front of the provider, as the gateway uses it.

Real gateway under uvicorn on 127.0.0.1 with the cache on (wordllama, offline), the
real ``openai`` client; the LLM provider is the deterministic stand-in
(:mod:`tests.support.llm_provider`), whose received requests show whether a call
reached it. It is the only stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from shipyard.logs.reader import query_log
from shipyard.logs.root import project_log_root
from tests.support.llm_projects import LlmProject
from tests.support.llm_provider import StandInProvider, stand_in
from tests.support.waiting import wait_for


@pytest.fixture
def provider() -> Iterator[StandInProvider]:
    with stand_in() as running:
        yield running


def ask(client: openai.OpenAI, text: str, **headers: str) -> Any:
    """One chat call with ``text`` as the user message; the raw response."""
    return client.chat.completions.with_raw_response.create(
        model="assistant",
        messages=[{"role": "user", "content": text}],
        extra_headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def test_a_repeated_question_is_answered_from_the_cache(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: the second identical question is an exact hit, never sent; a
    different amount is a miss (the literal guard); bypass skips the cache; another
    tenant has its own namespace; a streamed hit tells the cached text."""
    llm = LlmProject.create(
        tmp_path / "assistant",
        [provider],
        {"llm": {"cache": {"enabled": True}}, "serving": {"log_roll_seconds": 0.2}},
    )
    llm.promote(llm.register("You are a bank."))
    question = "How do I transfer $100 to Alice?"
    with llm.gateway() as (url, _server):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        first = ask(client, question, X_Request_ID="miss-1")
        sent = len(provider.requests)
        again = ask(client, question, X_Request_ID="hit-1")
        assert len(provider.requests) == sent
        other = ask(client, "How do I transfer $1000 to Alice?")
        assert len(provider.requests) == sent + 1
        bypass = ask(client, question, X_Shipyard_Cache="bypass")
        assert len(provider.requests) == sent + 2
        tenant = ask(client, question, X_Shipyard_Tenant="globex")
        assert len(provider.requests) == sent + 3
        streamed = client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": question}],
            stream=True,
            stream_options={"include_usage": True},
        )
        words = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        assert len(provider.requests) == sent + 3
    assert first.headers["x-cache"] == "miss"
    assert again.headers["x-cache"] == "hit-exact"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert other.headers["x-cache"] == "miss"
    assert bypass.headers["x-cache"] == "bypass"
    assert tenant.headers["x-cache"] == "miss"
    assert words == first.parse().choices[0].message.content
    rows = query_log(project_log_root(llm.config), "assistant", kind="traces").to_pylist()
    lookup = [r for r in rows if r["request_id"] == "hit-1" and r["name"] == "cache.lookup"]
    assert lookup and lookup[0]["cache"] == "exact"
    assert not [r for r in rows if r["request_id"] == "hit-1" and r["name"] == "provider.call"]


def test_a_provider_embedder_serves_the_cache_off_the_event_loop(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider, also the embedder (``provider:embed-small``): the gateway's
    lookups and stores embed through it from a worker thread (a blocking HTTP call must
    not stall the event loop), and the cache still answers a repeated question."""
    llm = LlmProject.create(
        tmp_path / "assistant",
        [provider],
        {"llm": {"cache": {"enabled": True, "embedder": "provider:embed-small"}}},
    )
    llm.promote(llm.register("You are a bank."))
    with llm.gateway() as (url, _server):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        question = "When does the branch on Main Street open?"
        first = ask(client, question)

        def cached() -> Any:
            # The store runs after the answer went out, in a thread: wait for it.
            sent = len([r for r in provider.requests if "messages" in r])
            answer = ask(client, question)
            hit = answer.headers["x-cache"] == "hit-exact"
            assert not hit or len([r for r in provider.requests if "messages" in r]) == sent
            return answer if hit else None

        again = wait_for(cached, what="the first answer to be stored in the cache")
        other = ask(client, "Can I order a new card online?")
    embedded = [r for r in provider.requests if "input" in r]
    assert first.headers["x-cache"] == "miss" and other.headers["x-cache"] == "miss"
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert embedded and all(r["model"] == "embed-small" for r in embedded)
