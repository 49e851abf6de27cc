"""The gateway over the wire: the real ``openai`` client against ``shipyard serve``'s app.

Every test here runs the gateway :func:`shipyard.llm.server.build_gateway` builds (as
``shipyard serve`` does for a model with task llm) under uvicorn on 127.0.0.1, and
talks to it with the real ``openai`` Python client, unchanged. The LLM provider is the
deterministic stand-in (:mod:`tests.support.llm_provider`): a real HTTP server whose
answer is ``"Answer: " + <last user message> + " | " + <system message>``; it is the
only stand-in.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from shipyard.logs.reader import query_log
from shipyard.logs.root import project_log_root
from tests.support.llm_projects import LlmProject
from tests.support.llm_provider import StandInProvider, answer_of, embedding_of, stand_in

TEMPLATE = "You answer for {{company}}."
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def client_of(url: str, **options: object) -> openai.OpenAI:
    """The real openai client pointed at the gateway (no retries: each call is one request)."""
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, **options)  # type: ignore[arg-type]


@pytest.fixture
def provider() -> Iterator[StandInProvider]:
    with stand_in() as running:
        yield running


def test_chat_answers_with_the_champion_prompt_filled_in(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: the champion's template, filled with the request's variables,
    is the system message the provider sees, with the version's fixed parameters winning
    over the request's; the client gets its answer and usage."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    version = llm.register(TEMPLATE, params={"temperature": 0.2})
    llm.promote(version)
    with llm.gateway() as (url, _server):
        raw = client_of(url).chat.completions.with_raw_response.create(
            model="assistant",
            messages=[{"role": "user", "content": "Where is my card?"}],
            temperature=1.5,  # the version fixes 0.2: a request may not override it
            max_tokens=64,  # one it does not fix is passed on
            extra_body={"variables": {"company": "Harbour Bank"}},
            extra_headers={"X-Request-ID": "order-17"},
        )
    completion = raw.parse()
    expected = answer_of(
        [
            {"role": "system", "content": "You answer for Harbour Bank."},
            {"role": "user", "content": "Where is my card?"},
        ]
    )
    assert completion.choices[0].message.content == expected
    assert completion.model == "assistant"
    assert completion.usage is not None and completion.usage.completion_tokens == len(
        expected.split()
    )
    assert raw.headers["x-request-id"] == "order-17"
    assert raw.headers["x-model-version"] == version
    assert raw.headers["x-model-role"] == "champion"
    sent = provider.requests[-1]
    assert sent["model"] == "small" and sent["temperature"] == 0.2 and sent["max_tokens"] == 64
    assert sent["messages"][0] == {"role": "system", "content": "You answer for Harbour Bank."}


def test_every_call_is_traced_in_the_trace_log(provider: StandInProvider, tmp_path: Path) -> None:
    """Stand-in provider: a call leaves its spans (gateway, provider) in the traces log,
    with tokens and the prompt version, in the caller's trace when it sent a traceparent."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    version = llm.register(TEMPLATE)
    llm.promote(version)
    with llm.gateway() as (url, _server):
        client_of(url).chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "hello there"}],
            extra_body={"variables": {"company": "Acme"}},
            extra_headers={"X-Request-ID": "traced-1", "traceparent": TRACEPARENT},
        )
    table = query_log(project_log_root(llm.config), "assistant", kind="traces").to_pylist()
    spans = {row["name"]: row for row in table if row["request_id"] == "traced-1"}
    assert {"gateway", "provider.call"} <= set(spans)
    call = spans["provider.call"]
    assert call["provider"] == "primary" and call["provider_model"] == "small"
    assert call["prompt"].startswith("support/")
    assert call["completion_tokens"] > 0 and call["version"] == version
    assert call["parent_span_id"] == spans["gateway"]["span_id"]
    assert "hello there" in call["input"]
    # The caller's W3C traceparent: the gateway's spans join its trace, under its span.
    assert call["trace_id"] == spans["gateway"]["trace_id"] == TRACEPARENT.split("-")[1]
    assert spans["gateway"]["parent_span_id"] == TRACEPARENT.split("-")[2]


def test_streaming_sends_chunks_then_usage_then_done(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider (one chunk per word): the client reads the same words, then a
    usage-only chunk with no choices, and the stream ends ([DONE])."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    llm.promote(llm.register(TEMPLATE))
    with llm.gateway() as (url, _server):
        stream = client_of(url).chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"variables": {"company": "Acme"}},
        )
        chunks = list(stream)
    words = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expected = answer_of(
        [
            {"role": "system", "content": "You answer for Acme."},
            {"role": "user", "content": "stream me"},
        ]
    )
    assert words.split() == expected.split()
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(expected.split())
    assert sum(1 for c in chunks if not c.choices) == 1


def test_streaming_without_include_usage_has_no_usage_chunk(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: without stream_options the client sees no usage-only chunk
    (the gateway still asks the provider for it, to count tokens)."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    llm.promote(llm.register(TEMPLATE))
    with llm.gateway() as (url, _server):
        chunks = list(
            client_of(url).chat.completions.create(
                model="assistant",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                extra_body={"variables": {"company": "Acme"}},
            )
        )
    assert all(chunk.choices for chunk in chunks)
    assert provider.requests[-1]["stream_options"] == {"include_usage": True}


def test_embeddings_as_floats_and_base64(provider: StandInProvider, tmp_path: Path) -> None:
    """Stand-in provider (16 floats from the text's SHA-256): the openai client's default
    base64 encoding and explicit floats decode to the same vector."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    llm.promote(llm.register(TEMPLATE))
    with llm.gateway() as (url, _server):
        client = client_of(url)
        default = client.embeddings.create(model="embed-small", input=["one text"])
        floats = client.embeddings.create(
            model="embed-small", input="one text", encoding_format="float"
        )
        raw = client.embeddings.with_raw_response.create(
            model="embed-small", input="one text", encoding_format="base64"
        )
    expected = np.asarray(embedding_of("one text"), dtype=np.float32)
    assert np.allclose(default.data[0].embedding, expected)
    assert np.allclose(floats.data[0].embedding, expected)
    encoded = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    assert np.allclose(np.frombuffer(base64.b64decode(encoded), dtype="<f4"), expected)


def test_models_lists_the_served_name_and_its_versions(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: GET /v1/models through the client lists the model and name/version."""
    llm = LlmProject.create(tmp_path / "assistant", [provider])
    version = llm.register(TEMPLATE)
    llm.promote(version)
    with llm.gateway() as (url, _server):
        client = client_of(url)
        ids = [model.id for model in client.models.list()]
        one = client.models.retrieve(f"assistant/{version}")
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve("gpt-5")
    assert ids == ["assistant", f"assistant/{version}"]
    assert one.id == f"assistant/{version}"
