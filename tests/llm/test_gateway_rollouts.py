"""Roll-outs of LLM versions through the gateway: rollback, canary, sticky, shadow, fallback.

The same generation mechanism as classical models: an audited alias move or a traffic
change bumps the model's generation, the gateway's watcher swaps its lineup within
``serving.poll_seconds``. Real gateway under uvicorn on 127.0.0.1, the real ``openai``
client, the real registry and control plane; the LLM provider is the deterministic
stand-in (:mod:`tests.support.llm_provider`), whose answer repeats the system message,
so each answer shows which version's prompt produced it. It is the only stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionUserMessageParam

from shipyard.logs.reader import query_log
from shipyard.logs.root import project_log_root
from tests.support import wait_for
from tests.support.llm_projects import LlmProject
from tests.support.llm_provider import StandInProvider, stand_in

USER: ChatCompletionUserMessageParam = {"role": "user", "content": "hello"}


@pytest.fixture
def provider() -> Iterator[StandInProvider]:
    with stand_in() as running:
        yield running


def client_of(url: str) -> openai.OpenAI:
    """The real openai client at the gateway, without its own retries."""
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def ask(client: openai.OpenAI, user: str | None = None, model: str = "assistant") -> Any:
    """One chat call; the raw response (headers and the parsed completion)."""
    headers = {"X-User-ID": user} if user else {}
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[USER], extra_headers=headers
    )


def swapped_to(server: Any, generation: int) -> bool:
    """Whether the gateway serves ``generation`` of the traffic settings (or later)."""
    return bool(server.app.parts.slot.lineup.plan.generation >= generation)


def test_a_rollback_is_served_within_the_poll(provider: StandInProvider, tmp_path: Path) -> None:
    """Stand-in provider: promote v2, then `shipyard rollback`'s move back to v1; the
    gateway answers with each version's prompt in turn, without a restart."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    first = llm.register("You are version one.")
    second = llm.register("You are version two.")
    llm.promote(first)
    with llm.gateway() as (url, _server):
        client = client_of(url)
        answer = ask(client)
        assert answer.headers["x-model-version"] == first
        assert "version one" in answer.parse().choices[0].message.content
        llm.promote(second)
        wait_for(
            lambda: ask(client).headers["x-model-version"] == second,
            what="the gateway to answer with the promoted version 2",
        )
        assert llm.rollback() == first
        wait_for(
            lambda: ask(client).headers["x-model-version"] == first,
            what="the gateway to answer with version 1 after the rollback",
        )
        assert "version one" in ask(client).parse().choices[0].message.content


def test_a_canary_splits_by_weight_and_a_user_sticks_to_one_version(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: with v2 a 50 % challenger and sticky routing on X-User-ID,
    each user keeps one version across calls, and both versions get users."""
    llm = LlmProject.create(
        tmp_path / "assistant", [provider], {"serving": {"sticky_key": "header:X-User-ID"}}
    )
    first = llm.register("You are version one.")
    second = llm.register("You are version two.")
    llm.promote(first)
    with llm.gateway() as (url, server):
        generation = llm.traffic({second: 0.5})
        wait_for(lambda: swapped_to(server, generation), what="the canary's traffic plan")
        client = client_of(url)
        seen: dict[str, str] = {}
        for number in range(24):
            user = f"user-{number}"
            answer = ask(client, user)
            version = answer.headers["x-model-version"]
            role = answer.headers["x-model-role"]
            assert role == ("challenger" if version == second else "champion")
            prompt = "version two" if version == second else "version one"
            assert prompt in answer.parse().choices[0].message.content
            seen[user] = version
        for user, version in seen.items():
            assert ask(client, user).headers["x-model-version"] == version
        pinned = ask(client, model=f"assistant/{second}")
    assert set(seen.values()) == {first, second}
    assert pinned.headers["x-model-version"] == second


def test_a_shadow_gets_a_copy_off_the_request_path(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: with v2 as shadow, the client's answer is v1's; the provider
    also receives v2's prompt, and the trace log holds the shadow's call (role shadow)."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    first = llm.register("You are version one.")
    second = llm.register("You are version two.")
    llm.promote(first)
    with llm.gateway() as (url, server):
        generation = llm.traffic(shadow=second)
        wait_for(lambda: swapped_to(server, generation), what="the shadow's traffic plan")
        answer = ask(client_of(url))

        def shadow_called() -> bool:
            return any(
                request["messages"][0]["content"] == "You are version two."
                for request in provider.requests
            )

        wait_for(shadow_called, what="the shadow version's call to reach the provider")
    assert answer.headers["x-model-version"] == first
    assert "version one" in answer.parse().choices[0].message.content
    rows = query_log(project_log_root(llm.config), "assistant", kind="traces").to_pylist()
    shadow = [r for r in rows if r["role"] == "shadow" and r["name"] == "provider.call"]
    assert shadow and shadow[0]["version"] == second
    assert "version two" in shadow[0]["output"]


def test_a_failing_provider_falls_back_to_the_next(tmp_path: Path) -> None:
    """Two stand-in providers: the primary answers 500 every time, so the backup
    answers; the client sees a normal completion and which provider gave it."""
    with stand_in() as primary, stand_in() as backup:
        llm = LlmProject.create(tmp_path / "assistant", [primary, backup])
        llm.promote(llm.register("You are terse."))
        primary.fail("500", times=100)
        with llm.gateway() as (url, _server):
            answer = ask(client_of(url))
    assert answer.headers["x-shipyard-provider"] == "backup"
    assert answer.parse().choices[0].message.content.startswith("Answer: hello")
    assert len(backup.requests) == 1 and len(primary.requests) >= 1
