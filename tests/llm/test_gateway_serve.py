"""``shipyard serve`` as a user runs it, for a project whose model is an LLM.

The CLI in its own processes (two workers on one port), the real ``openai`` client; the
LLM provider is the deterministic stand-in (:mod:`tests.support.llm_provider`), a real
HTTP server on 127.0.0.1 and the only stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from tests.support import ServeProcess, call, server_environment, wait_for
from tests.support.llm_projects import LlmProject
from tests.support.llm_provider import stand_in

pytestmark = pytest.mark.slow


def test_shipyard_serve_starts_the_gateway_for_an_llm_model(tmp_path: Path) -> None:
    """Stand-in provider: `shipyard serve assistant --workers 2` imports the configured
    price table, answers a chat call with the champion's prompt (priced), lists the model,
    and writes the trace log on SIGTERM."""
    with stand_in() as provider:
        prices = {
            "currency": "USD",
            "effective_from": "2026-01-01T00:00:00Z",
            "prices": [{"model_pattern": ".*", "input": 1e-06, "output": 2e-06}],
        }
        llm = LlmProject.create(
            tmp_path / "assistant", [provider], {"llm": {"prices": "prices.json"}}
        )
        (tmp_path / "assistant" / "prices.json").write_text(json.dumps(prices))
        version = llm.register("You answer for {{company}}.")
        llm.promote(version)
        with ServeProcess(
            llm.config_file,
            "assistant",
            workers=2,
            args=("--workers", "2"),
            environ=server_environment(),
        ) as server:
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
            answer = client.chat.completions.with_raw_response.create(
                model="assistant",
                messages=[{"role": "user", "content": "Is it open?"}],
                extra_body={"variables": {"company": "Harbour Bank"}},
            )
            models = [model.id for model in client.models.list()]

            def counted() -> bytes:
                # Traces are recorded off the request path: wait for the call's tokens.
                status, _, page = call(f"{server.url}/metrics")
                assert status == 200
                return page if b"shipyard_llm_tokens_total{" in page else b""

            metrics = wait_for(counted, what="the call's tokens on /metrics")
        text = answer.parse().choices[0].message.content
    assert answer.headers["x-model-version"] == version
    assert text == "Answer: Is it open? | You answer for Harbour Bank."
    assert models == ["assistant", f"assistant/{version}"]
    assert b'type="completion"' in metrics
    assert "OpenAI-compatible" in server.text
    assert "as price table version 1" in server.text
    cost = [
        float(line.rsplit(b" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(b"shipyard_llm_cost_total{")
    ]
    assert cost and sum(cost) > 0
