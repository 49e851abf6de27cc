"""The provider pool's wire: SSE lines cut across reads, per-read stream timeouts, answers
broken off, one keep-alive session per event loop, many calls at once.

Providers here are the local stand-in (shipyard.demo.provider.StandInProvider, OpenAI's
documented API on 127.0.0.1) or, where a test needs bytes no HTTP framework sends on
cue, a raw socket server on 127.0.0.1 scripted by the test. No real provider is called.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from shipyard.config.llm import LlmSettings, ProviderSettings
from shipyard.errors import ProviderError
from shipyard.jsonable import dump_json
from shipyard.llm.providers import ProviderPool
from shipyard.models.llm import LLMSpec
from tests.support.llm_provider import answer_of, provider_settings, stand_in
from tests.support.waiting import PATIENCE

SPEC = LLMSpec(provider="primary", model="chat-model")
USER = [{"role": "user", "content": "How far is the moon?"}]
BODY: dict[str, Any] = {"messages": USER}
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "choices": [choice]}


def pool_of(*settings: ProviderSettings, environ: dict[str, str] | None = None) -> ProviderPool:
    llm = LlmSettings.model_validate({"providers": list(settings)})
    return ProviderPool.of_settings(llm, environ or {}, Path("."))


def raw_settings(port: int, **fields: Any) -> ProviderSettings:
    values = {"name": "primary", "base_url": f"http://127.0.0.1:{port}/v1", **fields}
    return ProviderSettings.model_validate(values)


def run(pool: ProviderPool, work: Callable[[], Any]) -> Any:
    async def main() -> Any:
        try:
            return await work()
        finally:
            await pool.aclose()

    return asyncio.run(main())


@contextmanager
def raw_provider(
    script: Callable[[socket.socket, threading.Event], None],
) -> Iterator[tuple[int, list[bytes]]]:
    """A one-connection server: reads the request (kept in the list), then ``script``
    writes the answer; the event is set when the block ends (release anything held)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()
    requests: list[bytes] = []

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        with connection:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            requests.append(connection.recv(65536))
            with suppress(OSError):  # the client may hang up first
                script(connection, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], requests
    finally:
        stop.set()
        listener.close()
        thread.join(PATIENCE)


