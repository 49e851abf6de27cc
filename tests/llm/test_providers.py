"""The provider pool: retries, backoff, fallback, passthrough of 4xx, streams, keys.

Every provider here is the local stand-in (shipyard.demo.provider.StandInProvider): a
deterministic HTTP server on 127.0.0.1 speaking OpenAI's documented API, told to fail
as each test needs. No real provider is called.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shipyard.config.llm import LlmSettings, ProviderSettings
from shipyard.errors import ConfigError, ProviderError
from shipyard.llm.providers import ProviderPool
from shipyard.models.llm import LLMSpec
from tests.support.llm_provider import (
    StandInProvider,
    answer_of,
    embedding_of,
    provider_settings,
    stand_in,
)
from tests.support.servers import free_port

T = TypeVar("T")
KEY = "sk-test-0123456789abcdef-secret"
SPEC = LLMSpec(provider="primary", model="chat-model")
USER = [{"role": "user", "content": "How far is the moon?"}]
BODY: dict[str, Any] = {"messages": USER, "temperature": 0}


def settings_of(**fields: Any) -> ProviderSettings:
    return ProviderSettings.model_validate(fields)


def pool_of(*settings: ProviderSettings, environ: dict[str, str] | None = None) -> ProviderPool:
    llm = LlmSettings.model_validate({"providers": list(settings)})
    return ProviderPool.of_settings(llm, environ or {}, Path("."))


def run(pool: ProviderPool, work: Callable[[], Awaitable[T]]) -> T:
    """``work()`` in a fresh event loop, closing the pool's clients after."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await pool.aclose()

    return asyncio.run(main())


async def collect(pool: ProviderPool, spec: LLMSpec, body: dict[str, Any]) -> list[dict]:
    return [chunk async for chunk in pool.stream(spec, body)]


def two(a: StandInProvider, b: StandInProvider, **fields: Any) -> ProviderPool:
    return pool_of(provider_settings(a, "primary", **fields), provider_settings(b, "backup"))


def test_chat_sends_the_key_and_the_provider_s_model_name() -> None:
    """The local stand-in (OpenAI's documented API) gets a Bearer key and the model name
    the provider knows; the completion says who answered."""
    with stand_in() as a:
        settings = provider_settings(a, api_key_env="PRIMARY_KEY", models={"chat-model": "gpt-x"})
        pool = pool_of(settings, environ={"PRIMARY_KEY": KEY})
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert completion.text == answer_of(USER) == "Answer: How far is the moon?"
    assert (completion.provider, completion.attempts) == ("primary", 1)
    assert completion.extra["provider_model"] == "gpt-x"
    assert completion.usage.prompt_tokens == 8 and completion.usage.completion_tokens == 6
    assert a.requests == [{**BODY, "model": "gpt-x"}]
    assert a.authorizations == [f"Bearer {KEY}"]


def test_a_provider_without_a_key_sends_no_authorization() -> None:
    """The local stand-in (OpenAI's documented API) sees no Authorization header."""
    with stand_in() as a:
        pool = pool_of(provider_settings(a))
        run(pool, lambda: pool.chat(SPEC, BODY))
    assert a.authorizations == [None]


@pytest.mark.parametrize("fault", ["429", "500", "garbage"])
def test_retries_then_falls_back_to_the_next_provider(fault: str) -> None:
    """The local stand-ins (OpenAI's documented API): the first fails every try, so the
    pool retries it max_retries times, then the second answers."""
    with stand_in() as a, stand_in() as b:
        a.fail(fault, times=10)
        pool = two(a, b, max_retries=2)
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert completion.provider == "backup" and completion.attempts == 4
    assert len(a.requests) == 3 and len(b.requests) == 1
    assert completion.text == answer_of(USER)
    status = 502 if fault == "garbage" else int(fault)
    assert completion.extra["failures"] == [{"provider": "primary", "status": status}] * 3


def test_a_retry_that_succeeds_stays_on_the_provider() -> None:
    """The local stand-in (OpenAI's documented API) fails once, then answers the retry."""
    with stand_in() as a, stand_in() as b:
        a.fail("500")
        pool = two(a, b, max_retries=2)
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert (completion.provider, completion.attempts) == ("primary", 2)
    assert b.requests == []


def test_a_timeout_falls_back() -> None:
    """The local stand-in (OpenAI's documented API) holds the call past the timeout
    (until released), so the pool gives up on it and the second answers."""
    with stand_in() as a, stand_in() as b:
        a.fail("timeout")
        pool = two(a, b, timeout_seconds=0.5, max_retries=0)
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert completion.provider == "backup" and len(a.requests) == 1


