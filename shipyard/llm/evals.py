"""Judge runs: score an LLM version on the gold set or on a sample of its production answers.

    run = evaluate_llm(project, ModelRef("assistant", "2"), chat=pool.complete)
    run.score, run.passed, run.agreement.kappa

A **gold** run asks the version itself for an answer to every gold item
(``load_llm(...).bound(chat).predict(variables)``), has the judge score each against the
item's reference and facts, counts guardrail hits and hallucination flags, and scores the
calibration slice's fixed answers to report the judge's agreement with people (Cohen's
kappa, confusion matrix, bootstrap interval). The version is compared with the champion
on the same gold set (the champion is judged too when it has no run on it yet). The run
is stored as an :class:`~shipyard.store.LlmEvalRow` and as a judge *scorecard*, an
:class:`~shipyard.evaluation.evaluate.EvaluationRecord` on the gold set's digest that
promotion reads like a classical one: it passes when the mean score is at least
``llm.judge.min_score`` and no worse than the champion's beyond the inspect band.

A **production** run samples the version's answered requests of the last 7 days from the
trace log (``gateway`` spans, else ``provider.call``) and judges them against the gold
reference of the same input, or else against the request's own input (grounding). It also
counts guardrail hits over every answer of this week and of the week before, for the
week-on-week signal. Every run records ``llm.evaluated``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from shipyard.access import Scope
from shipyard.errors import EvaluationError, ShipyardError
from shipyard.llm.agreement import Agreement, agreement
from shipyard.llm.evals_store import (
    ItemResult,
    LlmEvaluation,
    baseline_kappa,
    gold_run,
    store_run,
    summarise,
)
from shipyard.llm.gold import GoldItem, GoldSet, project_gold
from shipyard.llm.judges import Guardrails, Judge, Verdict
from shipyard.registry.aliases import CHAMPION
from shipyard.registry.pointers import trusted_version
from shipyard.registry.refs import ModelRef

if TYPE_CHECKING:
    from shipyard.llm.providers import ProviderPool
    from shipyard.models.llm import ChatCall
    from shipyard.project import Project

__all__ = [
    "EvalKind",
    "ItemResult",
    "LlmEvaluation",
    "evaluate_llm",
    "pool_chat",
    "provider_pool",
]

EvalKind = Literal["gold", "production"]


def provider_pool(project: Project, environ: Mapping[str, str] | None = None) -> ProviderPool:
    """The provider pool of the project's ``llm.providers`` (keys from ``environ``, default
    the process environment); close it when done."""
    from shipyard.llm.providers import ProviderPool

    config = project.config
    return ProviderPool.of_settings(
        config.llm, os.environ if environ is None else environ, config.root
    )


def pool_chat(project: Project, environ: Mapping[str, str] | None = None) -> ChatCall:
    """The provider pool's ``complete`` for the project's ``llm.providers``."""
    return provider_pool(project, environ).complete


def evaluate_llm(
    project: Project,
    ref: ModelRef,
    *,
    kind: EvalKind = "gold",
    chat: ChatCall | None = None,
    sample: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> LlmEvaluation:
    """Judge ``ref`` on the gold set or its production sample; store and return the run.

    Needs ``models:train`` on the model (a run is stored on the version). ``chat`` is
    the provider pool's ``complete`` (default: a pool of ``llm.providers`` keyed from the
    environment); ``sample`` overrides ``llm.judge.sample``.
    """
    project.authorize(Scope.MODELS_TRAIN, ref.name)
    if kind not in ("gold", "production"):
        raise EvaluationError(f"kind must be gold or production, not {kind!r}.")
    config = project.config
    if config.model.task != "llm":
        raise EvaluationError(
            f"{ref.name} is not an LLM model (model.task is {config.model.task}).",
            hint="Judge runs are for model.task: llm; use `shipyard evaluate` otherwise.",
        )
    if chat is None:  # a pool of our own, closed when the run is done
        pool = provider_pool(project)
        try:
            return evaluate_llm(
                project, ref, kind=kind, chat=pool.complete, sample=sample, clock=clock
            )
        finally:
            pool.close()
    judge = Judge.of_settings(chat, config.llm)
    guard = Guardrails(config.llm.judge.guardrail_terms)
    name, number = _resolve(project, ref)
    if kind == "gold":
        gold, snap = project_gold(config, project.store)
        return _gold(project, name, number, judge, guard, gold, snap.digest, chat, clock)
    from shipyard.llm.evals_production import production_run

    return production_run(project, name, number, judge, guard, sample, clock)


def _resolve(project: Project, ref: ModelRef) -> tuple[str, str]:
    if ref.version:
        return ref.name, ref.version
    alias = ref.alias or CHAMPION
    version = trusted_version(project.store, ref.name, alias)
    if version is None:
        raise EvaluationError(
            f"{ref.name}@{alias} is not set.", hint="Name a version: NAME/VERSION."
        )
    return ref.name, version


def answers(
    project: Project, name: str, number: str, chat: ChatCall, gold: GoldSet
) -> list[str | Exception]:
    """The version's own answer to every gold item (an exception where its provider failed)."""
    import pandas as pd

    from shipyard.models.llm import load_llm

    predictor = load_llm(project.tracking.client, name, number).bound(chat)
    found: list[str | Exception] = []
    for item in gold.items:
        try:
            found.append(str(predictor.predict(pd.DataFrame([item.row()])).labels[0]))
        except ShipyardError as error:
            found.append(error)
    return found


