"""Caps through ``shipyard serve``'s gateway with the real openai client: two gateways on
one database enforce one stored cap, a token's tenant grant names the tenant, a cost
cap refuses once the provider-reported cost reached it, and a malformed policy header
is a 400 naming it. A refused request never reaches the provider.

The provider is the deterministic stand-in (tests.support.llm_provider, the suite's one
stand-in); the gateways, the project's SQLite database and the tokens are real.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionUserMessageParam

from shipyard.governance.tokens import issue_token
from shipyard.llm.cap_store import set_cap
from tests.support.llm_projects import LlmProject
from tests.support.llm_provider import StandInProvider, stand_in
from tests.support.waiting import wait_for

USER: ChatCompletionUserMessageParam = {"role": "user", "content": "hello"}
VARIABLES = {"company": "Acme"}


@pytest.fixture
def provider() -> Iterator[StandInProvider]:
    with stand_in() as running:
        yield running


def _ready(root: Path, provider: StandInProvider, **settings: Any) -> LlmProject:
    caps = {"sync_seconds": 0.05} | settings.pop("caps", {})
    llm = LlmProject.create(root, [provider], {"llm": {"caps": caps}, **settings})
    llm.promote(llm.register("You answer for {{company}}."))
    return llm


def _client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def _ask(client: openai.OpenAI, headers: dict[str, str] | None = None) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="assistant",
        messages=[USER],
        extra_body={"variables": VARIABLES},
        extra_headers=headers or {},
    )


def _syncs(url: str) -> int:
    with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=10) as answer:
        return int(json.loads(answer.read())["details"]["caps"]["counters"]["syncs"])


def _synced(*urls: str) -> None:
    """Wait until every gateway synced twice more: its counts are in, the others' read."""
    marks = {url: _syncs(url) for url in urls}
    for url, mark in marks.items():

        def done(url: str = url, mark: int = mark) -> bool:
            return _syncs(url) >= mark + 2

        wait_for(done, what=f"{url} to sync")


def test_two_gateways_on_one_database_enforce_one_stored_cap(
    provider: StandInProvider, tmp_path: Path
) -> None:
    llm = _ready(tmp_path / "assistant", provider, serving={"auth": "required"})
    project = llm.project()
    set_cap(project, "assistant", tenant="acme", quota=4, window_seconds=3600)
    acme = issue_token(project, name="acme-app", role="labeller", tenants=["acme"]).token
    globex = issue_token(project, name="globex-app", role="labeller", tenants=["globex"]).token
    with llm.gateway() as (first, _a), llm.gateway() as (second, _b):
        one, two = _client(first, acme), _client(second, acme)
        answers = [_ask(one), _ask(one), _ask(two)]
        _synced(first, second)
        last = _ask(two)
        assert last.headers["ratelimit-remaining"] == "0"  # 4 of 4, counted across both
        assert last.headers["ratelimit-policy"] == "4;w=3600;u=request"
        _synced(first, second)
        sent = len(provider.requests)
        with pytest.raises(openai.RateLimitError) as refused:
            _ask(one)
        assert len(provider.requests) == sent  # refused before any provider call
        with pytest.raises(openai.RateLimitError):
            _ask(one, {"X-Shipyard-Tenant": "acme"})
        with pytest.raises(openai.PermissionDeniedError):
            _ask(one, {"X-Shipyard-Tenant": "globex"})  # not this token's tenant
        assert _ask(_client(first, globex)).headers.get("ratelimit-limit") is None  # uncapped
    remaining = [a.headers["ratelimit-remaining"] for a in answers]
    assert remaining[:2] == ["3", "2"]
    # The second gateway saw 1, 2 or 3 of the 3 calls, depending on how many of the first's
    # counts it had read back by then (a busy machine may not have synced at all).
    assert remaining[2] in ("1", "2", "3")
    headers = refused.value.response.headers
    assert 0 < int(headers["retry-after"]) <= 3600
    assert headers["ratelimit-remaining"] == "0" and headers["ratelimit-limit"] == "4"
    assert "acme" in refused.value.message


def test_a_cost_cap_refuses_after_the_reported_cost_reached_it(tmp_path: Path) -> None:
    with stand_in(report_cost=True) as provider:
        cap = {"tenant": "*", "quota": 0.001, "unit": "cents", "window_seconds": 86400}
        llm = _ready(tmp_path / "assistant", provider, caps={"policies": [cap]})
        with llm.gateway() as (url, _server):
            client = _client(url)
            first = _ask(client, {"X-Shipyard-Tenant": "acme"})
            assert first.headers["ratelimit-limit"] == "0.001"
            sent = len(provider.requests)
            with pytest.raises(openai.RateLimitError) as refused:
                _ask(client, {"X-Shipyard-Tenant": "acme"})  # charged more than 0.001 cents
            assert len(provider.requests) == sent
            _ask(client, {"X-Shipyard-Tenant": "globex"})
    assert "0.001 cents per 86400 s" in refused.value.message


def test_a_policy_header_tightens_and_a_malformed_one_is_a_400(
    provider: StandInProvider, tmp_path: Path
) -> None:
    cap = {"tenant": "*", "quota": 100, "window_seconds": 60}
    llm = _ready(tmp_path / "assistant", provider, caps={"policies": [cap]})
    with llm.gateway() as (url, _server):
        client = _client(url)
        tight = {"Helicone-RateLimit-Policy": "1;w=60;s=user"}
        admitted = _ask(client, tight)
        assert admitted.headers["ratelimit-limit"] == "1"
        with pytest.raises(openai.RateLimitError):
            _ask(client, tight)
        sent = len(provider.requests)
        with pytest.raises(openai.BadRequestError) as bad:
            _ask(client, {"Shipyard-RateLimit-Policy": "lots;w=60"})
        assert len(provider.requests) == sent
    assert "Shipyard-RateLimit-Policy" in bad.value.message
    assert bad.value.status_code == 400
