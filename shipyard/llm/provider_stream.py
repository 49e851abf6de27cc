"""Streamed completions from the provider pool, the failures the pool retries, and the
aiohttp sessions its coroutines call providers with.

A :class:`ProviderStream` yields the upstream ``chat.completion.chunk`` objects parsed
(the usage-only chunk included, ``[DONE]`` not). Until the first chunk arrives a failure
is retried and falls back like a non-streamed call; after it, the stream cannot be
replayed elsewhere, so a cut (no ``[DONE]``), an event that is not JSON, an error event
or a timeout raises :class:`~shipyard.errors.ProviderError` (502, or 504 for a timeout)
after the chunks already yielded.

    stream = pool.stream(spec, body)
    async for chunk in stream:
        ...
    stream.provider, stream.provider_model, stream.attempts
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Protocol

import aiohttp
import httpx
import orjson
from yarl import URL

from shipyard.errors import ProviderError

__all__ = ["Failure", "Provider", "ProviderStream", "abandon", "failure_of", "new_session"]

logger = logging.getLogger("shipyard.llm.providers")
CONNECTIONS = 256  # per provider and event loop; calls beyond it wait for a free connection
KEEPALIVE_SECONDS = 30.0


def new_session(headers: dict[str, str], timeout: float) -> aiohttp.ClientSession:
    """A keep-alive session for one provider in the running event loop: ``headers`` on
    every call (the key among them), ``timeout`` seconds for the connect (a free pooled
    connection included) and for each read (the wait for the headers, then every pause
    between a stream's chunks). A whole answer's deadline is the caller's."""
    return aiohttp.ClientSession(
        headers=headers,
        connector=aiohttp.TCPConnector(limit=CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS),
        timeout=aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        ),
        trust_env=False,
    )


def abandon(session: aiohttp.ClientSession) -> None:
    """Mark the session of an event loop closed without ``aclose()`` closed, awaiting
    nothing (the loop can run nothing more): its connector's pool is emptied, so the
    session and the connector do not warn when collected."""
    connector = session.connector
    session.detach()
    if connector is not None and not connector.closed:
        connector._close()  # the loop is closed: only bookkeeping is left


class Provider(Protocol):
    """What a stream needs of :class:`shipyard.llm.providers.Provider`."""

    name: str
    timeout: float
    retries: int

    def scrub(self, text: str) -> str: ...
    def model_of(self, model: str) -> str: ...
    def url(self, path: str) -> URL: ...
    def async_client(self) -> aiohttp.ClientSession: ...
    def delay(self, attempt: int, retry_after: float | None, cap: float) -> float | None: ...