def judged(
    judge: Judge,
    guard: Guardrails,
    item: GoldItem | None,
    item_id: str,
    expected: str,
    answer: str | Exception,
) -> ItemResult:
    """Judge one answer (a failed answer is a failed item)."""
    if isinstance(answer, Exception):
        message = getattr(answer, "message", str(answer))
        return ItemResult(item_id, "", Verdict(error=f"the version failed to answer: {message}"))
    criteria, guidance = (item.rubric, item.guidance) if item else ((), "")
    verdict = judge.verdict(expected, answer, criteria, guidance)
    return ItemResult(item_id, answer, verdict, guard.hits(answer))


def _gold(
    project: Project,
    name: str,
    number: str,
    judge: Judge,
    guard: Guardrails,
    gold: GoldSet,
    digest: str,
    chat: ChatCall,
    clock: Callable[[], datetime],
) -> LlmEvaluation:
    config, store = project.config, project.store
    items = [
        judged(judge, guard, item, item.id, item.expected, answer)
        for item, answer in zip(gold.items, answers(project, name, number, chat, gold), strict=True)
    ]
    calibration = _calibration(judge, gold, items, config.llm.judge.bootstrap)
    champion = trusted_version(store, name, CHAMPION)
    champion_score = None
    if champion is not None and champion != number:
        previous = gold_run(store, name, champion, digest)
        if previous is None:  # judge the champion on this gold set now
            previous = _gold(project, name, champion, judge, guard, gold, digest, chat, clock)
        champion_score = previous.score
    else:
        champion = None
    summary = summarise(items)
    score = summary["score"]
    band = config.llm.bands.judge_drop[0]
    min_score = config.llm.judge.min_score
    passed = (
        score is not None
        and score >= min_score
        and (champion_score is None or champion_score - score < band)
    )
    kappa = calibration.kappa if calibration else None
    fixed = all(item.answer is not None for item in gold.calibration)
    # A fixed slice is judged the same whatever the version: any version's first kappa is
    # the baseline. Otherwise the labels score each version's own answers: its own first.
    kappa_base = baseline_kappa(store, name, digest, judge.name, None if fixed else number)
    drift = (
        kappa is not None
        and kappa_base is not None
        and kappa_base - kappa > config.llm.bands.kappa_drop
    )
    rows = [
        {
            "name": "judge score",
            "value": score,
            "threshold": min_score,
            "passed": score is not None and score >= min_score,
        },
        {
            "name": "judge score vs champion",
            "value": score,
            "champion": champion_score,
            "band": band,
            "passed": score is not None
            and (champion_score is None or champion_score - score < band),
        },
    ]
    return store_run(
        project,
        name=name,
        version=number,
        kind="gold",
        digest=digest,
        judge=judge.name,
        items=items,
        summary=summary,
        agreement=calibration,
        champion=(champion, champion_score),
        passed=passed,
        kappa=(kappa_base, drift),
        guardrail_previous=(None, 0),
        scorecard={"rows": rows, "gold_file_sha256": gold.file_sha256, "gold_source": gold.source},
        at=clock(),
    )


def _calibration(
    judge: Judge, gold: GoldSet, items: list[ItemResult], resamples: int
) -> Agreement | None:
    """The judge's agreement with people on the calibration slice: on the scored fixed
    answer where the item gives one, else on the version's own answer."""
    human: list[int] = []
    scored: list[int] = []
    for item, result in zip(gold.items, items, strict=True):
        if item.human_score is None:
            continue
        verdict = (
            judge.verdict(item.expected, item.answer, item.rubric, item.guidance)
            if item.answer is not None
            else result.verdict
        )
        if verdict.score is None:
            continue
        human.append(item.human_score)
        scored.append(int(verdict.score + 0.5))  # half up: 3.5 -> 4
    if not human:
        return None
    return agreement(human, scored, resamples=resamples)
