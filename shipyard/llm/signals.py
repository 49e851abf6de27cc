"""The three LLM signals against their bands, and judge drift, from the stored judge runs.

==================  =========================================  ======================
signal              value                                      bands (``llm.bands``)
==================  =========================================  ======================
``llm:judge``       gold baseline score - this version's score ``judge_drop``
``llm:guardrail``   relative rise of the guardrail hit rate,   ``guardrail_rise``
                    this week over the week before
``llm:hallucination`` hallucination rate - the baseline's       ``hallucination_rise``
``llm:kappa``       the judge's first kappa on this gold set   ``kappa_drop`` (inspect)
                    - its kappa now (judge drift)
==================  =========================================  ======================

The gold *baseline* is the champion's gold run on the same gold set. For the champion
itself it is the previous champion's run (the version a rollback would go back to), or
else the champion's own first run on this gold set: a silent provider-side change to
the model shows up as a fall from what it scored when it was promoted. A previous week
without a single guardrail hit counts as one hit in its answers (a rise from nothing is
measured, not infinite). A signal without the runs it needs is ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.jsonable import Record
from shipyard.levels import Level
from shipyard.llm.evals_store import LlmEvaluation, latest_run, list_runs

if TYPE_CHECKING:
    from shipyard.config.llm import LlmBands
    from shipyard.store import Store

__all__ = ["LlmSignal", "classify", "llm_signals"]


@dataclass(frozen=True)
class LlmSignal(Record):
    """One LLM signal of one version: its value, its bands and the level it reaches."""

    model: str
    version: str
    name: str
    value: float | None
    bands: tuple[float, float, float]
    level: Level
    evidence: dict[str, Any] = field(default_factory=dict)


def classify(value: float | None, bands: tuple[float, float, float]) -> Level:
    """``unknown`` without a value, else the most severe band the value reaches, or ``ok``."""
    if value is None:
        return "unknown"
    inspect, retrain, pause = bands
    if value >= pause:
        return "pause"
    if value >= retrain:
        return "retrain"
    if value >= inspect:
        return "inspect"
    return "ok"


def llm_signals(
    store: Store,
    bands: LlmBands,
    model: str,
    version: str,
    *,
    champion: str | None,
    previous_champion: str | None = None,
) -> list[LlmSignal]:
    """The version's LLM signals from its newest gold and production runs."""
    run = latest_run(store, model, version, "gold")
    baseline = _baseline(store, model, version, run, champion, previous_champion)
    signals = []
    evidence: dict[str, Any] = {
        "run": run.id if run else None,
        "gold_digest": run.gold_digest if run else None,
        "baseline_version": baseline.version if baseline else None,
        "baseline_run": baseline.id if baseline else None,
    }
    drop = None
    if run and baseline and run.score is not None and baseline.score is not None:
        drop = baseline.score - run.score
    signals.append(
        LlmSignal(
            model,
            version,
            "llm:judge",
            drop,
            bands.judge_drop,
            classify(drop, bands.judge_drop),
            {
                **evidence,
                "score": run.score if run else None,
                "baseline": baseline.score if baseline else None,
            },
        )
    )
    rise = None
    if (
        run
        and baseline
        and run.hallucination_rate is not None
        and baseline.hallucination_rate is not None
    ):
        rise = run.hallucination_rate - baseline.hallucination_rate
    signals.append(
        LlmSignal(
            model,
            version,
            "llm:hallucination",
            rise,
            bands.hallucination_rise,
            classify(rise, bands.hallucination_rise),
            {
                **evidence,
                "rate": run.hallucination_rate if run else None,
                "baseline": baseline.hallucination_rate if baseline else None,
            },
        )
    )
    signals.append(_guardrail(store, bands, model, version))
    kappa_drop = None
    if run and run.kappa is not None and run.kappa_baseline is not None:
        kappa_drop = run.kappa_baseline - run.kappa
    kappa_bands = (bands.kappa_drop, max(bands.kappa_drop, 2.0), max(bands.kappa_drop, 2.0))
    level: Level = (
        "unknown" if kappa_drop is None else ("inspect" if kappa_drop > bands.kappa_drop else "ok")
    )
    signals.append(
        LlmSignal(
            model,
            version,
            "llm:kappa",
            kappa_drop,
            kappa_bands,
            level,
            {
                **evidence,
                "kappa": run.kappa if run else None,
                "baseline": run.kappa_baseline if run else None,
                "interval": [run.agreement.low, run.agreement.high]
                if run and run.agreement
                else None,
            },
        )
    )
    return signals


def _baseline(
    store: Store,
    model: str,
    version: str,
    run: LlmEvaluation | None,
    champion: str | None,
    previous_champion: str | None,
) -> LlmEvaluation | None:
    if run is None or run.gold_digest is None:
        return None
    digest = run.gold_digest
    if champion is not None and champion != version:
        return latest_run(store, model, champion, "gold", digest)
    if previous_champion is not None and previous_champion != version:
        found = latest_run(store, model, previous_champion, "gold", digest)
        if found is not None:
            return found
    first = list_runs(
        store, model, version=version, kind="gold", digest=digest, oldest_first=True, limit=1
    )
    return first[0] if first and first[0].id != run.id else None


def _guardrail(store: Store, bands: LlmBands, model: str, version: str) -> LlmSignal:
    run = latest_run(store, model, version, "production")
    rise = None
    evidence: dict[str, Any] = {"run": run.id if run else None}
    if run is not None and run.guardrail_rate is not None and run.guardrail_previous is not None:
        previous = run.guardrail_previous
        if previous == 0 and run.previous_rows:
            previous = 1 / run.previous_rows  # no hit last week: count it as one
        rise = 0.0 if previous == 0 else (run.guardrail_rate - previous) / previous
        evidence.update(
            rate=run.guardrail_rate,
            previous=run.guardrail_previous,
            previous_rows=run.previous_rows,
        )
    return LlmSignal(
        model,
        version,
        "llm:guardrail",
        rise,
        bands.guardrail_rise,
        classify(rise, bands.guardrail_rise),
        evidence,
    )
