"""The LLM provider stand-in speaks OpenAI's documented API to the real ``openai`` client.

Every test here talks to the local stand-in (shipyard.demo.provider.StandInProvider), a
deterministic HTTP server on 127.0.0.1 speaking OpenAI's documented API: no real
provider is called.
"""

from __future__ import annotations

import base64
import math
import signal
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.support.llm_provider import StandInProvider, embedding_of, judge_verdict, stand_in
from tests.support.servers import free_port
from tests.support.waiting import wait_for

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


def client_of(
    provider: StandInProvider, max_retries: int = 2, timeout: float = 60.0
) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=provider.base_url, api_key="x", max_retries=max_retries, timeout=timeout
    )


def test_chat_answers_by_the_declared_rule() -> None:
    """The local stand-in (OpenAI's documented API) answers the real openai client with
    "Answer: <last user> | <system>" and usage counted by the declared rule."""
    with stand_in() as provider:
        answer = client_of(provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        again = client_of(provider).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    content = "Answer: What is the capital of France? | You answer briefly."
    assert answer.choices[0].message.content == content
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gpt-4o-mini"
    assert answer.usage is not None
    assert answer.usage.prompt_tokens == (3 + 3) + (6 + 3)
    assert answer.usage.completion_tokens == len(content.split()) == 11
    assert answer.usage.total_tokens == 26
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == 0
    assert again.id == answer.id and again.created == answer.created  # a pure function
    assert provider.requests[0]["messages"] == MESSAGES


def test_only_the_last_user_message_and_non_empty_parts_count() -> None:
    """The local stand-in (OpenAI's documented API) drops empty parts of its answer."""
    with stand_in() as provider:
        client = client_of(provider)
        no_system = client.chat.completions.create(
            model="m",
            messages=[
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "Answer: first"},
                {"role": "user", "content": "second"},
            ],
        )
        no_user = client.chat.completions.create(
            model="m", messages=[{"role": "system", "content": "only system"}]
        )
    assert no_system.choices[0].message.content == "Answer: second"
    assert no_user.choices[0].message.content == "Answer: only system"


