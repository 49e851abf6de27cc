"""Bad input, provider failures, caps and tokens at the gateway, in OpenAI's error shape.

Over the wire with the real ``openai`` client where the client's behaviour is the
point (its exception classes, a stream that must end); in process (the ASGI client)
where only the status and body matter. The LLM provider is the deterministic stand-in
(:mod:`tests.support.llm_provider`), told to answer 500, a timeout or a truncated
stream; it is the only stand-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionUserMessageParam

from shipyard.llm.server import build_gateway
from tests.support import AppClient, in_process, token_for
from tests.support.llm_projects import LlmProject
from tests.support.llm_provider import StandInProvider, stand_in

TEMPLATE = "You answer for {{company}}."
USER: ChatCompletionUserMessageParam = {"role": "user", "content": "hello"}
VARIABLES = {"company": "Acme"}


@pytest.fixture
def provider() -> Iterator[StandInProvider]:
    with stand_in() as running:
        yield running


def client_of(url: str) -> openai.OpenAI:
    """The real openai client at the gateway, without its own retries."""
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def ready(root: Path, provider: StandInProvider, **settings: object) -> LlmProject:
    llm = LlmProject.create(root, [provider], settings)
    llm.promote(llm.register(TEMPLATE))
    return llm


def chat(
    app: object, body: dict[str, object], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, object]]:
    """One chat call in process: status, headers, the JSON body."""
    with in_process(app) as client:
        status, got, payload = client.call(
            "/v1/chat/completions", json.dumps(body).encode(), headers
        )
    return status, got, json.loads(payload)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppClient, StandInProvider]]:
    """One gateway (in process) for the bad-input cases, on a stand-in provider."""
    with stand_in() as provider:
        llm = ready(tmp_path_factory.mktemp("bad-input") / "assistant", provider)
        with in_process(build_gateway(llm.serve_spec(), {}).app) as client:
            yield client, provider


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "assistant"}, 400, "messages"),
        ({"model": "assistant", "messages": []}, 400, "messages"),
        ({"model": "assistant", "messages": "hi"}, 400, "messages"),
        (
            {"model": "assistant", "messages": [{"role": "wizard", "content": "x"}]},
            400,
            "messages[0].role",
        ),
        ({"model": "assistant", "messages": [{"content": "x"}]}, 400, "messages[0].role"),
        (
            {"model": "assistant", "messages": [USER, {"role": "user", "content": 42}]},
            400,
            "messages[1].content",
        ),
        (
            {"model": "assistant", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            400,
            "messages[0].content[0]",
        ),
        ({"messages": [USER]}, 400, "model"),
        ({"model": "assistant", "messages": [USER], "temperature": 9}, 400, "temperature"),
        ({"model": "assistant", "messages": [USER], "max_tokens": "9"}, 400, "max_tokens"),
        ({"model": "assistant", "messages": [USER], "frobnicate": 1}, 400, "frobnicate"),
        ({"model": "assistant", "messages": [USER], "variables": [1]}, 400, "variables"),
        ({"model": "assistant", "messages": [USER]}, 400, "variables"),  # {{company}} missing
        ({"model": "gpt-4o", "messages": [USER]}, 404, "model"),
        ({"model": "assistant/99", "messages": [USER]}, 404, "model"),
    ],
)
def test_bad_requests_get_the_openai_error_shape_naming_the_param(
    served: tuple[AppClient, StandInProvider],
    body: dict[str, object],
    status: int,
    param: str,
) -> None:
    """Stand-in provider (never reached): each bad body is a 400/404 naming its param."""
    client, provider = served
    before = len(provider.requests)
    got, headers, payload = client.call("/v1/chat/completions", json.dumps(body).encode())
    assert got == status
    error = json.loads(payload)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["message"]
    assert error["type"] == "invalid_request_error"
    assert headers["x-request-id"]
    assert len(provider.requests) == before


def test_a_body_that_is_not_json_is_a_400(served: tuple[AppClient, StandInProvider]) -> None:
    """Stand-in provider (never reached): garbage and a JSON array are 400s, not 500s."""
    client, _ = served
    for body in (b"{not json", b"[1, 2]", b""):
        status, _, payload = client.call("/v1/chat/completions", body)
        assert status == 400, body
        assert json.loads(payload)["error"]["type"] == "invalid_request_error"


def test_the_client_sees_bad_input_as_its_own_exceptions(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: the openai client raises BadRequestError / NotFoundError with
    the param, as against OpenAI."""
    llm = ready(tmp_path / "assistant", provider)
    with llm.gateway() as (url, _server):
        client = client_of(url)
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(
                model="assistant",
                messages=[{"role": "robot", "content": "hi"}],  # type: ignore[misc,list-item]
                extra_body={"variables": VARIABLES},
            )
        with pytest.raises(openai.NotFoundError) as unknown:
            client.chat.completions.create(
                model="nope", messages=[USER], extra_body={"variables": VARIABLES}
            )
    assert bad.value.status_code == 400
    assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "messages[0].role"
    assert unknown.value.status_code == 404 and "assistant" in unknown.value.message


