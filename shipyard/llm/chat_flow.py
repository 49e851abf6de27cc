"""One chat completion through the gateway, from the checked body to the last byte.

authenticate → parse → tenant → cap check → route (champion / challenger by weight,
sticky by key, or a pinned ``name/version``) → render the version's prompt → cache
lookup → provider → guardrails → charge → respond → trace, cache store, shadow copy.

The answer leaves before the trace is written, the cache filled and the shadow called:
those run after the last byte is sent (the shadow as its own task), so the client
waits only for the provider. A tenant over its cap is refused (429) before anything is
rendered or sent: the provider is never called and nothing is charged. A provider
error keeps its status (504 for a timeout) and message; a stream that breaks after it
began ends with an error event, never a hang (:mod:`shipyard.llm.streaming`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.access import Scope
from shipyard.errors import CapExceeded, ProviderError, RequestError, ShipyardError
from shipyard.jsonable import dump_json
from shipyard.llm.cache import bypassed, cache_query, cache_scope
from shipyard.llm.gateway_seams import GatewayParts, provider_model
from shipyard.llm.shadow_calls import ShadowCalls
from shipyard.llm.streaming import DONE, SSE_HEADERS, cached_chunks, event, is_usage_chunk
from shipyard.llm.traces import Span, TextMask, Trace
from shipyard.llm.types import TokenUsage
from shipyard.llm.wire import ChatRequest, OpenAIError, error_of, model_pin, parse_chat
from shipyard.models.llm import LLMSpec, render
from shipyard.serving.router import Decision
from shipyard.serving.stages import pinned_model

if TYPE_CHECKING:
    from shipyard.project import Principal

__all__ = ["PROTOCOL", "ChatFlow", "Send", "send_json"]

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
JSON_TYPE = (b"content-type", b"application/json")
PROTOCOL = "openai"
_UNCACHED_PARAMS = frozenset(("tools", "functions", "logprobs", "response_format"))


@dataclass(slots=True)
class _Routed:
    """A request ready to send: the version, its spec, the rendered upstream body."""

    request: ChatRequest
    decision: Decision
    spec: LLMSpec
    body: dict[str, Any]
    tenant: str
    cap: Any
    trace: Trace
    root: Span
    shadow: Any = None  # the shadow version to copy the request to, once answered


class ChatFlow:
    """Answers ``POST /v1/chat/completions`` (whole or streamed) with :class:`GatewayParts`."""

    def __init__(self, parts: GatewayParts) -> None:
        self.parts = parts
        self.name = parts.name
        self.shadows = ShadowCalls(parts, self.finish)
        # A provider embedder blocks on the network: its lookups and stores run in a
        # thread, so one slow embedding never stalls every other request.
        embedder = getattr(parts.cache, "embedder", None)
        self._cache_off_loop = bool(getattr(embedder, "remote", False))

    # -- the request ------------------------------------------------------------------

    async def answer(
        self,
        headers: Mapping[str, str],
        body: bytes,
        request_id: str,
        send: Send,
        receive: Receive | None = None,
    ) -> tuple[int, str, str]:
        """Answer one request on ``send``; the status, version and role, for the metrics.

        ``receive`` (the ASGI receive, its body already read) tells a stream when the
        client went away, so the provider's stream is closed instead of read to its end.
        """
        parts = self.parts
        routed: _Routed | None = None
        try:
            principal = self._authenticate(headers)
            routed = self._route(parse_chat(body), headers, principal, request_id)
            if routed.request.stream:
                return await self._stream(routed, headers, request_id, send, receive)
            return await self._whole(routed, headers, request_id, send)
        except Exception as error:
            if not isinstance(error, ShipyardError):
                logger.exception("chat request %s failed", request_id)
            elif isinstance(error, ProviderError) and parts.llm_metrics is not None:
                parts.llm_metrics.provider_error(self.name, error.provider, error.status)
            status, payload, extra = error_of(error, request_id)
            await send_json(send, status, payload, request_id, extra)
            if routed is not None:
                routed.root.fail(error)
                self.finish(routed.trace)
                return status, routed.decision.version, routed.decision.role
            return status, "unknown", "unknown"
        finally:
            if parts.metrics is not None:
                parts.metrics.tick()

    def _authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        access = self.parts.access
        if not access.predictions:
            return None
        return access.require(headers.get("authorization"), Scope.SERVE_INVOKE, self.name)

    def _route(
        self,
        request: ChatRequest,
        headers: Mapping[str, str],
        principal: Principal | None,
        request_id: str,
    ) -> _Routed:
        from shipyard.llm.cap_policies import policy_header_of, tenant_of

        parts = self.parts
        pin = model_pin(request.model, self.name)
        lineup = parts.slot.lineup  # read once: a swap mid-request does not mix versions
        settings = parts.cap_settings
        tenant = tenant_of(principal, headers, settings)
        if pin is not None:
            try:
                version = pinned_model(lineup, pin).version
            except ShipyardError:
                raise OpenAIError(
                    404,
                    f"Version {pin} of '{self.name}' is not served here; served versions: "
                    f"{', '.join(sorted(lineup.models))}.",
                    "model",
                    "model_not_found",
                ) from None
            decision = Decision(version, lineup.role(version), False)
        else:
            decision = lineup.router.decide(self._sticky_key(request, headers))
        spec: LLMSpec = lineup.models[decision.version].model.spec
        try:
            messages = render(spec, request.variables, request.messages)
        except RequestError as missing:
            raise OpenAIError(400, missing.message, "variables", "missing_variable") from None
        body = {**request.params, **spec.params, "messages": messages}
        if request.user is not None:
            body["user"] = request.user
        # Counted only once the request is known to be sendable: a 400 costs no quota.
        try:
            cap = parts.caps.check(tenant, policy_header_of(headers, settings))  # 429 if over
        except CapExceeded:
            if parts.llm_metrics is not None:
                parts.llm_metrics.refused(self.name, tenant)
            raise
        trace_id, parent = _traceparent(headers.get("traceparent"))
        trace = Trace(
            request_id=request_id,
            model=self.name,
            version=decision.version,
            role=decision.role,
            tenant=tenant,
            prompt=spec.prompt_ref,
            mask=TextMask.of(parts.pii, request.variables) if parts.pii is not None else None,
            trace_id=trace_id,
            parent_span_id=parent,
        )
        root = trace.start("gateway", "CHAIN")
        root.attribute(
            "llm.invocation_parameters", {k: v for k, v in body.items() if k != "messages"}
        )
        shadow = lineup.shadow if decision.shadow else None
        return _Routed(request, decision, spec, body, tenant, cap, trace, root, shadow)

    def _sticky_key(self, request: ChatRequest, headers: Mapping[str, str]) -> str | None:
        sticky = self.parts.sticky
        if sticky is None:
            return None
        if sticky.source == "header":
            return headers.get(sticky.name)
        if sticky.name == "user":
            return request.user
        value = request.variables.get(sticky.name)
        return None if value is None else str(value)

    # -- the cache ----------------------------------------------------------------------

    async def _lookup(self, routed: _Routed, headers: Mapping[str, str]) -> tuple[str, Any, str]:
        """(cache result, hit or None, scope): exact, semantic, miss or bypass."""
        cache = self.parts.cache
        request = routed.request
        if cache is None:
            return "", None, ""
        settings = self.parts.cache_settings
        query = cache_query(routed.body["messages"])
        if (
            query is None
            or (settings is not None and bypassed(headers, settings))
            or _UNCACHED_PARAMS.intersection(request.params)
        ):
            routed.trace.start("cache.lookup", "RETRIEVER", routed.root).set(cache="bypass").end()
            return "bypass", None, ""
        span = routed.trace.start("cache.lookup", "RETRIEVER", routed.root)
        params = {k: v for k, v in routed.body.items() if k not in ("messages", "user")}
        scope = cache_scope(
            self.name, routed.decision.version, routed.spec, routed.body["messages"], params
        )
        try:
            if self._cache_off_loop:
                hit = await asyncio.to_thread(cache.lookup, routed.tenant, scope, query)
            else:
                hit = cache.lookup(routed.tenant, scope, query)
        except Exception as error:  # a broken cache is a miss, never an outage
            logger.warning("cache lookup failed: %s", error)
            span.fail(error).end()
            return "miss", None, scope
        if hit is None:
            span.set(cache="miss").end()
            return "miss", None, scope
        span.set(cache=hit.layer).attribute("cache.similarity", hit.similarity)
        span.attribute("cache.age_seconds", hit.age_seconds)
        answer_usage = TokenUsage.from_openai(hit.answer.get("usage"))
        saved = self.parts.prices.cost(
            str(hit.answer.get("model") or routed.spec.model),
            answer_usage,
            datetime.now(UTC),
            None,
        )
        span.saved(saved).end()
        return hit.layer, hit, scope

    # -- whole answers -----------------------------------------------------------------

    async def _whole(
        self, routed: _Routed, headers: Mapping[str, str], request_id: str, send: Send
    ) -> tuple[int, str, str]:
        result, hit, scope = await self._lookup(routed, headers)
        request = routed.request
        if hit is not None:
            answer = {
                **hit.answer,
                "id": f"chatcmpl-{request_id}",
                "created": int(time.time()),
                "model": request.model,
            }
            routed.root.set(output=_text(answer), cache=result)
            await self._respond(send, routed, request_id, dump_json(answer), result, "cache")
            self.finish(routed.trace)
            self._copy_to_shadow(routed, request_id)
            return 200, routed.decision.version, routed.decision.role
        call = routed.trace.start("provider.call", "LLM", routed.root)
        call.set(input=routed.body["messages"])
        try:
            completion = await self.parts.pool.chat(routed.spec, routed.body)
        except ProviderError as error:
            call.set(provider=error.provider).fail(error).end()
            raise
        text = completion.text
        self._spent(
            routed,
            call,
            completion.provider,
            provider_model(completion, routed.spec),
            completion.usage,
            completion.reported_cost,
        )
        call.set(output=text).attribute("llm.attempts", completion.attempts).end()
        self._guard(routed, text)
        answer = {**completion.body, "model": request.model}
        routed.root.set(output=text, cache=result or "")
        await self._respond(
            send, routed, request_id, dump_json(answer), result, completion.provider
        )
        self.finish(routed.trace)
        self._copy_to_shadow(routed, request_id)
        if scope:
            await self._store(routed, scope, completion.body)
        return 200, routed.decision.version, routed.decision.role

    def _spent(
        self,
        routed: _Routed,
        span: Span,
        provider: str,
        provider_model: str,
        usage: TokenUsage,
        reported: float | None,
    ) -> None:
        """Price the call on its span and charge the tenant (in cents)."""
        cost = self.parts.prices.cost(provider_model, usage, datetime.now(UTC), reported)
        span.set(provider=provider, provider_model=provider_model).usage(usage, cost)
        if cost.amount > 0:
            try:
                self.parts.caps.charge(routed.tenant, cost.amount * 100.0)
            except Exception as error:  # the answer is paid for already: log, never fail it
                logger.warning("charging tenant %s failed: %s", routed.tenant, error)

    def _guard(self, routed: _Routed, text: str) -> None:
        patterns = self.parts.guardrails
        if not patterns:
            return
        span = routed.trace.start("guardrails", "GUARDRAIL", routed.root)
        hits = [p.pattern for p in patterns if p.search(text)]
        span.attribute("guardrail.hits", len(hits))
        if hits:
            span.attribute("guardrail.matched", hits)
        span.end()

    async def _respond(
        self,
        send: Send,
        routed: _Routed,
        request_id: str,
        payload: bytes,
        cache: str,
        provider: str,
    ) -> None:
        headers = self._headers(routed, request_id, cache, provider)
        headers.append(JSON_TYPE)
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _headers(
        self, routed: _Routed, request_id: str, cache: str, provider: str
    ) -> list[tuple[bytes, bytes]]:
        decision = routed.decision
        headers = [
            (b"x-request-id", request_id.encode("latin-1")),
            (b"x-model-version", decision.version.encode("latin-1")),
            (b"x-model-role", decision.role.encode("latin-1")),
            (b"x-cache", _CACHE_HEADER.get(cache, b"bypass")),
            (b"x-shipyard-provider", provider.encode("latin-1")),
        ]
        if routed.cap is not None:
            for key, value in self.parts.caps.headers(routed.cap).items():
                headers.append((key.lower().encode("latin-1"), str(value).encode("latin-1")))
        return headers

    # -- streams -----------------------------------------------------------------------

    async def _stream(
        self,
        routed: _Routed,
        headers: Mapping[str, str],
        request_id: str,
        send: Send,
        receive: Receive | None = None,
    ) -> tuple[int, str, str]:
        result, hit, scope = await self._lookup(routed, headers)
        request = routed.request
        if hit is not None:
            await self._start_stream(send, routed, request_id, result, "cache")
            for piece in cached_chunks(
                hit.answer,
                chunk_id=f"chatcmpl-{request_id}",
                created=int(time.time()),
                model=request.model,
                include_usage=request.include_usage,
            ):
                await send({"type": "http.response.body", "body": event(piece), "more_body": True})
            await send({"type": "http.response.body", "body": DONE})
            routed.root.set(output=_text(hit.answer), cache=result)
            self.finish(routed.trace)
            self._copy_to_shadow(routed, request_id)
            return 200, routed.decision.version, routed.decision.role
        body = {**routed.body, "stream": True, "stream_options": {"include_usage": True}}
        call = routed.trace.start("provider.call", "LLM", routed.root)
        call.set(input=routed.body["messages"])
        started = time.perf_counter()
        upstream = self.parts.pool.stream(routed.spec, body)
        try:
            first = await upstream.__anext__()
        except StopAsyncIteration:
            error = ProviderError("The provider's stream ended before its first chunk.", 502)
            call.fail(error).end()
            raise error from None
        except ProviderError as error:
            call.set(provider=error.provider).fail(error).end()
            raise
        ttft = (time.perf_counter() - started) * 1000.0
        provider = str(getattr(upstream, "provider", "") or routed.spec.provider)
        await self._start_stream(send, routed, request_id, result, provider or routed.spec.provider)
        texts: list[str] = []
        usage: dict[str, Any] | None = None
        finish = None
        chunk: dict[str, Any] | None = first
        gone = None if receive is None else asyncio.ensure_future(receive())
        try:
            while chunk is not None:
                if gone is not None and gone.done():
                    raise _ClientGone
                if is_usage_chunk(chunk):
                    usage = chunk.get("usage")
                    if request.include_usage:
                        chunk["model"] = request.model
                        await send(
                            {"type": "http.response.body", "body": event(chunk), "more_body": True}
                        )
                else:
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            texts.append(delta["content"])
                        finish = choice.get("finish_reason") or finish
                    chunk["model"] = request.model
                    await send(
                        {"type": "http.response.body", "body": event(chunk), "more_body": True}
                    )
                try:
                    chunk = await upstream.__anext__()
                except StopAsyncIteration:
                    chunk = None
        except _ClientGone:
            call.set(provider=provider, ttft_ms=ttft, output="".join(texts))
            call.fail("client disconnected").end()
            routed.root.fail("client disconnected")
            self.finish(routed.trace)
            return 499, routed.decision.version, routed.decision.role
        except Exception as error:  # the stream began: its status can no longer say so
            if not isinstance(error, ShipyardError):
                logger.exception("stream of request %s failed", request_id)
            text = "".join(texts)
            named = getattr(error, "provider", "") or provider
            call.set(provider=named, ttft_ms=ttft, output=text).fail(error)
            call.end()
            status, payload, _ = error_of(error, request_id)
            await send({"type": "http.response.body", "body": event(payload), "more_body": False})
            routed.root.fail(error)
            self.finish(routed.trace)
            return status, routed.decision.version, routed.decision.role
        finally:
            if gone is not None:
                gone.cancel()
            await _close(upstream)
        await send({"type": "http.response.body", "body": DONE})
        text = "".join(texts)
        used = TokenUsage.from_openai(usage)
        reported = (usage or {}).get("cost")
        provider_model = str(getattr(upstream, "provider_model", "") or routed.spec.model)
        self._spent(
            routed,
            call,
            provider or routed.spec.provider,
            provider_model,
            used,
            None if reported is None else float(reported),
        )
        call.set(output=text, ttft_ms=ttft).end()
        self._guard(routed, text)
        routed.root.set(output=text, cache=result or "")
        self.finish(routed.trace)
        self._copy_to_shadow(routed, request_id)
        if scope:
            answer = {
                "id": str(first.get("id") or f"chatcmpl-{request_id}"),
                "object": "chat.completion",
                "created": int(first.get("created") or time.time()),
                "model": provider_model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish or "stop",
                    }
                ],
                "usage": usage or used.to_openai(),
            }
            await self._store(routed, scope, answer)
        return 200, routed.decision.version, routed.decision.role

    async def _start_stream(
        self, send: Send, routed: _Routed, request_id: str, cache: str, provider: str
    ) -> None:
        headers = self._headers(routed, request_id, cache, provider)
        headers.extend(SSE_HEADERS)
        await send({"type": "http.response.start", "status": 200, "headers": headers})

    # -- after the answer --------------------------------------------------------------

    async def _store(self, routed: _Routed, scope: str, answer: dict[str, Any]) -> None:
        cache = self.parts.cache
        if cache is None:
            return
        try:
            query = cache_query(routed.body["messages"])
            if query is None:
                return
            if self._cache_off_loop:
                await asyncio.to_thread(cache.store, routed.tenant, scope, query, answer)
            else:
                cache.store(routed.tenant, scope, query, answer)
        except Exception as error:  # the answer went out; the cache only misses it later
            logger.warning("cache store failed: %s", error)

    def _copy_to_shadow(self, routed: _Routed, request_id: str) -> None:
        """After the answer: the shadow version gets the request (its own task)."""
        if routed.shadow is not None:
            self.shadows.submit(routed.request, routed.shadow, routed.tenant, request_id)

    def finish(self, trace: Trace) -> None:
        """End the trace's spans and hand it to the trace log and the metrics."""
        record = self.parts.record
        if record is None:
            return
        for span in trace.spans:
            span.end()
        record(trace)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds) for the shadow calls under way."""
        await self.shadows.drain(timeout)


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def _traceparent(header: str | None) -> tuple[str | None, str]:
    """The caller's trace id and span id from a W3C ``traceparent`` (none when absent or bad),
    so the gateway's spans join the caller's trace in Phoenix, Langfuse or any OTLP reader."""
    if not header:
        return None, ""
    found = _TRACEPARENT.match(header.strip().lower())
    if found is None or not found.group(1).strip("0") or not found.group(2).strip("0"):
        return None, ""
    return found.group(1), found.group(2)


class _ClientGone(Exception):
    """The client closed the connection in the middle of a stream."""


_CACHE_HEADER = {
    "exact": b"hit-exact",
    "semantic": b"hit-semantic",
    "miss": b"miss",
    "bypass": b"bypass",
    "": b"bypass",
}


def _text(answer: Mapping[str, Any]) -> str:
    choices = answer.get("choices") or []
    if not choices:
        return ""
    return str((choices[0].get("message") or {}).get("content") or "")


async def _close(upstream: Any) -> None:
    closer = getattr(upstream, "aclose", None)
    if closer is not None:
        try:
            await closer()
        except Exception:  # closing a broken stream may fail again: nothing left to do
            logger.debug("closing the upstream stream failed", exc_info=True)


async def send_json(
    send: Send, status: int, payload: bytes, request_id: str, extra: Mapping[str, str]
) -> None:
    """A whole JSON answer: status, body, the request id and ``extra`` headers."""
    headers = [
        JSON_TYPE,
        (b"content-length", str(len(payload)).encode()),
        (b"x-request-id", request_id.encode("latin-1")),
    ]
    headers += [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
