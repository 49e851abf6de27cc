"""A deterministic, OpenAI-shaped LLM provider stand-in: a real HTTP server on 127.0.0.1.

The tests, the demo and the example project cannot call a real provider (no network, no
key, answers that change), so they talk to this server, which speaks OpenAI's documented
API (``POST /v1/chat/completions`` streamed or not, ``POST /v1/embeddings`` as floats or
base64, ``GET /v1/models``, errors as ``{"error": {"message","type","param","code"}}``).
Its answers are a pure function of the request:

- chat: ``"Answer: " + <last user message> + " | " + <first system message>`` (empty parts
  dropped); usage ``prompt_tokens = sum(len(content.split()) + 3 per message)``,
  ``completion_tokens = len(answer.split())``, cached 0. Streamed: one chunk per word
  (``delta.content = word + " "``, the first with ``role``), then a ``finish_reason:
  "stop"`` chunk, then a usage-only chunk (``choices: []``) when
  ``stream_options.include_usage``, then ``data: [DONE]``.
- judge (a model name starting with "judge"): the last user message holds
  ``REFERENCE:\\n<text>\\nANSWER:\\n<text>`` and a line ``CRITERIA: a, b``; every criterion
  scores ``1 + round(4 * f)``, ``f`` the share of the reference's words (lower-cased,
  alphanumeric, longer than 3) found in the answer (1.0 when it has none);
  ``hallucination`` is whether the answer holds a number absent from the reference. The
  content is the JSON text ``{"scores": {...}, "hallucination": bool, "reason": "..."}``.
- embeddings: 16 floats from the SHA-256 of the text, L2-normalised (float32 values, so
  the float and base64 encodings agree).

It can be told to fail the next calls: ``fail("429" | "500" | "timeout" | "truncate" |
"garbage", times=n)``. "timeout" holds the call until :meth:`StandInProvider.release`
or the server stops, so any client timeout fires whatever the machine's speed.

    with StandInProvider() as provider:
        client = openai.OpenAI(base_url=provider.base_url, api_key="x")
        provider.fail("429", times=2)

``python -m shipyard.demo.provider --port 8765`` serves it until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import math
import re
import struct
import threading
import time
from collections.abc import AsyncIterator
from typing import Any, Literal, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from shipyard.jsonable import dump_json

__all__ = ["FAULTS", "StandInProvider", "answer_of", "embedding_of", "judge_verdict", "main"]

Fault = Literal["429", "500", "timeout", "truncate", "garbage"]
FAULTS: tuple[str, ...] = ("429", "500", "timeout", "truncate", "garbage")
CREATED = 1767225600  # a fixed "created" time (2026-01-01), so answers depend on input only
MODELS = ("gpt-4o-mini", "judge", "text-embedding-3-small")
DIMENSIONS = 16
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_WORD = re.compile(r"[a-z0-9]+")
_NUMBER = re.compile(r"\d+")
_CRITERIA = re.compile(r"^CRITERIA:(.*)$", re.MULTILINE)


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


def text_of(content: Any) -> str:
    """A message's text: a string, or the ``text`` of its content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def answer_of(messages: list[dict[str, Any]]) -> str:
    """The stand-in's answer to ``messages`` (the judge rule aside)."""
    users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
    systems = [text_of(m.get("content")) for m in messages if m.get("role") == "system"]
    parts = [users[-1] if users else "", systems[0] if systems else ""]
    return "Answer: " + " | ".join(part for part in parts if part)


def _words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if len(word) > 3}


def judge_verdict(prompt: str) -> dict[str, Any]:
    """The judge rule's verdict on a judge prompt (see the module docstring)."""
    reference, answer = "", prompt
    if "REFERENCE:\n" in prompt and "\nANSWER:\n" in prompt:
        after = prompt.split("REFERENCE:\n", 1)[1]
        reference, answer = after.split("\nANSWER:\n", 1)
        answer = answer.split("\nCRITERIA:", 1)[0]
    wanted = _words(reference)
    found = wanted & _words(answer)
    share = len(found) / len(wanted) if wanted else 1.0
    score = 1 + round(4 * share)
    invented = sorted(set(_NUMBER.findall(answer)) - set(_NUMBER.findall(reference)))
    criteria_line = _CRITERIA.search(prompt)
    criteria = [c.strip() for c in criteria_line.group(1).split(",")] if criteria_line else []
    reason = f"{len(found)} of {len(wanted)} reference words found"
    if invented:
        reason += f"; numbers not in the reference: {', '.join(invented)}"
    return {
        "scores": {criterion: score for criterion in criteria if criterion},
        "hallucination": bool(invented),
        "reason": reason,
    }


