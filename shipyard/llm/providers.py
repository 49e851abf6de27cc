"""The provider pool: OpenAI-compatible providers with retries, backoff and fallback.

A :class:`ProviderPool` holds keep-alive connection pools per provider of ``llm.providers``,
each with its key in an ``Authorization: Bearer`` header: an ``aiohttp.ClientSession`` per
event loop for the gateway's coroutines (:meth:`~ProviderPool.chat`,
:meth:`~ProviderPool.stream`, :meth:`~ProviderPool.embed`: the hot path, where aiohttp
costs about half of httpx's async client per call) and an ``httpx.Client`` for synchronous
callers such as judges. A call goes to the version's provider first, then to the others in
config order:

- a 429 (its ``Retry-After`` respected up to :attr:`ProviderPool.retry_after_cap`), a
  5xx, a timeout, a connection error or an answer that is not JSON is retried
  ``max_retries`` times with exponential backoff and jitter, then falls back to the next
  provider;
- any other 4xx is the request's fault: it is passed on at once as a
  :class:`~shipyard.errors.ProviderError` with the provider's status and message;
- when every provider failed, the last failure is raised (504 for a timeout).

Keys are read once, from the environment variable ``api_key_env`` or the file
``api_key_file``; they never appear in an error, a log line or a repr.

    pool = ProviderPool.of_settings(config.llm, os.environ, root)
    completion = await pool.chat(spec, {"messages": messages, **spec.params})
    async for chunk in pool.stream(spec, body): ...
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from yarl import URL

from shipyard.config.llm import LlmSettings, ProviderSettings
from shipyard.errors import ConfigError, ProviderError
from shipyard.jsonable import dump_json
from shipyard.llm.provider_stream import (
    Failure,
    ProviderStream,
    abandon,
    failure_of,
    new_session,
)
from shipyard.llm.types import Completion
from shipyard.models.llm import LLMSpec

__all__ = ["Provider", "ProviderPool", "read_key"]

logger = logging.getLogger(__name__)
_PATHS = ("chat/completions", "embeddings")  # their URLs are made once per provider
_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30)


def read_key(settings: ProviderSettings, environ: Mapping[str, str], root: Path) -> str | None:
    """The provider's API key: ``environ[api_key_env]``, else the ``api_key_file``'s text.

    ``None`` for a provider configured without a key. A configured key that cannot be
    read is a :class:`ConfigError` naming the variable or file, never a value.
    """
    if settings.api_key_env and environ.get(settings.api_key_env):
        return environ[settings.api_key_env].strip()
    if settings.api_key_file:
        path = Path(settings.api_key_file)
        path = path if path.is_absolute() else root / path
        try:
            key = path.read_text().strip()
        except OSError as error:
            raise ConfigError(
                f"llm.providers '{settings.name}': cannot read its key file {path} "
                f"({error.strerror or type(error).__name__}).",
                hint="Mount the secret there, or set api_key_env instead.",
            ) from None
        if not key:
            raise ConfigError(f"llm.providers '{settings.name}': its key file {path} is empty.")
        return key
    if settings.api_key_env:
        raise ConfigError(
            f"llm.providers '{settings.name}': the environment variable "
            f"{settings.api_key_env} holding its API key is not set.",
            hint=f"export {settings.api_key_env}=... before `shipyard serve`, or set "
            "api_key_file to a mounted secret.",
        )
    return None


class Provider:
    """One configured provider: its URLs, model names, retry policy and clients.

    The key lives only in the clients' default headers; ``repr`` shows the name and URL.
    """

    def __init__(self, settings: ProviderSettings, key: str | None) -> None:
        self.name = settings.name
        self.base_url = settings.base_url.rstrip("/") + "/"
        self.timeout = settings.timeout_seconds
        self.retries = settings.max_retries
        self.backoff = settings.backoff_seconds
        self.models = dict(settings.models)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._secrets = (key,) if key else ()
        self._urls = {path: URL(self.base_url + path) for path in _PATHS}
        self._async: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._others: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, aiohttp.ClientSession
        ] = weakref.WeakKeyDictionary()
        self._sync: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"Provider(name={self.name!r}, base_url={self.base_url!r})"

    def model_of(self, model: str) -> str:
        """Our model name as this provider knows it."""
        return self.models.get(model, model)

    def scrub(self, text: str) -> str:
        """``text`` with this provider's key blanked out (a provider may echo it)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def url(self, path: str) -> URL:
        """The absolute URL of ``path`` (``chat/completions``, ``embeddings``) here."""
        url = self._urls.get(path)
        return url if url is not None else URL(self.base_url + path)

    def async_client(self) -> aiohttp.ClientSession:
        """The keep-alive aiohttp session of the running event loop (one per loop: a
        connection belongs to the loop that opened it), made on first use (see
        :func:`~shipyard.llm.provider_stream.new_session`)."""
        loop = asyncio.get_running_loop()
        session = self._async
        if self._loop is loop and session is not None and not session.closed:
            return session
        session = self._others.get(loop)
        if session is None or session.closed:
            self._forget_ended_loops()
            session = new_session(self._headers, self.timeout)
            self._others[loop] = session
        self._async, self._loop = session, loop
        return session

    def _forget_ended_loops(self) -> None:
        """Drop the sessions of event loops closed without :meth:`aclose` (``asyncio.run``
        of one call): their connections died with the loop; nothing is awaited."""
        for loop, session in list(self._others.items()):
            if loop.is_closed():
                del self._others[loop]
                abandon(session)
        if self._loop is not None and self._loop.is_closed():
            self._async = self._loop = None

    def sync_client(self) -> httpx.Client:
        """The keep-alive synchronous client (thread-safe)."""
        if self._sync is None:
            self._sync = httpx.Client(
                base_url=self.base_url,
                headers=self._headers,
                timeout=httpx.Timeout(self.timeout),
                limits=_LIMITS,
            )
        return self._sync

    def delay(self, attempt: int, retry_after: float | None, cap: float) -> float | None:
        """Seconds to wait before retry ``attempt + 1``; ``None`` to fall back at once
        (a ``Retry-After`` beyond ``cap``)."""
        if retry_after is not None and retry_after > cap:
            return None
        wait = self.backoff * (2**attempt) * (0.5 + random.random())
        return max(wait, retry_after or 0.0)

    async def aclose(self) -> None:
        """Close the async session of the running loop (and forget those of ended
        loops), and the sync client."""
        session = self._others.pop(asyncio.get_running_loop(), None)
        self._async = self._loop = None
        self._forget_ended_loops()
        if session is not None:
            await session.close()
        self.close()

    def close(self) -> None:
        """Close the sync client."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None


class ProviderPool:
    """Every configured provider, called in fallback order (see the module docstring)."""

    retry_after_cap: float = 10.0  # a longer Retry-After falls back instead of waiting

    def __init__(self, providers: Iterable[Provider]) -> None:
        self.providers = {provider.name: provider for provider in providers}
        names = list(self.providers)
        self._orders = {
            name: tuple(self.providers[n] for n in [name, *(m for m in names if m != name)])
            for name in names
        }

    @classmethod
    def of_settings(
        cls, settings: LlmSettings, environ: Mapping[str, str], root: Path
    ) -> ProviderPool:
        """The pool of ``settings.providers``, keys read from ``environ`` or key files."""
        return cls(Provider(p, read_key(p, environ, root)) for p in settings.providers)

    def __repr__(self) -> str:
        return f"ProviderPool({', '.join(self.providers)})"

    def order(self, first: str | None) -> tuple[Provider, ...]:
        """The providers to try: ``first`` (default: the first configured), then the others."""
        name = first or next(iter(self.providers), "")
        try:
            return self._orders[name]
        except KeyError:
            raise ConfigError(
                f"no LLM provider named '{name}': llm.providers has "
                f"{', '.join(self.providers) or 'none'}."
            ) from None

    # -- async ---------------------------------------------------------------------
    async def chat(self, spec: LLMSpec, body: dict[str, Any]) -> Completion:
        """A non-streamed chat completion of ``body`` (rendered messages and params)."""
        started = time.perf_counter()
        failures: list[dict[str, Any]] = []
        found = await self._call(
            self.order(spec.provider),
            "chat/completions",
            _with_model(_unstreamed(body), spec.model),
            failures,
        )
        return _completion(spec, found, started, failures)

    def stream(self, spec: LLMSpec, body: dict[str, Any]) -> ProviderStream:
        """The streamed completion's parsed chunks (``async for``; awaiting it works too).

        The pool always asks for the usage-only chunk (``stream_options.include_usage``),
        so the caller can count tokens; it is yielded like the others.
        """
        payload = dict(body)
        payload["stream"] = True
        payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return ProviderStream(
            self.order(spec.provider),
            _with_model(payload, spec.model),
            self.retry_after_cap,
            spec.model,
        )

    async def embed(self, body: dict[str, Any], provider: str | None = None) -> dict[str, Any]:
        """The OpenAI embeddings answer to ``body``, embeddings as float lists."""
        payload = {**body, "encoding_format": "float"}
        answer, _, _ = await self._call(
            self.order(provider), "embeddings", _with_model(payload, str(body.get("model") or ""))
        )
        return _floats(answer)

    async def _call(
        self,
        order: tuple[Provider, ...],
        path: str,
        content_of: Callable[[Provider], bytes],
        failures: list[dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], Provider, int]:
        attempts, last = 0, None
        for provider in order:
            session, url, content = (
                provider.async_client(),
                provider.url(path),
                content_of(provider),
            )
            for attempt in range(provider.retries + 1):
                attempts += 1
                try:
                    # The session times each read; a provider trickling bytes must still
                    # end in time: one deadline for the whole answer, body included.
                    async with asyncio.timeout(provider.timeout):
                        async with session.post(url, data=content) as response:
                            status, raw = response.status, await response.read()
                    return _answer(provider, status, raw, response), provider, attempts
                except Failure as failure:
                    last = failure
                except (TimeoutError, aiohttp.ClientError, OSError) as error:
                    last = failure_of(provider, error)  # timeouts, transport errors
                last.note(failures)
                wait = provider.delay(attempt, last.retry_after, self.retry_after_cap)
                if wait is None or attempt == provider.retries:
                    break
                await asyncio.sleep(wait)
        raise _give_up(last, attempts, order)

    # -- sync ----------------------------------------------------------------------
    def chat_sync(self, spec: LLMSpec, body: dict[str, Any]) -> Completion:
        """:meth:`chat` for synchronous callers (judges, batch prediction)."""
        started = time.perf_counter()
        failures: list[dict[str, Any]] = []
        found = self._call_sync(
            self.order(spec.provider),
            "chat/completions",
            _with_model(_unstreamed(body), spec.model),
            failures,
        )
        return _completion(spec, found, started, failures)

    def complete(
        self, spec: LLMSpec, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> str:
        """The completion text of ``messages``: a :class:`~shipyard.models.llm.ChatCall`."""
        return self.chat_sync(spec, {**params, "messages": messages}).text

    def embed_sync(
        self, texts: list[str], model: str, provider: str | None = None
    ) -> list[list[float]]:
        """One embedding (a float list) per text, in order."""
        body = {"model": model, "input": texts, "encoding_format": "float"}
        answer, _, _ = self._call_sync(self.order(provider), "embeddings", _with_model(body, model))
        rows = sorted(_floats(answer)["data"], key=lambda row: row.get("index", 0))
        return [row["embedding"] for row in rows]

    def _call_sync(
        self,
        order: tuple[Provider, ...],
        path: str,
        content_of: Callable[[Provider], bytes],
        failures: list[dict[str, Any]] | None = None,
    ) -> tuple[dict[str, Any], Provider, int]:
        attempts, last = 0, None
        for provider in order:
            client, content = provider.sync_client(), content_of(provider)
            for attempt in range(provider.retries + 1):
                attempts += 1
                try:
                    response = client.post(path, content=content)
                    answer = _answer(provider, response.status_code, response.content, response)
                    return answer, provider, attempts
                except Failure as failure:
                    last = failure
                except httpx.HTTPError as error:
                    last = failure_of(provider, error)
                last.note(failures)
                wait = provider.delay(attempt, last.retry_after, self.retry_after_cap)
                if wait is None or attempt == provider.retries:
                    break
                time.sleep(wait)
        raise _give_up(last, attempts, order)

    # -- lifecycle -----------------------------------------------------------------
    async def aclose(self) -> None:
        """Close every client (call from the loop that used the pool)."""
        for provider in self.providers.values():
            await provider.aclose()

    def close(self) -> None:
        """Close the synchronous clients."""
        for provider in self.providers.values():
            provider.close()


def _completion(
    spec: LLMSpec,
    found: tuple[dict[str, Any], Provider, int],
    started: float,
    failures: list[dict[str, Any]],
) -> Completion:
    """The :class:`Completion` of a call's answer, provider and attempt count."""
    answer, provider, attempts = found
    extra = {"provider_model": provider.model_of(spec.model), "failures": failures}
    return Completion(answer, provider.name, attempts, time.perf_counter() - started, extra)


