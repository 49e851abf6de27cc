"""Trace an LLM call as spans with OpenInference attributes, masked before they are kept.

The gateway builds one :class:`Trace` per request and one span per step::

    trace = Trace(request_id=rid, model="assistant", version="3", tenant="acme",
                  prompt="support/2", mask=TextMask.of(policy, variables))
    with trace.span("gateway", "CHAIN") as root:
        with trace.span("cache", "RETRIEVER") as lookup:
            lookup.set(cache="miss")
        with trace.span("provider", "LLM") as call:
            call.set(provider="openai", provider_model="gpt-4o-mini",
                     input=messages, output=text, ttft_ms=41.0)
            call.usage(completion.usage, book.cost("gpt-4o-mini", completion.usage, now, None))
    for record in trace.records():
        writer.log(record)

Spans nest by the ``with`` blocks (or explicitly: ``trace.start(name, kind, parent=…)``
then ``span.end()``, for a stream that ends later). An exception leaving a span marks
it ``error`` (with the exception's type and message) and goes on. Token counts and
cost belong on the span that spent them (the provider call): the cost aggregation sums
spans. Nothing here validates with pydantic or builds a DataFrame: it is on the hot
path, a few microseconds per span.

Masking (#8's PII tags, ``pii.columns``): a request variable whose name is tagged has
its value replaced wherever it appears in the input and output, by ``[<tag>:<hash>]``
(policy ``hash``, the same keyed hash as the prediction log) or ``[<tag>]`` (``drop``);
tagging ``input`` or ``output`` itself masks that whole text. The records hold only
masked text: raw values never reach the journal or a file.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from shipyard.jsonable import to_json
from shipyard.llm.types import Cost, TokenUsage
from shipyard.logs.traces import TraceRecord

if TYPE_CHECKING:
    from shipyard.logs.pii import PiiPolicy

__all__ = ["SPAN_KINDS", "Span", "TextMask", "Trace", "new_span_id", "new_trace_id"]

SPAN_KINDS = ("LLM", "CHAIN", "GUARDRAIL", "RETRIEVER", "EMBEDDING", "TOOL", "AGENT", "RERANKER")
"""OpenInference span kinds (``openinference.span.kind``)."""

_FIELDS = frozenset(
    {
        "status",
        "error",
        "provider",
        "provider_model",
        "input",
        "output",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "ttft_ms",
        "cost",
        "cost_source",
        "price_version",
        "currency",
        "saved_cost",
        "cache",
    }
)
_CACHE = frozenset({"", "exact", "semantic", "miss", "bypass"})


# Ids need to be unique, not secret: OpenTelemetry's SDK draws them the same way, and
# getrandbits costs a fraction of os.urandom. Reseeded in a forked worker (see below).
_random = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)


def new_trace_id() -> str:
    """A random W3C/OTLP trace id: 32 lower-case hex characters, never all zero."""
    return f"{_random.getrandbits(128) or 1:032x}"


def new_span_id() -> str:
    """A random span id: 16 lower-case hex characters, never all zero."""
    return f"{_random.getrandbits(64) or 1:016x}"


class TextMask:
    """Masks the PII in a call's text: tagged variables' values, or whole tagged texts."""

    __slots__ = ("_input", "_output", "_replacements")

    def __init__(
        self,
        replacements: Sequence[tuple[str, str]] = (),
        *,
        input_action: Callable[[str], str] | None = None,
        output_action: Callable[[str], str] | None = None,
    ) -> None:
        # Longest values first, so a value inside another is not replaced in pieces.
        self._replacements = sorted(replacements, key=lambda pair: -len(pair[0]))
        self._input = input_action
        self._output = output_action

    @classmethod
    def of(cls, policy: PiiPolicy | None, variables: Mapping[str, Any] | None = None) -> TextMask:
        """The mask ``policy`` asks for, given the request's prompt ``variables``."""
        if policy is None or not policy.tagged:
            return cls()
        replacements = []
        for name, value in (variables or {}).items():
            tag = policy.tag_of(str(name))
            if tag is None or value is None:
                continue
            text = value if isinstance(value, str) else to_json(value)
            if text:
                replacements.append((text, _masked(policy, tag, str(name), text)))
        return cls(
            replacements,
            input_action=_whole(policy, "input"),
            output_action=_whole(policy, "output"),
        )

    @property
    def active(self) -> bool:
        """Whether this mask changes anything."""
        return bool(self._replacements or self._input or self._output)

    def text(self, text: str, which: str = "input") -> str:
        """``text`` (an ``input`` or ``output``) as the trace may keep it."""
        whole = self._input if which == "input" else self._output
        if whole is not None:
            return whole(text)
        for value, replacement in self._replacements:
            if value in text:
                text = text.replace(value, replacement)
        return text


