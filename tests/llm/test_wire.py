"""The gateway's wire format: chat and embeddings bodies checked, errors in OpenAI's shape.

Pure functions over bytes: no server, no provider.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.errors import CapExceeded, ProviderError, Unauthenticated
from shipyard.llm.streaming import DONE, cached_chunks, event, is_usage_chunk
from shipyard.llm.wire import (
    OpenAIError,
    error_of,
    model_pin,
    parse_chat,
    parse_embeddings,
)

USER = {"role": "user", "content": "hi"}


def body(**fields: object) -> bytes:
    return orjson.dumps({"model": "assistant", "messages": [USER], **fields})


def test_a_chat_request_is_read_with_its_params_variables_and_stream_options() -> None:
    request = parse_chat(
        body(
            temperature=0.3,
            max_tokens=50,
            stop=["\n"],
            stream=True,
            stream_options={"include_usage": True},
            variables={"company": "Acme"},
            user="u-1",
        )
    )
    assert request.model == "assistant" and request.messages == [USER]
    assert request.stream and request.include_usage
    assert request.variables == {"company": "Acme"} and request.user == "u-1"
    assert request.params == {"temperature": 0.3, "max_tokens": 50, "stop": ["\n"]}
    assert request.last_user_text == "hi"


def test_content_parts_and_assistant_tool_calls_are_accepted() -> None:
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}
    request = parse_chat(orjson.dumps({"model": "m", "messages": [call, parts]}))
    assert request.last_user_text == "a\nb"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": None}, "messages"),
        ({"model": "m", "messages": {}}, "messages"),
        ({"model": "m", "messages": [1]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": {"a": 1}}]},
            "messages[0].content",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}],
            },
            "messages[0].content[0].text",
        ),
        ({"messages": [USER]}, "model"),
        ({"model": 3, "messages": [USER]}, "model"),
        ({"model": "m", "messages": [USER], "stream": "yes"}, "stream"),
        (
            {"model": "m", "messages": [USER], "stream_options": {"include_usage": True}},
            "stream_options",
        ),
        ({"model": "m", "messages": [USER], "top_p": 1.5}, "top_p"),
        ({"model": "m", "messages": [USER], "n": 2}, "n"),
        ({"model": "m", "messages": [USER], "stop": [1]}, "stop"),
        ({"model": "m", "messages": [USER], "seed": 1.5}, "seed"),
        ({"model": "m", "messages": [USER], "logprobs": 1}, "logprobs"),
        ({"model": "m", "messages": [USER], "user": 7}, "user"),
        ({"model": "m", "messages": [USER], "variables": "x"}, "variables"),
        ({"model": "m", "messages": [USER], "wat": 1}, "wat"),
    ],
)
def test_bad_chat_bodies_are_400s_naming_the_param(payload: dict[str, object], param: str) -> None:
    with pytest.raises(OpenAIError) as refused:
        parse_chat(orjson.dumps(payload))
    assert refused.value.status == 400
    assert refused.value.param == param
    error = json.loads(refused.value.body())["error"]
    assert error == {
        "message": refused.value.message,
        "type": "invalid_request_error",
        "param": param,
        "code": refused.value.openai_code,
    }


@given(st.binary(max_size=200))
def test_any_bytes_are_a_request_or_a_400(data: bytes) -> None:
    try:
        parse_chat(data)
    except OpenAIError as refused:
        assert refused.status == 400


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_any_json_messages_are_a_request_or_a_400(messages: object) -> None:
    try:
        parse_chat(
            orjson.dumps({"model": "m", "messages": messages}, option=orjson.OPT_NON_STR_KEYS)
        )
    except OpenAIError as refused:
        assert refused.status == 400 and refused.param is not None
        assert refused.param.startswith("messages")
    except orjson.JSONEncodeError:  # NaN and friends: nothing a client could send
        pass


def test_embeddings_requests() -> None:
    request = parse_embeddings(
        orjson.dumps({"model": "e", "input": ["a", "b"], "encoding_format": "base64"})
    )
    assert request.input == ["a", "b"] and request.encoding_format == "base64"
    assert request.provider_body() == {"model": "e", "input": ["a", "b"]}
    assert (
        parse_embeddings(orjson.dumps({"model": "e", "input": [[1, 2], [3]]})).encoding_format
        == "float"
    )
    for bad, param in [
        ({"model": "e"}, "input"),
        ({"model": "e", "input": ""}, "input"),
        ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": [1, "a"]}, "input"),
        ({"model": "e", "input": "a", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "e", "input": "a", "dimensions": 0}, "dimensions"),
        ({"model": "e", "input": "a", "extra": 1}, "extra"),
        ({"input": "a"}, "model"),
    ]:
        with pytest.raises(OpenAIError) as refused:
            parse_embeddings(orjson.dumps(bad))
        assert refused.value.param == param, bad


def test_the_model_is_the_served_name_or_a_pinned_version() -> None:
    assert model_pin("assistant", "assistant") is None
    assert model_pin("assistant/3", "assistant") == "3"
    for other in ("gpt-4o", "assistant/", "other/3", ""):
        with pytest.raises(OpenAIError) as unknown:
            model_pin(other, "assistant")
        assert unknown.value.status == 404 and unknown.value.param == "model"


def test_every_error_gets_the_openai_shape_and_its_status() -> None:
    status, payload, headers = error_of(ProviderError("provider 'p' timed out", 504, provider="p"))
    assert status == 504 and json.loads(payload)["error"]["code"] == "provider_timeout"
    status, payload, headers = error_of(CapExceeded("over", 30, {"RateLimit-Limit": "5"}))
    assert status == 429 and headers["Retry-After"] == "30" and headers["RateLimit-Limit"] == "5"
    assert json.loads(payload)["error"]["type"] == "rate_limit_error"
    status, payload, headers = error_of(Unauthenticated("no token"))
    assert status == 401 and "WWW-Authenticate" in headers
    status, payload, _ = error_of(RuntimeError("secret detail"), "req-9")
    assert status == 500 and b"secret" not in payload and b"req-9" in payload
    assert json.loads(payload)["error"]["type"] == "api_error"


def test_a_cached_answer_streams_as_chunks_then_usage() -> None:
    answer = {
        "choices": [
            {"message": {"role": "assistant", "content": "Hello there"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    chunks = list(cached_chunks(answer, chunk_id="c", created=1, model="m", include_usage=True))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        == "Hello there"
    )
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert is_usage_chunk(chunks[-1]) and chunks[-1]["usage"]["total_tokens"] == 5
    assert event({"a": 1}) == b'data: {"a":1}\n\n' and DONE == b"data: [DONE]\n\n"