def test_streaming_sends_a_word_per_chunk_then_usage_then_done() -> None:
    """The local stand-in (OpenAI's documented API) streams to the real openai client: a
    chunk per word, the first with the role, a stop chunk, a usage-only chunk with
    ``choices == []``."""
    with stand_in() as provider:
        client = client_of(provider)
        chunks = list(
            client.chat.completions.create(
                model="m",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        plain = client.chat.completions.create(model="m", messages=MESSAGES)
        without_usage = list(
            client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        )
    words = plain.choices[0].message.content.split()  # type: ignore[union-attr]
    assert [c.choices[0].delta.content for c in chunks[: len(words)]] == [w + " " for w in words]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[1].choices[0].delta.role is None
    stop, usage = chunks[len(words)], chunks[len(words) + 1]
    assert stop.choices[0].finish_reason == "stop" and stop.choices[0].delta.content is None
    assert usage.choices == [] and usage.usage == plain.usage
    assert len(chunks) == len(words) + 2
    assert len(without_usage) == len(words) + 1
    assert all(c.usage is None for c in without_usage)


def test_the_raw_stream_ends_with_done() -> None:
    """The local stand-in (OpenAI's documented API) frames SSE events and ends with [DONE]."""
    with stand_in() as provider:
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        answer = httpx.post(f"{provider.base_url}/chat/completions", json=body)
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [line for line in answer.text.split("\n\n") if line]
    assert events[-1] == "data: [DONE]"
    assert all(event.startswith("data: ") for event in events)


def test_embeddings_in_base64_and_float_agree() -> None:
    """The local stand-in (OpenAI's documented API) embeds for the real openai client,
    which asks for base64 by default; floats and base64 hold the same float32 values."""
    with stand_in() as provider:
        answer = client_of(provider).embeddings.create(
            model="text-embedding-3-small", input=["hello world", "bye"]
        )
        floats = httpx.post(
            f"{provider.base_url}/embeddings", json={"model": "e", "input": "hello world"}
        ).json()
        raw = httpx.post(
            f"{provider.base_url}/embeddings",
            json={"model": "e", "input": "hello world", "encoding_format": "base64"},
        ).json()
    assert provider.requests[0]["encoding_format"] == "base64"
    assert [row.index for row in answer.data] == [0, 1]
    vector = answer.data[0].embedding
    assert len(vector) == 16 and math.isclose(math.fsum(v * v for v in vector), 1, rel_tol=1e-6)
    assert vector == embedding_of("hello world") == floats["data"][0]["embedding"]
    assert answer.data[1].embedding != vector
    decoded = struct.unpack("<16f", base64.b64decode(raw["data"][0]["embedding"]))
    assert list(decoded) == vector
    assert answer.usage.prompt_tokens == 3


def test_models_are_listed() -> None:
    """The local stand-in (OpenAI's documented API) lists its models."""
    with stand_in() as provider:
        models = [model.id for model in client_of(provider).models.list()]
    assert "judge" in models and "gpt-4o-mini" in models


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"messages": MESSAGES}, "model"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ],
)
def test_bad_chat_requests_get_400_in_the_openai_shape(body: dict, param: str) -> None:
    """The local stand-in (OpenAI's documented API) refuses what a provider refuses."""
    with stand_in() as provider:
        answer = httpx.post(f"{provider.base_url}/chat/completions", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_bad_embedding_requests_and_bodies_get_400() -> None:
    """The local stand-in (OpenAI's documented API) refuses empty input and non-JSON."""
    with stand_in() as provider:
        empty = httpx.post(f"{provider.base_url}/embeddings", json={"model": "e", "input": []})
        bad_format = httpx.post(
            f"{provider.base_url}/embeddings",
            json={"model": "e", "input": "x", "encoding_format": "int8"},
        )
        not_json = httpx.post(f"{provider.base_url}/chat/completions", content=b"{oops")
    assert (empty.status_code, empty.json()["error"]["param"]) == (400, "input")
    assert (bad_format.status_code, bad_format.json()["error"]["param"]) == (400, "encoding_format")
    assert not_json.status_code == 400 and "JSON object" in not_json.json()["error"]["message"]


def test_faults_are_counted_down_per_call() -> None:
    """The local stand-in (OpenAI's documented API) answers 429 (Retry-After) then 500
    as told, then normally again, recording every request."""
    with stand_in() as provider:
        provider.fail("429", times=2, retry_after=7)
        provider.fail("500")
        url = f"{provider.base_url}/chat/completions"
        body = {"model": "m", "messages": MESSAGES}
        answers = [httpx.post(url, json=body) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 500, 200]
    assert answers[0].headers["retry-after"] == "7"
    assert answers[0].json()["error"]["type"] == "rate_limit_exceeded"
    assert answers[2].json()["error"]["type"] == "server_error"
    assert len(provider.requests) == 4


def test_the_openai_client_sees_the_faults_as_its_own_errors() -> None:
    """The local stand-in (OpenAI's documented API) fails the way the openai client knows."""
    with stand_in() as provider:
        client = client_of(provider, max_retries=0)
        provider.fail("429")
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        provider.fail("500")
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)


