"""The gateway's other routes and its wire details, in process (the ASGI client).

Readiness, metrics, unknown routes, compressed bodies, request ids, tokens on
``/v1/models``. The gateway is the one ``build_gateway`` makes for ``shipyard serve``;
the LLM provider is the deterministic stand-in (:mod:`tests.support.llm_provider`), the
only stand-in.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest

from shipyard.llm.server import build_gateway
from tests.support import AppClient, in_process, token_for, wait_for
from tests.support.llm_projects import LlmProject
from tests.support.llm_provider import StandInProvider, stand_in

BODY = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AppClient, StandInProvider, LlmProject]]:
    """One gateway in process on a stand-in provider, tokens required, a cap of 100 calls."""
    with stand_in() as provider:
        llm = LlmProject.create(
            tmp_path_factory.mktemp("routes") / "assistant",
            [provider],
            {
                "serving": {"auth": "required"},
                "llm": {
                    "caps": {"policies": [{"tenant": "*", "quota": 100, "window_seconds": 3600}]}
                },
            },
        )
        llm.promote(llm.register("You are terse."))
        with in_process(build_gateway(llm.serve_spec(), {}).app) as client:
            yield client, provider, llm


def bearer(llm: LlmProject, role: str = "labeller") -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(llm.project(), role)}"}


def test_readiness_says_what_is_served(
    gateway: tuple[AppClient, StandInProvider, LlmProject],
) -> None:
    """Stand-in provider (not called): readiness is open, and names the traffic and caps."""
    client, _, _ = gateway
    status, _, payload = client.call("/v2/health/ready")
    ready = json.loads(payload)
    assert status == 200 and ready["ready"] is True
    assert ready["details"]["traffic"]["routes"][0]["role"] == "champion"
    assert ready["details"]["caps"]["state"] in ("ok", "local", "starting")
    assert client.call("/v2/health/live")[0] == 200


def test_a_call_with_a_token_gets_rate_limit_headers_and_metrics(
    gateway: tuple[AppClient, StandInProvider, LlmProject],
) -> None:
    """Stand-in provider: an answered call carries the RateLimit headers of the cap in
    force, and shows on /metrics as tokens and a request of its version."""
    client, _, llm = gateway
    status, headers, payload = client.call(
        "/v1/chat/completions", json.dumps(BODY).encode(), {**bearer(llm), "X-Request-ID": "r-1"}
    )
    assert status == 200, payload
    assert headers["x-request-id"] == "r-1"
    assert headers["ratelimit-limit"].startswith("100")
    assert int(headers["ratelimit-remaining"]) < 100

    def counted() -> str:
        page = client.call("/metrics")[2].decode()
        return page if "shipyard_llm_tokens_total{" in page else ""

    page = wait_for(counted, what="the call's tokens on /metrics")
    assert 'protocol="openai"' in page and 'status="200"' in page


def test_tokens_guard_the_model_list_and_chat(
    gateway: tuple[AppClient, StandInProvider, LlmProject],
) -> None:
    """Stand-in provider (not called): no token is 401, a viewer (no serve:invoke) 403,
    both in OpenAI's error shape."""
    client, provider, llm = gateway
    before = len(provider.requests)
    status, headers, payload = client.call("/v1/models")
    assert status == 401 and json.loads(payload)["error"]["code"] == "invalid_api_key"
    assert headers["www-authenticate"].startswith("Bearer")
    status, _, payload = client.call(
        "/v1/chat/completions", json.dumps(BODY).encode(), bearer(llm, "viewer")
    )
    assert status == 403 and json.loads(payload)["error"]["type"] == "permission_error"
    status, _, payload = client.call("/v1/models", None, bearer(llm))
    assert status == 200 and json.loads(payload)["data"][0]["id"] == "assistant"
    assert len(provider.requests) == before


def test_a_gzipped_body_is_read(gateway: tuple[AppClient, StandInProvider, LlmProject]) -> None:
    """Stand-in provider: a gzip-encoded chat body is answered like a plain one."""
    client, _, llm = gateway
    packed = gzip.compress(json.dumps(BODY).encode())
    status, _, payload = client.call(
        "/v1/chat/completions", packed, {**bearer(llm), "Content-Encoding": "gzip"}
    )
    assert status == 200, payload
    assert json.loads(payload)["choices"][0]["message"]["content"].startswith("Answer: hi")


def test_unknown_routes_and_methods_answer_in_openai_shape(
    gateway: tuple[AppClient, StandInProvider, LlmProject],
) -> None:
    """No provider involved: an unknown route is a 404 and GET on chat a 405, both JSON."""
    client, _, _ = gateway
    status, _, payload = client.call("/v1/completions", b"{}")
    assert status == 404 and json.loads(payload)["error"]["type"] == "invalid_request_error"
    status, _, payload = client.call("/v1/chat/completions")
    assert status == 405 and "error" in json.loads(payload)
    status, _, payload = client.call("/v1/chat/completions", b"x" * 64, {"X-Request-ID": "bad id!"})
    assert status == 400 and "X-Request-ID" in json.loads(payload)["error"]["message"]