def _masked(policy: PiiPolicy, tag: str, column: str, text: str) -> str:
    if policy.action_of(column) == "drop":
        return f"[{tag}]"
    return f"[{tag}:{policy.hash_value(text)}]"


def _whole(policy: PiiPolicy, column: str) -> Callable[[str], str] | None:
    tag = policy.tag_of(column)
    if tag is None:
        return None
    if policy.action_of(column) == "drop":
        return lambda text: f"[{tag}]" if text else ""
    return lambda text: f"[{tag}:{policy.hash_value(text)}]" if text else ""


_NO_MASK = TextMask()


class Span:
    """One step of a traced call; fields set with :meth:`set`, extras with :meth:`attribute`."""

    __slots__ = (
        "_clock",
        "_end",
        "_nesting",
        "_start",
        "attributes",
        "fields",
        "kind",
        "name",
        "parent_id",
        "span_id",
    )

    def __init__(self, name: str, kind: str, parent_id: str, clock: Callable[[], float]) -> None:
        self.name = name
        self.kind = kind
        self.parent_id = parent_id
        self.span_id = new_span_id()
        self.fields: dict[str, Any] = {}
        self.attributes: dict[str, Any] = {}
        self._clock = clock
        self._start = clock()
        self._end: float | None = None
        self._nesting: list[str] | None = None  # the trace's open blocks, in a with block

    def set(self, **fields: Any) -> Span:
        """Set record fields (``provider``, ``input``, ``prompt_tokens``, ``cache`` …)."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise TypeError(f"unknown span field(s): {', '.join(sorted(unknown))}")
        cache = fields.get("cache")
        if cache is not None and cache not in _CACHE:
            raise ValueError(f"cache must be one of {sorted(_CACHE)}, not {cache!r}")
        self.fields.update(fields)
        return self

    def attribute(self, key: str, value: Any) -> Span:
        """Add an OpenInference (or any) attribute, e.g. ``llm.invocation_parameters``."""
        self.attributes[key] = value
        return self

    def usage(self, usage: TokenUsage, cost: Cost | None = None) -> Span:
        """Record the tokens this span spent and, when known, what they cost."""
        self.fields["prompt_tokens"] = usage.prompt_tokens
        self.fields["completion_tokens"] = usage.completion_tokens
        self.fields["cached_tokens"] = usage.cached_tokens
        if cost is not None:
            self.cost(cost)
        return self

    def cost(self, cost: Cost) -> Span:
        """Record what this span cost, and where the number came from."""
        self.fields["cost"] = cost.amount
        self.fields["cost_source"] = cost.source
        self.fields["price_version"] = cost.table_version
        self.fields["currency"] = cost.currency
        return self

    def saved(self, cost: Cost) -> Span:
        """Record what a cache hit avoided: the cached answer's usage priced as a call."""
        self.fields["saved_cost"] = cost.amount
        if not self.fields.get("currency"):
            self.fields["currency"] = cost.currency
        return self

    def fail(self, error: BaseException | str) -> Span:
        """Mark the span failed; ``error`` is kept as ``Type: message``."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.fields["status"] = "error"
        self.fields["error"] = text[:2000]
        return self

    def __enter__(self) -> Span:
        if self._nesting is not None:
            self._nesting.append(self.span_id)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None:
            self.fail(error)
        if self._nesting is not None and self._nesting[-1] == self.span_id:
            self._nesting.pop()
        self.end()

    def end(self) -> None:
        """End the span now (a second call changes nothing)."""
        if self._end is None:
            self._end = self._clock()

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` was called."""
        return self._end is not None

    @property
    def seconds(self) -> float:
        """How long the span took (so far, while it runs)."""
        end = self._clock() if self._end is None else self._end
        return max(0.0, end - self._start)