class Failure(Exception):
    """A retryable failure of one provider call (429, 5xx, timeout, connection, bad JSON)."""

    def __init__(
        self, provider: Provider, status: int, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider.name
        self.status = status
        self.message = provider.scrub(message)
        self.retry_after = retry_after

    @classmethod
    def of_status(
        cls, provider: Provider, status: int, content: bytes, retry_after: str | None
    ) -> Failure:
        """The failure of a non-200 answer; raises the :class:`ProviderError` to pass on
        for a 4xx other than 429 (the request's fault: no retry, no fallback)."""
        message = provider.scrub(_message_of(content))
        if status == 429 or status >= 500:
            return cls(provider, status, f"answered {status}: {message}", _seconds(retry_after))
        raise ProviderError(
            f"provider '{provider.name}' refused the request ({status}): {message}",
            status,
            provider=provider.name,
        )

    def note(self, failures: list[dict[str, Any]] | None) -> None:
        """Add this failure to ``failures`` (for traces and metrics) and log it."""
        if failures is not None:
            failures.append({"provider": self.provider, "status": self.status})
        logger.warning("LLM provider '%s' %s", self.provider, self.message)

    def error(self, attempts: int) -> ProviderError:
        """This failure as the error a caller gets."""
        return ProviderError(
            f"provider '{self.provider}' {self.message} (after {attempts} attempt(s))",
            self.status,
            provider=self.provider,
        )


def failure_of(provider: Provider, error: Exception) -> Failure:
    """The failure of a transport error (aiohttp's, httpx's or the OS's): 504 for a
    timeout, 502 for a connection that failed or broke off."""
    if isinstance(error, (TimeoutError, httpx.TimeoutException)):
        return Failure(provider, 504, f"did not answer within {provider.timeout:g} s")
    detail = str(error) or type(error).__name__
    if isinstance(error, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        return Failure(provider, 502, f"broke off its answer ({type(error).__name__}: {detail})")
    return Failure(provider, 502, f"could not be reached ({type(error).__name__}: {detail})")


def _message_of(content: bytes) -> str:
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"])
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    text = content[:300].decode("utf-8", "replace").strip()
    return text or "(no message)"


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: treat as no hint


class ProviderStream:
    """One streamed completion: async-iterable (``await``-able too, giving itself).

    After the first chunk, :attr:`provider`, :attr:`provider_model` and :attr:`attempts`
    say who answered and :attr:`first_chunk_seconds` how soon.
    """

    def __init__(
        self,
        order: tuple[Provider, ...],
        content_of: Callable[[Any], bytes],
        retry_after_cap: float,
        model: str = "",
    ) -> None:
        self.provider = ""
        self.provider_model = ""
        self.attempts = 0
        self.first_chunk_seconds: float | None = None
        self.failures: list[dict[str, Any]] = []
        self._order = order
        self._content_of = content_of
        self._cap = retry_after_cap
        self._model = model
        self._chunks = self._run()

    def __aiter__(self) -> ProviderStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        return await self._chunks.__anext__()

    def __await__(self) -> Generator[Any, None, ProviderStream]:
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        await self._chunks.aclose()

    async def __aenter__(self) -> ProviderStream:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[dict[str, Any]]:
        # One generator, no async context manager inside: a stream dropped without
        # aclose() is finalised by the loop without racing a nested generator.
        started = time.perf_counter()
        last: Failure | None = None
        for provider in self._order:
            session, content = provider.async_client(), self._content_of(provider)
            url = provider.url("chat/completions")
            for attempt in range(provider.retries + 1):
                self.attempts += 1
                yielded = done = False
                answer: aiohttp.ClientResponse | None = None
                try:
                    # The session's timeouts bound the connect and each read (the wait
                    # for the headers, then every pause between chunks).
                    answer = await session.post(url, data=content)
                    if answer.status != 200:
                        raise Failure.of_status(
                            provider,
                            answer.status,
                            await answer.read(),
                            answer.headers.get("Retry-After"),
                        )
                    reader, pending = answer.content, b""
                    while True:
                        data = await reader.readany()
                        if not data:  # the end: a last line may lack its newline
                            if not pending:
                                break
                            data, pending = pending + b"\n", b""
                        elif pending:
                            data = pending + data
                        if b"\r" in data:  # SSE lines may end in CRLF or CR too
                            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                        *lines, pending = data.split(b"\n")  # a line cut by a read waits
                        for line in lines:
                            if not line.startswith(b"data:"):
                                continue  # blank separators, comments, event names
                            event = line[5:].strip()
                            if event == b"[DONE]":
                                done = True
                                return
                            chunk = _chunk(provider, event)
                            if not yielded:
                                yielded = True
                                self.provider = provider.name
                                self.provider_model = provider.model_of(self._model)
                                self.first_chunk_seconds = time.perf_counter() - started
                            yield chunk
                    raise Failure(provider, 502, "ended the stream without [DONE] (truncated)")
                except Failure as failure:
                    last = failure
                except (TimeoutError, aiohttp.ClientError, OSError) as error:
                    last = failure_of(provider, error)
                finally:
                    if answer is not None:
                        _let_go(answer, done)
                last.note(self.failures)
                if yielded:  # the client has part of an answer: no replay elsewhere
                    raise last.error(self.attempts)
                wait = provider.delay(attempt, last.retry_after, self._cap)
                if wait is None or attempt == provider.retries:
                    break
                await asyncio.sleep(wait)
        names = ", ".join(p.name for p in self._order)
        if last is None:
            raise ProviderError("no LLM provider is configured (llm.providers is empty)", 502)
        raise ProviderError(
            f"provider '{last.provider}' {last.message} "
            f"(gave up after {self.attempts} attempt(s) across {names})",
            last.status,
            provider=last.provider,
        )


def _let_go(answer: aiohttp.ClientResponse, done: bool) -> None:
    """Give a finished stream's connection back to the pool; close one read part-way
    (left early, cut, or failed): what is left of it cannot be reused."""
    if done and answer.content.is_eof():
        answer.release()
    else:
        answer.close()


def _chunk(provider: Provider, data: bytes) -> dict[str, Any]:
    """One parsed ``data:`` event; a :class:`Failure` for an event that is not a JSON
    object, or an error event."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Failure(provider, 502, "sent a stream event that is not JSON") from None
    if not isinstance(chunk, dict):
        raise Failure(provider, 502, "sent a stream event that is not a JSON object")
    if "error" in chunk and "choices" not in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise Failure(provider, 502, f"sent an error event: {message}")
    return chunk