def test_a_connection_error_falls_back() -> None:
    """Nothing listens where the first provider should be; the local stand-in (OpenAI's
    documented API) answers instead."""
    with stand_in() as b:
        dead = settings_of(name="primary", base_url=f"http://127.0.0.1:{free_port()}/v1")
        pool = pool_of(dead, provider_settings(b, "backup"))
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert completion.provider == "backup" and completion.attempts == 3 + 1  # 2 retries


def test_retry_after_is_waited_for() -> None:
    """The local stand-in (OpenAI's documented API) answers 429 with Retry-After: the
    pool waits at least that long before retrying the same provider."""
    with stand_in() as a:
        a.fail("429", retry_after=0.4)
        pool = pool_of(provider_settings(a, max_retries=1))
        started = time.monotonic()
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert time.monotonic() - started >= 0.4
    assert completion.attempts == 2


def test_a_retry_after_beyond_the_cap_falls_back_at_once() -> None:
    """The local stand-in (OpenAI's documented API) asks for a minute's pause: the pool
    does not wait, it goes to the next provider."""
    with stand_in() as a, stand_in() as b:
        a.fail("429", times=5, retry_after=60)
        pool = two(a, b, max_retries=3)
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert completion.provider == "backup" and len(a.requests) == 1


def test_a_client_error_is_passed_on_at_once() -> None:
    """The local stand-in (OpenAI's documented API) refuses a request without messages:
    400 passed on with its message, no retry, no fallback."""
    with stand_in() as a, stand_in() as b:
        pool = two(a, b, max_retries=3)
        with pytest.raises(ProviderError) as raised:
            run(pool, lambda: pool.chat(SPEC, {"messages": []}))
    assert raised.value.status == raised.value.http_status == 400
    assert "provider 'primary'" in str(raised.value) and "messages" in str(raised.value)
    assert len(a.requests) == 1 and b.requests == []


def test_when_every_provider_fails_the_last_status_is_raised() -> None:
    """The local stand-ins (OpenAI's documented API) both fail: 429 then 500."""
    with stand_in() as a, stand_in() as b:
        a.fail("429", times=10)
        b.fail("500", times=10)
        pool = two(a, b, max_retries=1)
        with pytest.raises(ProviderError) as raised:
            run(pool, lambda: pool.chat(SPEC, BODY))
    assert raised.value.status == 500 and raised.value.provider == "backup"
    assert "4 attempt(s)" in str(raised.value) and "primary, backup" in str(raised.value)


def test_a_timeout_of_the_last_provider_is_504() -> None:
    """The local stand-in (OpenAI's documented API) holds the call until released: 504."""
    with stand_in() as a:
        a.fail("timeout", times=2)
        pool = pool_of(provider_settings(a, timeout_seconds=0.5, max_retries=1))
        with pytest.raises(ProviderError) as raised:
            run(pool, lambda: pool.chat(SPEC, BODY))
    assert raised.value.status == 504 and raised.value.code == "provider_timeout"
    assert "within 0.5 s" in str(raised.value)


def test_the_spec_s_provider_goes_first() -> None:
    """The local stand-ins (OpenAI's documented API): a spec naming the second provider
    is answered by it; an unknown provider is a config error."""
    with stand_in() as a, stand_in() as b:
        pool = two(a, b)
        completion = run(pool, lambda: pool.chat(LLMSpec(provider="backup", model="m"), BODY))
        with pytest.raises(ConfigError, match="primary, backup"):
            run(pool, lambda: pool.chat(LLMSpec(provider="nope", model="m"), BODY))
    assert completion.provider == "backup" and a.requests == []


def test_stream_yields_parsed_chunks_with_usage() -> None:
    """The local stand-in (OpenAI's documented API) streams; the pool asks for usage and
    yields every chunk but [DONE]."""
    with stand_in() as a:
        pool = pool_of(provider_settings(a))
        chunks = run(pool, lambda: collect(pool, SPEC, BODY))
    words = answer_of(USER).split()
    assert [c["choices"][0]["delta"]["content"] for c in chunks[: len(words)]] == [
        w + " " for w in words
    ]
    assert chunks[len(words)]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == len(words)
    assert a.requests[0]["stream"] is True
    assert a.requests[0]["stream_options"] == {"include_usage": True}


