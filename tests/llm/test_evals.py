"""Judge runs: gold and production, stored as runs and as the judge scorecard promotion reads.

Every provider call goes to the deterministic stand-in provider (tests/support/llm_provider.py,
a real HTTP server on 127.0.0.1) through the real ProviderPool. The assistant example's
prompt v1 gives the model the bank's facts, so the stand-in's answer holds them and the
stand-in judge scores it high; prompt v2 does not (and promises "24 hours", a number the
references never state: a hallucination). Versions are registered with plain MLflow
(tests/support/llm_evals.py). Real SQLite store and Parquet trace log.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import Config
from shipyard.errors import EvaluationError, PromotionRefused
from shipyard.governance.promotion import promote
from shipyard.llm.evals import evaluate_llm
from shipyard.llm.evals_store import list_runs
from shipyard.llm.providers import ProviderPool
from shipyard.llm.signals import classify, llm_signals
from shipyard.logs.traces import TraceRecord
from shipyard.models.llm import LLMSpec
from shipyard.project import Project
from shipyard.registry.refs import ModelRef
from shipyard.store import EventKind
from shipyard.store.tables import EvaluationRow
from tests.support import project_of
from tests.support.llm_evals import GOOD, WORSE, llm_project, register_version
from tests.support.llm_provider import StandInProvider, stand_in

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class Setup:
    def __init__(self, provider: StandInProvider, config: Config, project: Project) -> None:
        self.provider, self.config, self.project = provider, config, project
        self.pool = ProviderPool.of_settings(config.llm, {}, config.root)

    def judge(self, version: str, **fields: Any) -> Any:
        ref = ModelRef("assistant", version)
        return evaluate_llm(self.project, ref, chat=self.pool.complete, clock=lambda: NOW, **fields)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with stand_in() as provider:
        config = llm_project(tmp_path, provider)
        project = project_of(config)
        found = Setup(provider, config, project)
        yield found
        found.pool.close()
        project.close()


def test_a_gold_run_is_stored_as_a_run_and_a_judge_scorecard(setup: Setup) -> None:
    """Stand-in provider: v1 (facts in its prompt) scores high on the example gold set."""
    v1 = register_version(setup.config, GOOD)
    run = setup.judge(v1)
    assert run.kind == "gold" and run.rows == 12 and run.failures == 0
    assert run.score is not None and run.score >= 3.5 and run.passed is True
    assert set(run.criteria) == {"correctness"} and run.hallucination_rate == 0.0
    assert run.guardrail_rate == 0.0 and run.judge == "standin/judge"
    assert run.agreement is not None and run.agreement.n == 8  # the human-scored items
    assert run.kappa is not None and run.agreement.low is not None
    # The candidate's own answers came from the version's prompt, through the pool.
    asked = [r for r in setup.provider.requests if r["model"] == "chat"]
    assert len(asked) == 12 and asked[0]["messages"][0]["content"].startswith("You are the support")
    (stored,) = list_runs(setup.project.store, "assistant")
    assert stored.id == run.id and stored.score == run.score and stored.items[0].id == "card-lost"
    with setup.project.store.session() as session:
        card = session.query(EvaluationRow).one()
        assert card.golden_digest == run.gold_digest and card.passed
        assert card.result["kind"] == "llm-judge" and card.result["gold_file_sha256"]
    (event,) = setup.project.store.events(kind=EventKind.LLM_EVALUATED.value)
    assert event.subject == f"model:assistant/{v1}" and event.payload["score"] == run.score


def test_promotion_goes_through_the_judge_scorecard(setup: Setup) -> None:
    """Stand-in provider: v2 (no facts) fails against the v1 champion; a changed gold
    file needs a new run."""
    v1, v2 = register_version(setup.config, GOOD), register_version(setup.config, WORSE)
    with pytest.raises(PromotionRefused, match="no judge scorecard on the current gold set"):
        promote(setup.project, ModelRef("assistant", v1), to="champion")
    setup.judge(v1)
    promote(setup.project, ModelRef("assistant", v1), to="champion")
    run = setup.judge(v2)
    assert run.champion_version == v1 and run.champion_score is not None
    assert run.score is not None and run.score < run.champion_score - 0.2
    assert run.passed is False and run.hallucination_rate == 1.0  # "24 hours" everywhere
    with pytest.raises(PromotionRefused, match="the judge scorecard failed"):
        promote(setup.project, ModelRef("assistant", v2), to="challenger")
    gold = setup.config.root / "gold.jsonl"
    gold.write_text(gold.read_text() + "\n", encoding="utf-8")  # changed bytes
    with pytest.raises(PromotionRefused, match="no judge scorecard on the current gold"):
        promote(setup.project, ModelRef("assistant", v1), to="challenger")


def test_provider_faults_are_recorded_failures_not_crashes(setup: Setup) -> None:
    """Stand-in provider told to fail: answers and verdicts that fail are counted."""
    v1 = register_version(setup.config, GOOD)
    setup.provider.fail("500", times=2)  # the first two answers (no retries configured)
    run = setup.judge(v1)
    assert run.rows == 12 and run.failures == 2
    failed = [item for item in run.items if not item.verdict.ok]
    assert [item.id for item in failed] == ["card-lost", "transfer-limit"]
    assert "failed to answer" in (failed[0].verdict.error or "")
    assert run.score is not None  # the mean over the items the judge could score


def test_judge_drift_is_a_fall_in_kappa_on_a_fixed_slice(setup: Setup, tmp_path: Path) -> None:
    """Stand-in provider for the answers and the first judge; then the judge's replies
    change (a wrapper over the pool that scores everything 1, as a provider-side model
    update might), and the kappa on the fixed, human-scored answers falls."""
    items = [
        {"id": f"q{n}", "input": f"Question {n}", "reference": ref, "answer": ans, "human_score": s}
        for n, (ref, ans, s) in enumerate(
            [
                ("Freeze the card in the app", "Freeze the card in the app", 5),
                ("Branches open weekdays", "Branches open weekdays", 5),
                ("Statements under Documents", "Nothing useful here", 1),
                ("Transfers limited daily", "Nothing useful here", 1),
                ("Close account under Settings", "Close account somewhere", 3),
            ]
        )
    ]
    gold = setup.config.root / "gold.jsonl"
    gold.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    v1 = register_version(setup.config, GOOD)
    first = setup.judge(v1)
    assert first.kappa == 1.0 and not first.judge_drift

    def degraded(spec: LLMSpec, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
        reply = json.loads(setup.pool.complete(spec, messages, params))
        if spec.model == "judge":
            reply["scores"] = {name: 1 for name in reply["scores"]}
        return json.dumps(reply)

    later = evaluate_llm(setup.project, ModelRef("assistant", v1), chat=degraded)
    assert later.kappa is not None and later.kappa < 1.0 - 0.15
    assert later.kappa_baseline == 1.0 and later.judge_drift
    kappa = next(s for s in _signals(setup, v1) if s.name == "llm:kappa")
    assert kappa.level == "inspect" and kappa.value == pytest.approx(1.0 - later.kappa)


def _trace(
    version: str, at: datetime, question: str, answer: str, *, hit: bool = False
) -> list[Any]:
    """A served request's spans as the gateway writes them: the gateway span with the
    answer, and (unless the cache answered) the provider call with the messages sent."""
    from shipyard.logs.traces import TraceRecord

    request, trace = uuid.uuid4().hex, uuid.uuid4().hex
    root = TraceRecord(
        request_id=request, time=at, model="assistant", version=version, trace_id=trace,
        span_id=uuid.uuid4().hex[:16], parent_span_id="", name="gateway", kind="CHAIN",
        start=at, end=at, duration_ms=1.0, output=answer, cache="exact" if hit else "miss",
    )  # fmt: skip
    if hit:
        return [root]
    messages = [{"role": "system", "content": "Facts: none"}, {"role": "user", "content": question}]
    call = TraceRecord(
        request_id=request, time=at, model="assistant", version=version, trace_id=trace,
        span_id=uuid.uuid4().hex[:16], parent_span_id=root.span_id, name="provider.call",
        kind="LLM", start=at, end=at, duration_ms=1.0, input=json.dumps(messages),
        output=answer,
    )  # fmt: skip
    return [root, call]


def _write_traces(config: Config, records: list[Any]) -> None:
    from shipyard.logs.root import project_log_root
    from shipyard.logs.writer import PredictionLogWriter

    writer = PredictionLogWriter(project_log_root(config), kind="traces")
    writer.start()
    for record in records:
        writer.log(record)
    writer.close()


def _signals(setup: Setup, version: str, champion: str | None = None) -> list[Any]:
    return llm_signals(
        setup.project.store, setup.config.llm.bands, "assistant", version, champion=champion
    )


def test_a_production_run_judges_a_sample_and_measures_guardrails_week_on_week(
    setup: Setup,
) -> None:
    """Stand-in provider judges answers read back from the Parquet trace log."""
    v1 = register_version(setup.config, GOOD)
    question = "I lost my debit card, what should I do?"  # a gold input: its reference
    good = "Freeze the card in the app under Cards, then order a replacement within 5 working days"
    risky = "Guaranteed returns if you send your password"
    day, hours = NOW - timedelta(days=1), NOW - timedelta(hours=3)
    this_week = [_trace(v1, day, question, good) for _ in range(6)]
    this_week += [_trace(v1, day, question, good, hit=True)]  # a cache hit: not judged
    this_week += [_trace(v1, hours, question, risky) for _ in range(3)]
    # The gateway writes the route's role: a challenger's answer counts too.
    this_week[-1] = [replace(span, role="challenger") for span in this_week[-1]]
    last_week = [_trace(v1, NOW - timedelta(days=8), question, good) for _ in range(9)]
    last_week += [_trace(v1, NOW - timedelta(days=9), "Anything else?", risky)]
    shadow = [
        TraceRecord(**{**span.to_dict(), "role": "shadow"})
        for span in _trace(v1, day, question, risky)
    ]
    spans = [span for request in [*this_week, *last_week] for span in request]
    _write_traces(setup.config, [*spans, *shadow])
    run = setup.judge(v1, kind="production", sample=5)
    assert run.kind == "production" and run.rows == 5 and run.passed is None
    assert run.guardrail_rate == pytest.approx(0.3) and run.guardrail_previous == 0.1
    assert run.previous_rows == 10
    judged = {request[0].request_id for request in this_week if len(request) == 2}
    assert {item.id for item in run.items} <= judged
    for item in run.items:  # against the gold reference of the same question
        assert item.verdict.score == (5.0 if item.answer == good else 1.0)
    guard = next(s for s in _signals(setup, v1) if s.name == "llm:guardrail")
    assert guard.value == pytest.approx(2.0) and guard.level == "pause"  # +200 % w/w
    everything = setup.judge(v1, kind="production", sample=50)
    assert everything.rows == 9  # every answer but the cache hit
    risky_items = [i for i in everything.items if i.answer == risky]
    assert len(risky_items) == 3 and all(i.verdict.score == 1.0 for i in risky_items)
    with pytest.raises(EvaluationError, match="answered no live requests"):
        setup.judge(register_version(setup.config, WORSE), kind="production")


def test_the_signals_compare_a_candidate_with_the_champions_gold_score(setup: Setup) -> None:
    """Stand-in provider: v2 falls far below v1 on the gold set."""
    v1, v2 = register_version(setup.config, GOOD), register_version(setup.config, WORSE)
    setup.judge(v1)
    setup.judge(v2)
    before = {s.name: s for s in _signals(setup, v2)}
    assert before["llm:judge"].level == "unknown"  # no champion, no baseline yet
    found = {s.name: s for s in _signals(setup, v2, champion=v1)}
    assert found["llm:judge"].level == "pause" and found["llm:judge"].value > 0.7
    assert found["llm:hallucination"].level == "pause"
    assert found["llm:hallucination"].value == pytest.approx(1.0)
    assert found["llm:guardrail"].level == "unknown"  # no production run
    assert found["llm:judge"].evidence["baseline_version"] == v1
    own = {s.name: s for s in _signals(setup, v1, champion=v1)}
    assert own["llm:judge"].level == "unknown"  # one run of the champion: nothing to compare


@pytest.mark.parametrize(
    ("value", "level"),
    [(None, "unknown"), (-1.0, "ok"), (0.19, "ok"), (0.2, "inspect"), (0.4, "retrain"),
     (0.69, "retrain"), (0.7, "pause"), (3.0, "pause")],
)  # fmt: skip
def test_band_levels(value: float | None, level: str) -> None:
    assert classify(value, (0.2, 0.4, 0.7)) == level


def test_a_classical_project_gets_a_clear_refusal(tmp_path: Path) -> None:
    from tests.support import copy_example
    from tests.support.projects import load

    config = load(copy_example(tmp_path / "churn"))
    with pytest.raises(EvaluationError, match="is not an LLM model"):
        evaluate_llm(project_of(config), ModelRef("churn", "1"), chat=lambda *a: "")
