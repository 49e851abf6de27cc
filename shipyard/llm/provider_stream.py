"""Streamed completions from the provider pool, and the failures the pool retries.

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

import httpx
import orjson

from shipyard.errors import ProviderError

__all__ = ["Failure", "Provider", "ProviderStream", "failure_of"]

logger = logging.getLogger("shipyard.llm.providers")


class Provider(Protocol):
    """What a stream needs of :class:`shipyard.llm.providers.Provider`."""

    name: str
    timeout: float
    retries: int

    def scrub(self, text: str) -> str: ...
    def model_of(self, model: str) -> str: ...
    def async_client(self) -> httpx.AsyncClient: ...
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
    """The failure of an httpx error: 504 for a timeout, 502 for a connection error."""
    if isinstance(error, httpx.TimeoutException):
        return Failure(provider, 504, f"did not answer within {provider.timeout:g} s")
    detail = str(error) or type(error).__name__
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
            client, content = provider.async_client(), self._content_of(provider)
            for attempt in range(provider.retries + 1):
                self.attempts += 1
                yielded = False
                answer: httpx.Response | None = None
                try:
                    request = client.build_request("POST", "chat/completions", content=content)
                    answer = await client.send(request, stream=True)
                    if answer.status_code != 200:
                        await answer.aread()
                        raise Failure.of_status(
                            provider,
                            answer.status_code,
                            answer.content,
                            answer.headers.get("retry-after"),
                        )
                    async for line in answer.aiter_lines():
                        if not line.startswith("data:"):
                            continue  # blank separators, comments, event names
                        data = line[5:].strip()
                        if data == "[DONE]":
                            return
                        chunk = _chunk(provider, data)
                        if not yielded:
                            yielded = True
                            self.provider = provider.name
                            self.provider_model = provider.model_of(self._model)
                            self.first_chunk_seconds = time.perf_counter() - started
                        yield chunk
                    raise Failure(provider, 502, "ended the stream without [DONE] (truncated)")
                except Failure as failure:
                    last = failure
                except httpx.HTTPError as error:
                    last = failure_of(provider, error)
                finally:
                    if answer is not None:
                        await answer.aclose()
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


def _chunk(provider: Provider, data: str) -> dict[str, Any]:
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