def test_stream_falls_back_before_the_first_chunk() -> None:
    """The local stand-ins (OpenAI's documented API): the first answers 500 and then
    hangs; the second streams, and the stream says so."""
    with stand_in() as a, stand_in() as b:
        a.fail("500")
        a.fail("timeout")
        pool = two(a, b, max_retries=1, timeout_seconds=0.5)

        async def work() -> tuple[list[dict], Any]:
            stream = await pool.stream(SPEC, BODY)  # awaiting it works too
            return [chunk async for chunk in stream], stream

        chunks, stream = run(pool, work)
    assert chunks[-1]["usage"]["prompt_tokens"] == 8
    assert (stream.provider, stream.provider_model, stream.attempts) == ("backup", "chat-model", 3)
    assert stream.first_chunk_seconds is not None and stream.first_chunk_seconds > 0


@pytest.mark.parametrize("fault", ["truncate", "garbage"])
def test_a_broken_stream_raises_502_after_the_chunks_already_sent(fault: str) -> None:
    """The local stand-in (OpenAI's documented API) cuts the stream (or sends an event
    that is not JSON) after some chunks: they are yielded, then 502, no fallback."""
    with stand_in() as a, stand_in() as b:
        a.fail(fault)
        pool = two(a, b, max_retries=2)
        got: list[dict] = []

        async def work() -> None:
            async for chunk in pool.stream(SPEC, BODY):
                got.append(chunk)

        with pytest.raises(ProviderError) as raised:
            run(pool, work)
    assert raised.value.status == 502
    assert got and got[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["choices"] and c["choices"][0]["finish_reason"] is None for c in got)
    assert len(a.requests) == 1 and b.requests == []
    expected = "truncated" if fault == "truncate" else "not JSON"
    assert expected in str(raised.value)


def test_a_stream_left_early_releases_its_connection() -> None:
    """The local stand-in (OpenAI's documented API) streams; the caller stops after the
    first chunk (a client that went away) and the pool keeps working."""
    with stand_in() as a:
        pool = pool_of(provider_settings(a))

        async def work() -> tuple[list[dict], str]:
            first = []
            async with pool.stream(SPEC, BODY) as stream:
                async for chunk in stream:
                    first.append(chunk)
                    break
            completion = await pool.chat(SPEC, BODY)
            return first, completion.text

        first, text = run(pool, work)
    assert len(first) == 1 and first[0]["choices"][0]["delta"]["role"] == "assistant"
    assert text == answer_of(USER) and len(a.requests) == 2


def test_a_stream_refused_with_400_is_passed_on() -> None:
    """The local stand-in (OpenAI's documented API) refuses a bad streamed request: 400."""
    with stand_in() as a, stand_in() as b:
        pool = two(a, b)
        with pytest.raises(ProviderError) as raised:
            run(pool, lambda: collect(pool, SPEC, {"messages": [{"role": "wizard"}]}))
    assert raised.value.status == 400 and b.requests == []


def test_embeddings_come_back_as_floats() -> None:
    """The local stand-in (OpenAI's documented API) embeds; the pool gives float lists
    whatever encoding the caller asked for, asynchronously and synchronously."""
    with stand_in() as a, stand_in() as b:
        a.fail("500", times=2)
        pool = two(a, b, max_retries=0)
        body = {"model": "embedder", "input": ["one", "two"], "encoding_format": "base64"}
        answer = run(pool, lambda: pool.embed(body))
        rows = pool.embed_sync(["three"], "embedder", provider="backup")
        pool.close()
    assert [row["embedding"] for row in answer["data"]] == [
        embedding_of("one"),
        embedding_of("two"),
    ]
    assert rows == [embedding_of("three")]
    assert b.requests[0]["encoding_format"] == "float" and len(b.requests) == 2


def test_complete_is_a_synchronous_chat_call_with_fallback() -> None:
    """The local stand-ins (OpenAI's documented API) answer the synchronous call judges use."""
    with stand_in() as a, stand_in() as b:
        a.fail("500", times=2)
        pool = two(a, b, max_retries=1)
        text = pool.complete(SPEC, USER, {"temperature": 0})
        again = pool.complete(SPEC, USER, {"temperature": 0})
        pool.close()
    assert text == again == answer_of(USER)
    assert len(a.requests) == 3 and len(b.requests) == 1  # the second call: primary again
    assert a.requests[-1] == {"temperature": 0, "messages": USER, "model": "chat-model"}