def test_sse_lines_cut_across_reads_are_joined() -> None:
    """A raw socket server on 127.0.0.1 stands in for a provider whose stream splits an
    event's line between two writes, the second only after the client got the first
    chunk, with CRLF line ends, a comment line and a last ``[DONE]`` without newline:
    every chunk arrives whole, the first before the rest was sent."""
    first, second = chunk("Hel"), chunk("lo", "stop")
    usage = {**chunk(None), "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    cut = 9
    seen_first = threading.Event()
    tail = (
        dump_json(second)[cut:]
        + b"\r\n\r\n: keep-alive\r\n\r\ndata: "
        + dump_json(usage)
        + b"\n\ndata: [DONE]"
    )

    def script(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(SSE_HEAD + b"data: " + dump_json(first) + b"\r\n\r\n")
        connection.sendall(b"data: " + dump_json(second)[:cut])
        if seen_first.wait(PATIENCE):
            for index in range(0, len(tail), 7):  # small writes: more cuts
                connection.sendall(tail[index : index + 7])

    with raw_provider(script) as (port, requests):
        pool = pool_of(raw_settings(port, api_key_env="K"), environ={"K": "sk-raw-key"})
        got: list[dict[str, Any]] = []

        async def work() -> None:
            async for item in pool.stream(SPEC, BODY):
                got.append(item)
                seen_first.set()

        run(pool, work)
    assert got == [first, second, usage]
    head = requests[0].split(b"\r\n\r\n", 1)[0].lower()
    assert b"content-type: application/json" in head
    assert b"authorization: bearer sk-raw-key" in head


def test_a_stream_that_stalls_after_its_first_chunk_ends_with_504() -> None:
    """A raw socket server on 127.0.0.1 stands in for a provider that sends one chunk,
    then nothing: the per-read timeout ends the stream with 504 after that chunk, and
    it is not replayed elsewhere."""

    def script(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(SSE_HEAD + b"data: " + dump_json(chunk("Hel")) + b"\n\n")
        stop.wait(PATIENCE)

    with raw_provider(script) as (port, _), stand_in() as backup:
        pool = pool_of(
            raw_settings(port, timeout_seconds=0.5, max_retries=1),
            provider_settings(backup, "backup"),
        )
        got: list[dict[str, Any]] = []

        async def work() -> None:
            async for item in pool.stream(SPEC, BODY):
                got.append(item)

        with pytest.raises(ProviderError) as raised:
            run(pool, work)
    assert raised.value.status == 504 and "within 0.5 s" in str(raised.value)
    assert got == [chunk("Hel")] and backup.requests == []


def test_a_steady_stream_may_outlast_the_timeout() -> None:
    """A raw socket server on 127.0.0.1 stands in for a provider streaming a chunk every
    50 ms for three seconds: the 2 s timeout bounds each pause (40 times longer, so a busy
    machine cannot cut the stream), not the whole stream."""
    words = [f"w{index} " for index in range(60)]

    def script(connection: socket.socket, stop: threading.Event) -> None:
        connection.sendall(SSE_HEAD)
        for word in words:
            if stop.wait(0.05):
                return
            connection.sendall(b"data: " + dump_json(chunk(word)) + b"\n\n")
        connection.sendall(b"data: [DONE]\n\n")

    with raw_provider(script) as (port, _):
        pool = pool_of(raw_settings(port, timeout_seconds=2.0, max_retries=0))

        async def work() -> list[dict[str, Any]]:
            return [item async for item in pool.stream(SPEC, BODY)]

        got = run(pool, work)
    assert [item["choices"][0]["delta"]["content"] for item in got] == words


def test_an_answer_broken_off_mid_body_is_retried_elsewhere() -> None:
    """A raw socket server on 127.0.0.1 stands in for a provider that promises 600 bytes
    and hangs up after 10; the local stand-in (OpenAI's documented API) answers next."""

    def script(connection: socket.socket, stop: threading.Event) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 600\r\n\r\n"
        connection.sendall(head + b'{"id": "x"')

    with raw_provider(script) as (port, _), stand_in() as backup:
        pool = pool_of(raw_settings(port, max_retries=0), provider_settings(backup, "backup"))
        completion = run(pool, lambda: pool.chat(SPEC, BODY))
    assert completion.provider == "backup" and completion.text == answer_of(USER)
    assert completion.extra["failures"] == [{"provider": "primary", "status": 502}]


def test_each_event_loop_gets_its_own_session_closed_after() -> None:
    """The local stand-in (OpenAI's documented API) answers from two event loops: each
    gets its own keep-alive session; the first loop's (ended without aclose) is let go
    when the second starts, the second's is closed by aclose."""
    with stand_in() as a:
        pool = pool_of(provider_settings(a))
        provider = pool.providers["primary"]

        async def call() -> Any:
            await pool.chat(SPEC, BODY)
            return provider.async_client()

        first = asyncio.run(call())
        assert not first.closed
        second = run(pool, call)
    assert first is not second and first.closed and second.closed
    assert len(a.requests) == 2


def test_many_calls_at_once_share_the_pool() -> None:
    """The local stand-in (OpenAI's documented API) gets 40 whole and 10 streamed calls
    at once from one loop: every answer is right."""
    with stand_in() as a:
        pool = pool_of(provider_settings(a))

        async def streamed(index: int) -> str:
            body = {"messages": [{"role": "user", "content": f"stream {index}"}]}
            parts = [
                item["choices"][0]["delta"].get("content") or ""
                async for item in pool.stream(SPEC, body)
                if item["choices"]
            ]
            return "".join(parts).strip()

        async def whole(index: int) -> str:
            body = {"messages": [{"role": "user", "content": f"whole {index}"}]}
            return (await pool.chat(SPEC, body)).text

        async def work() -> list[str]:
            calls = [whole(i) for i in range(40)] + [streamed(i) for i in range(10)]
            return list(await asyncio.gather(*calls))

        texts = run(pool, work)
    expected = [answer_of([{"role": "user", "content": f"whole {i}"}]) for i in range(40)]
    expected += [answer_of([{"role": "user", "content": f"stream {i}"}]) for i in range(10)]
    assert texts == expected and len(a.requests) == 50