def embedding_of(text: str) -> list[float]:
    """The stand-in's 16-dim embedding of ``text``: SHA-256 words, L2-normalised float32."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [v / 32768.0 for v in struct.unpack("<16h", digest)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    packed = struct.pack("<16f", *(v / norm for v in raw))
    return list(struct.unpack("<16f", packed))


def _error(
    status: int, message: str, kind: str, param: str | None = None, **headers: str
) -> Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return Response(dump_json(body), status, headers, media_type="application/json")


def _usage(messages: list[dict[str, Any]], content: str, cost: bool) -> dict[str, Any]:
    prompt = sum(len(text_of(m.get("content")).split()) + 3 for m in messages)
    completion = len(content.split())
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    if cost:
        usage["cost"] = round(prompt * 1e-6 + completion * 2e-6, 9)
    return usage


def _check_chat(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object", None)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _BadRequest("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty array of messages", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _BadRequest(
                f"messages[{index}].role is missing or unknown", f"messages[{index}].role"
            )
        content = message.get("content")
        if not (
            isinstance(content, (str, list)) or (content is None and message["role"] == "assistant")
        ):
            raise _BadRequest(
                f"messages[{index}].content must be a string or an array",
                f"messages[{index}].content",
            )
    return messages


class StandInProvider:
    """The stand-in server: a context manager serving on a free port of 127.0.0.1.

    ``requests`` holds every JSON body received on the POST routes (faulted calls too);
    ``report_cost`` adds ``usage.cost`` as OpenRouter does.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, report_cost: bool = False
    ) -> None:
        self.host = host
        self.port = port
        self.report_cost = report_cost
        self._lock = threading.Lock()
        self._faults: list[list[Any]] = []  # [mode, times left, retry_after]
        self._requests: list[Any] = []
        self._authorizations: list[str | None] = []
        self._release = threading.Event()
        self._closing = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    # -- control -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:P/v1``: the base URL an OpenAI client takes."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[Any]:
        """The JSON bodies received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def authorizations(self) -> list[str | None]:
        """The ``Authorization`` header of each POST received (``None`` when absent)."""
        with self._lock:
            return list(self._authorizations)

    def fail(self, mode: Fault | str, times: int = 1, retry_after: float = 0) -> None:
        """Answer the next ``times`` POST calls with ``mode`` (after any fault queued before).

        "429" carries ``Retry-After: retry_after``; "500" a server error; "timeout" holds
        the call until :meth:`release` or :meth:`stop`; "truncate" cuts the answer (a
        stream ends without ``[DONE]``); "garbage" answers what is not JSON.
        """
        if mode not in FAULTS:
            raise ValueError(f"unknown fault {mode!r}; one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.append([mode, int(times), retry_after])

    def release(self) -> None:
        """Let every call held by a "timeout" fault end (with a 500)."""
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()

    def reset(self) -> None:
        """Forget queued faults and received requests."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self._authorizations.clear()

    def start(self) -> Self:
        """Serve in a background thread; returns when the server listens."""
        import uvicorn

        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning",
            lifespan="off", access_log=False, timeout_graceful_shutdown=2,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="llm-stand-in", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the LLM stand-in could not listen on {self.host}:{self.port}")
            time.sleep(0.005)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Release held calls and stop serving."""
        self._closing.set()
        self.release()
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- routes --------------------------------------------------------------------
    def _take(self, request: Request, body: Any) -> list[Any] | None:
        with self._lock:
            self._requests.append(body)
            self._authorizations.append(request.headers.get("authorization"))
            if not self._faults:
                return None
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] <= 0:
                self._faults.pop(0)
            return fault

    async def _read(self, request: Request) -> Any:
        import orjson

        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None

    async def _fault(self, fault: list[Any]) -> Response | None:
        mode, _, retry_after = fault
        if mode == "429":
            return _error(429, "Rate limit reached; try again later.", "rate_limit_exceeded",
                          **{"Retry-After": f"{retry_after:g}"})  # fmt: skip
        if mode == "500":
            return _error(500, "The server had an error processing your request.", "server_error")
        if mode == "timeout":
            with self._lock:
                held = self._release
            while not held.is_set() and not self._closing.is_set():
                await asyncio.sleep(0.02)
            return _error(500, "released after a held (timeout) call", "server_error")
        return None

    async def _chat(self, request: Request) -> Response:
        body = await self._read(request)
        fault = self._take(request, body)
        if fault is not None and (faulted := await self._fault(fault)) is not None:
            return faulted
        try:
            messages = _check_chat(body)
        except _BadRequest as bad:
            return _error(400, str(bad), "invalid_request_error", bad.param)
        model = body["model"]
        if model.startswith("judge"):
            users = [text_of(m.get("content")) for m in messages if m.get("role") == "user"]
            content = dump_json(judge_verdict(users[-1] if users else "")).decode()
        else:
            content = answer_of(messages)
        usage = _usage(messages, content, self.report_cost)
        ident = "chatcmpl-" + hashlib.sha256(dump_json(body)).hexdigest()[:24]
        mode = fault[0] if fault else None
        if body.get("stream"):
            options = body.get("stream_options") or {}
            events = self._events(
                ident, model, content, usage if options.get("include_usage") else None, mode
            )
            return StreamingResponse(events, media_type="text/event-stream")
        answer = {
            "id": ident, "object": "chat.completion", "created": CREATED, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        }  # fmt: skip
        data = dump_json(answer)
        if mode == "truncate":
            data = data[: len(data) // 2]
        elif mode == "garbage":
            data = b"<html>502 upstream garbage</html>"
        return Response(data, media_type="application/json")

    async def _events(
        self, ident: str, model: str, content: str, usage: dict[str, Any] | None, mode: str | None
    ) -> AsyncIterator[bytes]:
        head = {"id": ident, "object": "chat.completion.chunk", "created": CREATED, "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return b"data: " + dump_json({**head, "choices": [choice]}) + b"\n\n"

        words = content.split()
        for index, word in enumerate(words):
            if mode == "truncate" and index >= max(1, len(words) // 2):
                return  # cut short: no finish chunk, no [DONE]
            delta = (
                {"role": "assistant", "content": word + " "}
                if index == 0
                else {"content": word + " "}
            )
            yield chunk(delta)
            if mode == "garbage":
                yield b"data: {this is not json\n\n"
                yield b"data: [DONE]\n\n"
                return
        if mode == "truncate":
            return
        yield chunk({}, "stop")
        if usage is not None:
            yield b"data: " + dump_json({**head, "choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def _embeddings(self, request: Request) -> Response:
        body = await self._read(request)
        fault = self._take(request, body)
        if fault is not None and (faulted := await self._fault(fault)) is not None:
            return faulted
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object", "invalid_request_error")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return _error(
                400, "you must provide a model parameter", "invalid_request_error", "model"
            )
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "'input' must be a string or a non-empty array of strings",
                          "invalid_request_error", "input")  # fmt: skip
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return _error(400, "'encoding_format' must be 'float' or 'base64'",
                          "invalid_request_error", "encoding_format")  # fmt: skip
        data = []
        for index, text in enumerate(texts):
            vector: Any = embedding_of(text)
            if encoding == "base64":
                vector = base64.b64encode(struct.pack(f"<{DIMENSIONS}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(len(text.split()) for text in texts)
        answer = {"object": "list", "data": data, "model": body["model"],
                  "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip
        raw = dump_json(answer)
        if fault is not None and fault[0] == "truncate":
            raw = raw[: len(raw) // 2]
        elif fault is not None and fault[0] == "garbage":
            raw = b"<html>502 upstream garbage</html>"
        return Response(raw, media_type="application/json")

    async def _models(self, request: Request) -> Response:
        data = [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "stand-in"} for m in MODELS
        ]
        return Response(dump_json({"object": "list", "data": data}), media_type="application/json")


def main(argv: list[str] | None = None) -> None:
    """``python -m shipyard.demo.provider [--host H] [--port P] [--report-cost]``."""
    parser = argparse.ArgumentParser(description="The deterministic OpenAI-shaped LLM stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--report-cost", action="store_true", help="add usage.cost")
    args = parser.parse_args(argv)
    provider = StandInProvider(args.host, args.port, report_cost=args.report_cost).start()
    print(f"LLM stand-in listening on {provider.base_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        provider.stop()


if __name__ == "__main__":
    main()