def test_chat_never_streams_and_works_from_one_loop_after_another() -> None:
    """The local stand-in (OpenAI's documented API) gets a plain call even when the body
    asked to stream; a second event loop gets a client of its own."""
    with stand_in() as a:
        pool = pool_of(provider_settings(a))
        body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
        first = asyncio.run(pool.chat(SPEC, body))  # no aclose: the loop just ends
        second = run(pool, lambda: pool.chat(SPEC, BODY))
    assert first.text == second.text == answer_of(USER)
    assert "stream" not in a.requests[0] and "stream_options" not in a.requests[0]


def test_clients_are_kept_between_calls() -> None:
    """The local stand-in (OpenAI's documented API) is called twice over one client."""
    with stand_in() as a:
        pool = pool_of(provider_settings(a))
        provider = pool.providers["primary"]

        async def work() -> bool:
            await pool.chat(SPEC, BODY)
            first = provider.async_client()
            await pool.chat(SPEC, BODY)
            return first is provider.async_client()

        assert run(pool, work)


def test_a_missing_key_is_a_config_error_naming_the_variable() -> None:
    """No provider is called: the pool refuses to build without the configured key."""
    settings = settings_of(name="openai", base_url="http://x/v1", api_key_env="OPENAI_KEY")
    with pytest.raises(ConfigError, match="OPENAI_KEY") as raised:
        pool_of(settings, environ={"OTHER": KEY})
    assert "openai" in str(raised.value) and KEY not in str(raised.value)


def test_the_key_file_is_read_relative_to_the_project(tmp_path: Path) -> None:
    """The local stand-in (OpenAI's documented API) gets the key from a mounted secret."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "key").write_text(KEY + "\n")
    (tmp_path / "empty").write_text("\n")
    with stand_in() as a:
        llm = LlmSettings.model_validate(
            {"providers": [provider_settings(a, api_key_file="secrets/key")]}
        )
        pool = ProviderPool.of_settings(llm, {}, tmp_path)
        run(pool, lambda: pool.chat(SPEC, BODY))
    assert a.authorizations == [f"Bearer {KEY}"]
    for name in ("missing", "empty"):
        broken = LlmSettings.model_validate(
            {"providers": [settings_of(name="p", base_url="http://x/v1", api_key_file=name)]}
        )
        with pytest.raises(ConfigError, match=name):
            ProviderPool.of_settings(broken, {}, tmp_path)


def test_the_key_never_leaks_into_errors_or_reprs() -> None:
    """The local stand-in (OpenAI's documented API) fails in every way; no message,
    hint or repr holds the key."""
    with stand_in() as a:
        dead = settings_of(
            name="dead", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key_env="K"
        )
        settings = provider_settings(a, api_key_env="K", timeout_seconds=0.5, max_retries=0)
        pool = pool_of(settings, dead, environ={"K": KEY})
        errors: list[BaseException] = []
        for fault, body in [("500", BODY), ("timeout", BODY), (None, {"messages": []})]:
            if fault:
                a.fail(fault)
            try:
                run(pool, lambda body=body: pool.chat(SPEC, body))  # type: ignore[misc]
            except ProviderError as error:
                errors.append(error)
        try:
            run(pool, lambda: collect(pool, LLMSpec(provider="dead", model="m"), {"messages": []}))
        except ProviderError as error:
            errors.append(error)
    assert len(errors) == 4
    assert [getattr(e, "status", 0) for e in errors] == [502, 502, 400, 400]
    texts = [repr(pool), repr(pool.providers["primary"]), repr(pool.providers["dead"])]
    texts += [f"{e!s} {e!r} {getattr(e, 'hint', '')}" for e in errors]
    assert all(KEY not in text and KEY[:12] not in text for text in texts)
    echoed = pool.providers["primary"].scrub(f"Incorrect API key provided: {KEY}.")
    assert echoed == "Incorrect API key provided: ***."


def test_a_provider_trickling_bytes_still_times_out_as_504() -> None:
    """A raw socket server on 127.0.0.1 stands in for a provider that sends its headers,
    then one byte of body at a time, each well inside the read timeout, for a minute: the
    pool's whole-answer deadline still ends the call with a 504."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 600\r\n\r\n"
        )
        for _ in range(600):
            if stop.wait(0.1):
                break
            connection.sendall(b" ")
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        slow = settings_of(
            name="primary",
            base_url=f"http://127.0.0.1:{port}/v1",
            timeout_seconds=1.0,
            max_retries=0,
        )
        pool = pool_of(slow)
        with pytest.raises(ProviderError) as raised:
            run(pool, lambda: pool.chat(SPEC, BODY))
    finally:
        stop.set()
        listener.close()
    assert raised.value.status == 504