def test_a_provider_error_is_passed_on_with_its_status(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider answering 500 to every attempt: the client gets a 500 saying the
    provider failed, in OpenAI's shape."""
    llm = ready(tmp_path / "assistant", provider)
    server = build_gateway(llm.serve_spec(), {})
    provider.fail("500", times=10)
    status, _, payload = chat(
        server.app, {"model": "assistant", "messages": [USER], "variables": VARIABLES}
    )
    error = payload["error"]
    assert isinstance(error, dict)
    assert status == 500 and error["code"] == "provider_error"
    assert "primary" in str(error["message"])


def test_a_provider_timeout_is_a_504(provider: StandInProvider, tmp_path: Path) -> None:
    """Stand-in provider holding the call past the client's timeout (until released):
    the gateway answers 504 with code provider_timeout."""
    # One attempt with a short timeout: the stand-in holds the call until released, so
    # the timeout fires however fast or slow the machine is.
    hasty = {"name": "primary", "base_url": provider.base_url, "timeout_seconds": 0.5}
    llm = LlmProject.create(
        tmp_path / "assistant", [provider], {"llm": {"providers": [{**hasty, "max_retries": 0}]}}
    )
    llm.promote(llm.register(TEMPLATE))
    provider.fail("timeout", times=1)
    with llm.gateway() as (url, _server):
        with pytest.raises(openai.APIStatusError) as timed_out:
            client_of(url).chat.completions.create(
                model="assistant", messages=[USER], extra_body={"variables": VARIABLES}
            )
        provider.release()
    assert timed_out.value.status_code == 504
    assert isinstance(timed_out.value.body, dict)
    assert timed_out.value.body["code"] == "provider_timeout"


def test_a_truncated_stream_ends_with_an_error_event_not_a_hang(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider cutting its stream without [DONE]: the client has the first
    words, then the openai client raises APIError from the error event; nothing hangs."""
    llm = ready(tmp_path / "assistant", provider)
    provider.fail("truncate", times=1)
    received: list[str] = []
    with llm.gateway() as (url, _server):
        stream = client_of(url).chat.completions.create(
            model="assistant",
            messages=[USER],
            stream=True,
            extra_body={"variables": VARIABLES},
        )
        with pytest.raises(openai.APIError) as broken:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    received.append(chunk.choices[0].delta.content)
    assert received, "the words sent before the cut reach the client"
    assert "truncated" in broken.value.message or "provider" in broken.value.message


def test_a_tenant_over_its_cap_gets_429_and_the_provider_is_not_called(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: with a cap of 2 requests per hour for every tenant, tenant
    acme's third request is refused with 429 and Retry-After, before any provider call;
    another tenant is still served."""
    llm = ready(
        tmp_path / "assistant",
        provider,
        llm={"caps": {"policies": [{"tenant": "*", "quota": 2, "window_seconds": 3600}]}},
    )
    with llm.gateway() as (url, _server):
        client = client_of(url)

        def ask(tenant: str) -> openai.types.chat.ChatCompletion:
            return client.chat.completions.create(
                model="assistant",
                messages=[USER],
                extra_body={"variables": VARIABLES},
                extra_headers={"X-Shipyard-Tenant": tenant},
            )

        ask("acme")
        ask("acme")
        calls = len(provider.requests)
        with pytest.raises(openai.RateLimitError) as refused:
            ask("acme")
        assert len(provider.requests) == calls  # never sent, never charged
        ask("globex")
    headers = refused.value.response.headers
    assert int(headers["retry-after"]) > 0
    assert refused.value.status_code == 429
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["code"] == "rate_limit_exceeded"


def test_tokens_are_required_when_serving_auth_is(
    provider: StandInProvider, tmp_path: Path
) -> None:
    """Stand-in provider: with serving.auth required, no token is a 401 in OpenAI's shape,
    a token with serve:invoke is answered (the openai client sends it as its api_key)."""
    llm = ready(tmp_path / "assistant", provider, serving={"auth": "required"})
    secret = token_for(llm.project(), "labeller")  # serve:invoke, nothing to deploy
    with llm.gateway() as (url, _server):
        with pytest.raises(openai.AuthenticationError) as refused:
            client_of(url).chat.completions.create(
                model="assistant", messages=[USER], extra_body={"variables": VARIABLES}
            )
        answer = openai.OpenAI(
            base_url=f"{url}/v1", api_key=secret, max_retries=0
        ).chat.completions.create(
            model="assistant", messages=[USER], extra_body={"variables": VARIABLES}
        )
    assert refused.value.status_code == 401
    assert isinstance(refused.value.body, dict) and refused.value.body["code"] == "invalid_api_key"
    assert answer.choices[0].message.content