def test_a_timeout_holds_the_call_until_released() -> None:
    """The local stand-in (OpenAI's documented API) holds a "timeout" call until released,
    so the client's timeout fires however fast the machine is."""
    with stand_in() as provider:
        provider.fail("timeout")
        client = client_of(provider, max_retries=0, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        provider.fail("timeout")
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(
                httpx.post,
                f"{provider.base_url}/chat/completions",
                json={"model": "m", "messages": MESSAGES},
                timeout=120,
            )
            wait_for(lambda: len(provider.requests) == 2, what="the held call to arrive")
            assert not held.done()
            provider.release()
            assert held.result().status_code == 500
        after = client.chat.completions.create(model="m", messages=MESSAGES)
    assert after.choices[0].message.content is not None


def test_truncate_cuts_the_stream_without_done() -> None:
    """The local stand-in (OpenAI's documented API) cuts a stream short when told to."""
    with stand_in() as provider:
        provider.fail("truncate")
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        answer = httpx.post(f"{provider.base_url}/chat/completions", json=body)
        provider.fail("truncate")
        cut = httpx.post(f"{provider.base_url}/chat/completions", json={**body, "stream": False})
    events = [line for line in answer.text.split("\n\n") if line]
    assert 1 <= len(events) < 10
    assert "[DONE]" not in answer.text and '"finish_reason":"stop"' not in answer.text
    with pytest.raises(ValueError):
        cut.json()


def test_garbage_is_not_json() -> None:
    """The local stand-in (OpenAI's documented API) answers garbage when told to."""
    with stand_in() as provider:
        provider.fail("garbage", times=2)
        body = {"model": "m", "messages": MESSAGES}
        plain = httpx.post(f"{provider.base_url}/chat/completions", json=body)
        streamed = httpx.post(
            f"{provider.base_url}/chat/completions", json={**body, "stream": True}
        )
    assert plain.status_code == 200
    with pytest.raises(ValueError):
        plain.json()
    assert "data: {this is not json" in streamed.text


def test_faults_are_shared_safely_between_threads() -> None:
    """The local stand-in (OpenAI's documented API) counts faults exactly under load."""
    with stand_in() as provider:
        provider.fail("500", times=10)
        url = f"{provider.base_url}/chat/completions"
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(
                    lambda i: (
                        httpx.post(
                            url,
                            json={"model": "m", "messages": [{"role": "user", "content": str(i)}]},
                        ).status_code
                    ),
                    range(40),
                )
            )
    assert statuses.count(500) == 10 and statuses.count(200) == 30
    assert len(provider.requests) == 40


def test_an_unknown_fault_is_refused() -> None:
    """The local stand-in (OpenAI's documented API) names its faults."""
    with stand_in() as provider, pytest.raises(ValueError, match="truncate"):
        provider.fail("explode")


@pytest.mark.parametrize(
    ("answer", "score", "hallucination"),
    [
        ("The capital of France is Paris.", 5, False),
        ("Paris, with 2100000 people.", 2, True),
        ("I do not know.", 1, False),
    ],
)
def test_the_judge_rule(answer: str, score: int, hallucination: bool) -> None:
    """The local stand-in (OpenAI's documented API) judges by the declared rule: scores
    from the share of reference words found, hallucination from invented numbers."""
    prompt = (
        "Grade the answer.\nCRITERIA: correctness, helpfulness\n"
        f"REFERENCE:\nParis is the capital of France.\nANSWER:\n{answer}\n"
    )
    with stand_in() as provider:
        reply = client_of(provider).chat.completions.create(
            model="judge-mini", messages=[{"role": "user", "content": prompt}]
        )
    import json

    verdict = json.loads(reply.choices[0].message.content or "")
    assert verdict == judge_verdict(prompt)
    assert verdict["scores"] == {"correctness": score, "helpfulness": score}
    assert verdict["hallucination"] is hallucination
    assert isinstance(verdict["reason"], str) and verdict["reason"]


def test_a_reference_without_long_words_scores_full_marks() -> None:
    """The local stand-in's judge rule (OpenAI's documented API): f = 1.0 for no words."""
    verdict = judge_verdict("CRITERIA: a\nREFERENCE:\nno\nANSWER:\nyes\n")
    assert verdict["scores"] == {"a": 5} and verdict["hallucination"] is False


def test_report_cost_adds_usage_cost() -> None:
    """The local stand-in (OpenAI's documented API) reports a cost when asked to."""
    with stand_in(report_cost=True) as provider:
        body = {"model": "m", "messages": MESSAGES}
        usage = httpx.post(f"{provider.base_url}/chat/completions", json=body).json()["usage"]
    assert usage["cost"] == pytest.approx(15 * 1e-6 + 11 * 2e-6)


def test_main_serves_until_interrupted() -> None:
    """``python -m shipyard.demo.provider`` serves the local stand-in (OpenAI's documented
    API) on the given port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard.demo.provider", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 200
            except httpx.TransportError:
                assert process.poll() is None, "the stand-in exited"
                return False

        wait_for(answers, what="the stand-in to listen")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert f"http://127.0.0.1:{port}/v1" in output.decode()