def _with_model(body: Mapping[str, Any], model: str) -> Callable[[Provider], bytes]:
    def content_of(provider: Provider) -> bytes:
        return dump_json({**body, "model": provider.model_of(model)})

    return content_of


def _unstreamed(body: dict[str, Any]) -> dict[str, Any]:
    if "stream" in body or "stream_options" in body:
        return {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    return body


def _answer(provider: Provider, status: int, content: bytes, response: Any) -> dict[str, Any]:
    """The JSON object of a 200 answer; raises a retryable :class:`Failure` or, for a
    4xx other than 429, the :class:`ProviderError` to pass on."""
    if status == 200:
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError:
            answer = None
        if isinstance(answer, dict):
            return answer
        raise Failure(provider, 502, "answered with what is not an OpenAI JSON object")
    raise Failure.of_status(provider, status, content, response.headers.get("retry-after"))


def _floats(answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` with base64 embeddings decoded to float lists."""
    import base64
    import struct

    for row in answer.get("data") or []:
        vector = row.get("embedding")
        if isinstance(vector, str):
            raw = base64.b64decode(vector)
            row["embedding"] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return answer


def _give_up(last: Failure | None, attempts: int, order: tuple[Provider, ...]) -> ProviderError:
    names = ", ".join(p.name for p in order)
    if last is None:
        return ProviderError("no LLM provider is configured (llm.providers is empty)", 502)
    return ProviderError(
        f"provider '{last.provider}' {last.message} "
        f"(gave up after {attempts} attempt(s) across {names})",
        last.status,
        hint="Check the providers' status and keys, or add a fallback to llm.providers.",
        provider=last.provider,
    )
