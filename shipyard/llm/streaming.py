"""Server-sent events as OpenAI streams them: ``data: <chunk>`` lines, then ``data: [DONE]``.

A streamed chat completion is a run of ``chat.completion.chunk`` objects: the first
delta carries the role, the next ones the content, one carries ``finish_reason``;
with ``stream_options.include_usage`` a last chunk has ``choices: []`` and the
``usage``; then ``data: [DONE]``. A stream that fails once it has begun cannot change
its status any more: it ends with one ``data: {"error": {...}}`` event and no
``[DONE]`` (the ``openai`` client raises ``APIError`` on it), so a client never hangs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from shipyard.jsonable import dump_json

__all__ = [
    "DONE",
    "SSE_HEADERS",
    "cached_chunks",
    "event",
    "is_usage_chunk",
]

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # proxies such as nginx must not hold events back
]


def event(payload: Mapping[str, Any] | bytes) -> bytes:
    """One ``data:`` event of a JSON object (or of JSON bytes already encoded)."""
    data = payload if isinstance(payload, bytes) else dump_json(payload)
    return b"data: " + data + b"\n\n"


def is_usage_chunk(chunk: Mapping[str, Any]) -> bool:
    """Whether ``chunk`` is the usage-only chunk (``choices: []`` and a ``usage``)."""
    return not chunk.get("choices") and chunk.get("usage") is not None


def cached_chunks(
    answer: Mapping[str, Any], *, chunk_id: str, created: int, model: str, include_usage: bool
) -> Iterator[dict[str, Any]]:
    """A cached (non-streamed) completion told as a stream: role, content, stop, usage."""
    choices = answer.get("choices") or [{}]
    message = choices[0].get("message") or {}
    finish = choices[0].get("finish_reason") or "stop"
    head = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    yield chunk({"role": "assistant", "content": ""})
    content = message.get("content")
    if content:
        yield chunk({"content": content})
    yield chunk({}, finish)
    if include_usage:
        yield {**head, "choices": [], "usage": answer.get("usage")}
