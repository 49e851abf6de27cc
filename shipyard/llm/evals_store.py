"""Judge runs as stored: the :class:`LlmEvaluation` record, writing it, reading it back.

A run is one ``shipyard_llm_evals`` row (its whole result in ``result``); a gold run is
also a judge scorecard, a ``shipyard_evaluations`` row on the gold digest (what
promotion reads), both with the ``llm.evaluated`` event in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from shipyard.jsonable import Record, plain
from shipyard.llm.agreement import Agreement
from shipyard.llm.judges import Verdict
from shipyard.moments import as_utc
from shipyard.store import EvaluationRow, EventKind, LlmEvalRow

if TYPE_CHECKING:
    from shipyard.project import Project
    from shipyard.store import Store

__all__ = [
    "ItemResult",
    "LlmEvaluation",
    "baseline_kappa",
    "gold_run",
    "latest_run",
    "list_runs",
    "store_run",
    "summarise",
]

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class ItemResult(Record):
    """One judged answer: the item (gold id or request id), the answer, the verdict."""

    id: str
    answer: str
    verdict: Verdict
    guardrail_hits: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LlmEvaluation(Record):
    """One stored judge run and what it found.

    ``passed`` is the judge scorecard's verdict (gold runs only). ``judge_drift`` is
    true when the kappa fell more than ``llm.bands.kappa_drop`` below
    ``kappa_baseline``, the first kappa this judge had on this gold set.
    ``guardrail_previous`` is the guardrail hit rate of the week before (production
    runs), over ``previous_rows`` answers.
    """

    id: int
    model: str
    version: str
    kind: Literal["gold", "production"]
    gold_digest: str | None
    judge: str
    rows: int
    failures: int
    score: float | None
    criteria: dict[str, float]
    guardrail_rate: float | None
    hallucination_rate: float | None
    agreement: Agreement | None
    champion_version: str | None
    champion_score: float | None
    passed: bool | None
    kappa_baseline: float | None
    judge_drift: bool
    guardrail_previous: float | None
    previous_rows: int
    items: list[ItemResult]
    created_at: datetime

    @property
    def kappa(self) -> float | None:
        """The judge's Cohen's kappa on the calibration slice (None without one)."""
        return self.agreement.kappa if self.agreement else None


def store_run(
    project: Project,
    *,
    name: str,
    version: str,
    kind: Literal["gold", "production"],
    digest: str | None,
    judge: str,
    items: list[ItemResult],
    summary: dict[str, Any],
    agreement: Agreement | None,
    champion: tuple[str | None, float | None],
    passed: bool | None,
    kappa: tuple[float | None, bool],
    guardrail_previous: tuple[float | None, int],
    scorecard: dict[str, Any] | None,
    at: datetime,
) -> LlmEvaluation:
    """Store one run (and, for gold, its scorecard) with the ``llm.evaluated`` event."""
    store = project.store
    run = LlmEvaluation(
        id=0,
        model=name,
        version=version,
        kind=kind,
        gold_digest=digest,
        judge=judge,
        rows=summary["rows"],
        failures=summary["failures"],
        score=summary["score"],
        criteria=summary["criteria"],
        guardrail_rate=summary["guardrail_rate"],
        hallucination_rate=summary["hallucination_rate"],
        agreement=agreement,
        champion_version=champion[0],
        champion_score=champion[1],
        passed=passed,
        kappa_baseline=kappa[0],
        judge_drift=kappa[1],
        guardrail_previous=guardrail_previous[0],
        previous_rows=guardrail_previous[1],
        items=items,
        created_at=as_utc(at),
    )
    result = plain(run.to_dict())
    with store.session() as session:
        row = LlmEvalRow(
            model=name,
            version=version,
            kind=kind,
            gold_digest=digest,
            judge=judge,
            rows=run.rows,
            score=run.score,
            guardrail_rate=run.guardrail_rate,
            hallucination_rate=run.hallucination_rate,
            kappa=run.kappa,
            result=result,
            actor=store.actor,
            created_at=run.created_at,
        )
        session.add(row)
        if scorecard is not None and digest is not None:
            session.add(
                EvaluationRow(
                    model=name,
                    version=version,
                    golden_digest=digest,
                    champion_version=run.champion_version,
                    passed=bool(passed),
                    result={
                        "kind": "llm-judge",
                        "judge": judge,
                        "score": run.score,
                        "champion_score": run.champion_score,
                        "kappa": run.kappa,
                        **plain(scorecard),
                    },
                    report_path=None,
                    actor=store.actor,
                    created_at=run.created_at,
                )
            )
        session.flush()
        store.record(
            EventKind.LLM_EVALUATED,
            f"model:{name}/{version}",
            {
                "run": row.id,
                "kind": kind,
                "gold_digest": digest,
                "judge": judge,
                "rows": run.rows,
                "failures": run.failures,
                "score": run.score,
                "guardrail_rate": run.guardrail_rate,
                "hallucination_rate": run.hallucination_rate,
                "kappa": run.kappa,
                "judge_drift": run.judge_drift,
                "passed": passed,
                "champion_version": run.champion_version,
            },
            session=session,
        )
        run_id = row.id
    return _with_id(run, run_id)


def _with_id(run: LlmEvaluation, run_id: int) -> LlmEvaluation:
    from dataclasses import replace

    return replace(run, id=run_id)


def _from_row(row: LlmEvalRow) -> LlmEvaluation:
    data = dict(row.result)
    found = data.get("agreement")
    items = [
        ItemResult(
            id=i["id"],
            answer=i["answer"],
            verdict=Verdict(**i["verdict"]),
            guardrail_hits=list(i.get("guardrail_hits") or []),
        )
        for i in data.get("items") or []
    ]
    return LlmEvaluation(
        id=row.id,
        model=row.model,
        version=row.version,
        kind=row.kind,  # type: ignore[arg-type]
        gold_digest=row.gold_digest,
        judge=row.judge,
        rows=row.rows,
        failures=int(data.get("failures") or 0),
        score=row.score,
        criteria=dict(data.get("criteria") or {}),
        guardrail_rate=row.guardrail_rate,
        hallucination_rate=row.hallucination_rate,
        agreement=Agreement(**found) if found else None,
        champion_version=data.get("champion_version"),
        champion_score=data.get("champion_score"),
        passed=data.get("passed"),
        kappa_baseline=data.get("kappa_baseline"),
        judge_drift=bool(data.get("judge_drift")),
        guardrail_previous=data.get("guardrail_previous"),
        previous_rows=int(data.get("previous_rows") or 0),
        items=items,
        created_at=as_utc(row.created_at),
    )


def list_runs(
    store: Store,
    model: str,
    *,
    version: str | None = None,
    kind: str | None = None,
    digest: str | None = None,
    oldest_first: bool = False,
    limit: int | None = None,
) -> list[LlmEvaluation]:
    """Stored runs of ``model`` (newest first), filtered by version, kind and gold digest."""
    query = select(LlmEvalRow).where(LlmEvalRow.model == model)
    if version is not None:
        query = query.where(LlmEvalRow.version == version)
    if kind is not None:
        query = query.where(LlmEvalRow.kind == kind)
    if digest is not None:
        query = query.where(LlmEvalRow.gold_digest == digest)
    order = LlmEvalRow.id.asc() if oldest_first else LlmEvalRow.id.desc()
    query = query.order_by(order)
    if limit is not None:
        query = query.limit(limit)
    with store.session() as session:
        return [_from_row(row) for row in session.scalars(query)]


def latest_run(
    store: Store, model: str, version: str, kind: str, digest: str | None = None
) -> LlmEvaluation | None:
    """The newest run of ``model/version`` of ``kind`` (on ``digest`` if given)."""
    found = list_runs(store, model, version=version, kind=kind, digest=digest, limit=1)
    return found[0] if found else None


def gold_run(store: Store, model: str, version: str, digest: str) -> LlmEvaluation | None:
    """The newest gold run of ``model/version`` on the gold set ``digest``."""
    return latest_run(store, model, version, "gold", digest)


def baseline_kappa(
    store: Store, model: str, digest: str, judge: str, version: str | None = None
) -> float | None:
    """The first kappa ``judge`` had on the gold set ``digest``: of any version (a fixed
    calibration slice), or of ``version`` (labels on each version's own answers); or None."""
    query = (
        select(LlmEvalRow.kappa)
        .where(
            LlmEvalRow.model == model,
            LlmEvalRow.gold_digest == digest,
            LlmEvalRow.judge == judge,
            LlmEvalRow.kind == "gold",
            LlmEvalRow.kappa.is_not(None),
        )
        .order_by(LlmEvalRow.id.asc())
        .limit(1)
    )
    if version is not None:
        query = query.where(LlmEvalRow.version == version)
    with store.session() as session:
        return session.scalar(query)


def summarise(items: list[ItemResult]) -> dict[str, Any]:
    """Means over the items the judge could score: overall, per criterion, rates."""
    ok = [r for r in items if r.verdict.ok]
    criteria: dict[str, list[int]] = {}
    for result in ok:
        for criterion, value in result.verdict.scores.items():
            criteria.setdefault(criterion, []).append(value)
    scores = [r.verdict.score for r in ok if r.verdict.score is not None]
    return {
        "rows": len(items),
        "failures": len(items) - len(ok),
        "score": sum(scores) / len(scores) if scores else None,
        "criteria": {c: sum(v) / len(v) for c, v in criteria.items()},
        "guardrail_rate": sum(bool(r.guardrail_hits) for r in items) / len(items)
        if items
        else None,
        "hallucination_rate": sum(r.verdict.hallucination for r in ok) / len(ok) if ok else None,
    }