class Trace:
    """The spans of one LLM call, turned into :class:`TraceRecord` rows at the end."""

    __slots__ = (
        "_clock",
        "_open",
        "mask",
        "model",
        "prompt",
        "request_id",
        "role",
        "spans",
        "tenant",
        "trace_id",
        "version",
    )

    def __init__(
        self,
        *,
        request_id: str,
        model: str,
        version: str,
        role: str = "live",
        tenant: str = "",
        prompt: str = "",
        mask: TextMask | None = None,
        trace_id: str | None = None,
        parent_span_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``trace_id``/``parent_span_id`` join a caller's trace (a W3C ``traceparent``)."""
        self.request_id = request_id
        self.model = model
        self.version = version
        self.role = role
        self.tenant = tenant
        self.prompt = prompt
        self.mask = mask or _NO_MASK
        self.trace_id = trace_id or new_trace_id()
        self.spans: list[Span] = []
        self._open: list[str] = [parent_span_id]
        self._clock = clock

    def start(self, name: str, kind: str = "CHAIN", parent: Span | None = None) -> Span:
        """Start a span (child of ``parent``, else of the innermost open ``span()`` block)."""
        parent_id = parent.span_id if parent is not None else self._open[-1]
        span = Span(name, kind, parent_id, self._clock)
        self.spans.append(span)
        return span

    def span(self, name: str, kind: str = "CHAIN") -> Span:
        """A span for a ``with`` block; spans started inside are its children, an exception
        leaving it marks it failed (and goes on)."""
        span = self.start(name, kind)
        span._nesting = self._open
        return span

    @property
    def root(self) -> Span | None:
        """The first span started (the gateway's)."""
        return self.spans[0] if self.spans else None

    def records(self) -> list[TraceRecord]:
        """One masked record per span, in start order (a running span ends now)."""
        out = []
        mask = self.mask if self.mask.active else None
        for span in self.spans:
            span.end()
            fields = span.fields
            attributes = span.attributes
            text_in = text_out = ""
            if "input" in fields or "output" in fields:
                fields = dict(fields)
                raw_input = fields.pop("input", "")
                raw_output = fields.pop("output", "")
                text_in = raw_input if isinstance(raw_input, str) else to_json(raw_input)
                text_out = raw_output if isinstance(raw_output, str) else to_json(raw_output)
                if mask is not None:
                    text_in = mask.text(text_in, "input") if text_in else ""
                    text_out = mask.text(text_out, "output") if text_out else ""
                if isinstance(raw_input, (list, tuple)):
                    attributes = {"input.mime_type": "application/json", **attributes}
            if attributes and mask is not None:
                attributes = _masked_attributes(attributes, mask)
            start = _moment(span._start)
            ended = span._end if span._end is not None else span._start
            out.append(
                TraceRecord(
                    request_id=self.request_id,
                    time=start,
                    model=self.model,
                    version=self.version,
                    trace_id=self.trace_id,
                    span_id=span.span_id,
                    parent_span_id=span.parent_id,
                    name=span.name,
                    kind=span.kind,
                    start=start,
                    end=_moment(ended),
                    duration_ms=max(0.0, ended - span._start) * 1000.0,
                    role=self.role,
                    tenant=self.tenant,
                    prompt=self.prompt,
                    input=text_in,
                    output=text_out,
                    attributes=to_json(attributes) if attributes else "{}",
                    **fields,
                )
            )
        return out


def _masked_attributes(attributes: dict[str, Any], mask: TextMask) -> dict[str, Any]:
    """Extra attributes with the mask applied to their text values."""
    return {
        key: mask.text(value, "output" if key.startswith("output") else "input")
        if isinstance(value, str)
        else value
        for key, value in attributes.items()
    }


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
