"""The judge: its prompt, verdict parsing (bad replies are recorded failures), guardrails.

Tests that call a provider use the deterministic stand-in provider
(tests/support/llm_provider.py, a real HTTP server on 127.0.0.1) through the real
ProviderPool: the stand-in's judge rule scores 1 + round(4 * share of reference words
found in the answer) and flags numbers absent from the reference.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config.llm import LlmSettings
from shipyard.errors import ConfigError
from shipyard.llm.judges import Guardrails, Judge, judge_messages, judge_spec, parse_verdict
from shipyard.llm.providers import ProviderPool
from tests.support.llm_provider import provider_settings, stand_in

CRITERIA = ("correctness", "helpfulness")


def test_the_judge_prompt_is_the_reference_answer_criteria_format() -> None:
    system, user = judge_messages("Freeze the card\nin the app", "Call us", CRITERIA, "Be exact")
    assert system["role"] == "system" and "JSON" in system["content"]
    assert user["content"] == (
        "RUBRIC: Be exact\nREFERENCE:\nFreeze the card in the app\nANSWER:\nCall us\n"
        "CRITERIA: correctness, helpfulness\n"
    )


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("not json at all", "not JSON"),
        ('{"verdict": 5}', "no 'scores' object"),
        ('{"scores": {"correctness": 4}}', "no score for 'helpfulness'"),
        ('{"scores": {"correctness": 4, "helpfulness": 7}}', "is 7, not 1-5"),
        ('{"scores": {"correctness": 4, "helpfulness": 2.5}}', "is 2.5, not 1-5"),
        ('{"scores": {"correctness": true, "helpfulness": 2}}', "no score for 'correctness'"),
        ('{"scores": {"correctness": 4, "helpfulness": 2}, "hallucination": "no"}', "not true"),
    ],
)
def test_a_bad_verdict_is_a_recorded_failure(reply: str, error: str) -> None:
    verdict = parse_verdict(reply, CRITERIA)
    assert not verdict.ok and error in (verdict.error or "")
    assert verdict.score is None and verdict.scores == {}


def test_a_good_verdict_in_a_code_fence_is_read() -> None:
    reply = '```json\n{"scores": {"correctness": 4, "helpfulness": 3}, "hallucination": true}\n```'
    verdict = parse_verdict(reply, CRITERIA)
    assert verdict.ok and verdict.scores == {"correctness": 4, "helpfulness": 3}
    assert verdict.score == 3.5 and verdict.hallucination is True


def test_guardrails_name_the_patterns_an_answer_matches() -> None:
    guard = Guardrails(["guaranteed returns", r"pass\s*word"])
    assert guard.hits("We offer GUARANTEED returns; tell me your password") == [
        "guaranteed returns",
        r"pass\s*word",
    ]
    assert guard.hits("Freeze the card") == []
    with pytest.raises(ConfigError, match=r"guardrail_terms\[1\]"):
        Guardrails(["fine", "(unclosed"])


def test_the_judge_scores_through_the_provider_pool_on_the_stand_in(tmp_path: Path) -> None:
    """Stand-in provider: the judge rule answers; a 500 becomes a recorded failure."""
    with stand_in() as provider:
        settings = LlmSettings.model_validate(
            {"providers": [provider_settings(provider, "standin", max_retries=0).model_dump()]}
        )
        pool = ProviderPool.of_settings(settings, {}, tmp_path)
        try:
            judge = Judge.of_settings(pool.complete, settings)
            assert judge.name == "standin/judge" and judge.criteria == CRITERIA
            good = judge.verdict("Freeze the card in the app", "Freeze the card in the app now")
            assert good.ok and good.scores == {"correctness": 5, "helpfulness": 5}
            assert not good.hallucination
            half = judge.verdict("Freeze card app settings", "Freeze the card, 24 hours a day")
            # found "freeze", "card" of "freeze", "card", "settings": 1 + round(4 * 2/3)
            assert half.scores == {"correctness": 4, "helpfulness": 4} and half.hallucination
            sent = provider.requests[-1]
            assert sent["model"] == "judge" and sent["temperature"] == 0
            assert (
                "REFERENCE:\nFreeze card app settings\nANSWER:\n" in sent["messages"][-1]["content"]
            )
            provider.fail("500")
            failed = judge.verdict("Freeze the card", "Freeze the card")
            assert not failed.ok and "provider failed" in (failed.error or "")
            provider.fail("garbage")
            garbled = judge.verdict("Freeze the card", "Freeze the card")
            assert not garbled.ok
        finally:
            pool.close()


def test_the_judge_needs_a_known_provider() -> None:
    with pytest.raises(ConfigError, match="No provider for the judge"):
        judge_spec(LlmSettings.model_validate({}))
    settings = LlmSettings.model_validate(
        {
            "providers": [{"name": "a", "base_url": "http://127.0.0.1:9/v1"}],
            "judge": {"provider": "b"},
        }
    )
    with pytest.raises(ConfigError, match=r"'b' is not one of llm\.providers"):
        judge_spec(settings)
