"""The model page's LLM section: what an LLM model's calls cost, how its cache and its judge
runs do, and its prompt history.

    view = llm_view(project, "assistant", window)   # None for a model that is no LLM
    view.charts          # tokens, cost, cache, judge score, κ, guardrails, hallucinations
    view.tenants         # per tenant: calls, tokens, cost, cache hits, saved
    view.prompts         # the same per prompt version
    view.signals         # each version's LLM signals against their bands

Calls come from the trace log (:mod:`~shipyard.ui.data.llm_traces`), judge runs and the
prompt history from the store (:mod:`~shipyard.ui.data.llm_evals`). A model is an LLM
model when ``shipyard.yaml`` says so (``model.task: llm``), or when it has traces or judge
runs. Without a range asked for, the section fits its axis to its own data (a two-minute
demo is not squeezed against the edge of a day), as the rest of the page does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from shipyard.errors import ShipyardError
from shipyard.jsonable import Record
from shipyard.logs.root import project_log_root
from shipyard.moments import as_utc
from shipyard.store.tables import LlmEvalRow
from shipyard.ui.data import control
from shipyard.ui.data.annotations import annotations_of, event_dict
from shipyard.ui.data.buckets import grid_for
from shipyard.ui.data.context import ChartContext
from shipyard.ui.data.extent import MARGIN, MIN_MARGIN
from shipyard.ui.data.llm_charts import (
    WrongHits,
    cache_chart,
    cost_chart,
    eval_chart,
    kappa_chart,
    tokens_chart,
)
from shipyard.ui.data.llm_evals import (
    EvalPoint,
    eval_points,
    prompt_annotations,
    prompt_events,
    prompt_text,
    signals,
)
from shipyard.ui.data.llm_traces import TraceStats, Usage, trace_stats
from shipyard.ui.data.ranges import TimeRange
from shipyard.ui.views import Chart

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = [
    "BENCHMARK_THRESHOLD",
    "BENCHMARK_WRONG_HITS",
    "LlmView",
    "is_llm_model",
    "llm_view",
    "wrong_hits",
]

FIT_RATIO = 4
_EVENT_KINDS = (*control.ANNOTATED_KINDS, "llm.breach")

BENCHMARK_THRESHOLD = 0.72
BENCHMARK_WRONG_HITS = WrongHits(
    0.0,
    "the cache benchmark's rate, not this model's traffic (benchmarks/llm_cache.py on the "
    "shipped paraphrase set, held-out half, WordLlama at 0.72: 0 of 41 hits wrong on "
    "near-misses in amounts, places, drugs, dates, names, numbers and negations; 26.8 % of "
    "hits wrong when same-words intent near-misses count)",
)
"""What the cache chart shows when no judge run sampled a cache hit (labelled as such)."""


@dataclass(frozen=True)
class LlmView(Record):
    """The LLM section of one model's page over a range."""

    model: str
    since: datetime
    until: datetime
    currency: str
    totals: dict[str, Any]
    tenants: list[dict[str, Any]]
    prompts: list[dict[str, Any]]
    cache: dict[str, Any]
    signals: list[dict[str, Any]]
    evals: list[dict[str, Any]]
    prompt_history: list[dict[str, Any]]
    charts: list[Chart]
    x_range: list[str] = field(default_factory=list)


def is_llm_model(project: Project, model: str) -> bool:
    """Whether ``model`` is an LLM: so declared, or with a trace log or judge runs."""
    config = project.config
    if config.model.task == "llm" and config.model.name == model:
        return True
    from pathlib import Path

    from shipyard.logs.kinds import model_dir

    root = project_log_root(config)
    if isinstance(root, Path) and model_dir(root, "traces", model).is_dir():
        return True
    with project.store.session() as session:
        found = session.scalar(
            select(func.count()).select_from(LlmEvalRow).where(LlmEvalRow.model == model)
        )
    return bool(found)


def llm_view(
    project: Project, model: str, window: TimeRange, *, explicit: bool = False
) -> LlmView | None:
    """The LLM section of ``model``'s page over ``window`` (None when it is no LLM model);
    fitted to its own data's extent unless ``explicit``."""
    if not is_llm_model(project, model):
        return None
    view, moments = _view(project, model, window)
    if explicit:
        return view
    since, until = _extent(moments, window)
    if (until - since) * FIT_RATIO < window.until - window.since:
        return _view(project, model, TimeRange(since, until, window.label))[0]
    return view


def _view(project: Project, model: str, window: TimeRange) -> tuple[LlmView, list[datetime]]:
    """The section over ``window``, and the moments it shows (calls, judge runs, events)."""
    store = project.store
    grid = grid_for(window)
    unreadable: str | None = None
    try:
        stats = trace_stats(project_log_root(project.config), model, grid)
    except ShipyardError as exc:  # the trace charts say so; judge runs still show
        stats, unreadable = TraceStats(Usage(), {}, {}, {}), f"Trace log: {exc.message}"
    points = eval_points(store, model, window.since, window.until)
    ctx = ChartContext(project, model, window)
    champion = control.current_alias(store, model, "champion") or ctx.champion_at(window.until)
    versions = {p.version for p in points}
    found = signals(store, project.config.llm.bands, model, versions, ctx.moves)
    tenants = [] if unreadable else _cost_table(project, model, window, "tenant")
    prompts = [] if unreadable else _cost_table(project, model, window, "prompt")
    names = {str(row["prompt"]) for row in prompts}
    history = prompt_events(store, _prompt_names(project, model, names), None, None)
    events = control.model_events(store, model, window.since, window.until, _EVENT_KINDS)
    shown = [e for e in history if window.since <= e.at.astimezone(window.since.tzinfo)]
    notes = sorted(
        [*annotations_of(events, ctx.arm_of), *prompt_annotations(shown)],
        key=lambda note: note.time,
    )
    notes = [n for n in notes if n.time < window.until.isoformat()]
    edges = [window.since.isoformat(), window.until.isoformat()]
    wrong = wrong_hits(project)
    charts = [
        *(
            replace(chart, error=unreadable) if unreadable else chart
            for chart in (
                tokens_chart(grid, stats, notes),
                cost_chart(grid, stats, notes),
                cache_chart(grid, stats, wrong, notes, edges),
            )
        ),
        eval_chart("llm_judge", "score", points, found, champion, notes, edges),
        kappa_chart(points, found, champion, notes, edges),
        eval_chart("llm_guardrails", "guardrail_rate", points, found, champion, notes, edges),
        eval_chart(
            "llm_hallucinations", "hallucination_rate", points, found, champion, notes, edges
        ),
    ]
    total = stats.total
    moments = [p.at for p in points] + [datetime.fromisoformat(n.time) for n in notes]
    moments += [as_utc(m) for m in (stats.first, stats.last) if m is not None]
    view = LlmView(
        model=model,
        since=window.since,
        until=window.until,
        currency=stats.currency or project.config.llm.currency,
        totals={**total.row(), "tokens": total.tokens, "errors": total.errors},
        tenants=tenants,
        prompts=prompts,
        cache={
            "lookups": total.lookups,
            "exact_hits": total.exact_hits,
            "semantic_hits": total.semantic_hits,
            "hit_rate": total.hit_rate,
            "saved": round(total.saved, 6),
            "wrong_hit_rate": wrong.rate,
            "wrong_hits_source": wrong.source,
        },
        signals=[s.to_dict() for s in found],
        evals=[_eval_row(p) for p in reversed(points[-20:])],
        prompt_history=[
            {**event_dict(e), "summary": prompt_text(e)} for e in reversed(history[-50:])
        ],
        charts=charts,
        x_range=edges,
    )
    return view, moments


def _cost_table(project: Project, model: str, window: TimeRange, by: str) -> list[dict[str, Any]]:
    """Calls, tokens, cost, cache hits and savings per ``by`` (H3's :func:`cost_rows`)."""
    from shipyard.llm.costs import cost_rows

    rows = cost_rows(
        project_log_root(project.config), [model], since=window.since, until=window.until,
        by=(by,),
    )  # fmt: skip
    return [
        {
            by: getattr(row, by) or "(none)",
            "requests": row.requests,
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
            "cached_tokens": row.cached_tokens,
            "cost": round(row.cost, 6),
            "currency": row.currency,
            "cache_hits": row.cache_hits,
            "hit_rate": None if row.hit_rate is None else round(row.hit_rate, 4),
            "saved": round(row.saved, 6),
        }
        for row in rows
    ]


def _prompt_names(project: Project, model: str, prompts: set[str]) -> set[str]:
    """The prompts ``model`` answers with: the configured one, and those its traces name."""
    names = {ref.split("/", 1)[0].split("@", 1)[0] for ref in prompts if ref != "(none)"}
    config = project.config
    if config.model.name == model and config.llm.prompt:
        names.add(config.llm.prompt)
    return names


def wrong_hits(project: Project) -> WrongHits:
    """The wrong-hit rate the page can show: the cache benchmark's, labelled as such.

    No judge run checks cache hits (a production run judges the provider's answers only),
    so this model's own wrong-hit rate is not measured; the benchmark's rate applies to
    the default embedder and threshold, and is not shown for others."""
    cache = project.config.llm.cache
    if cache.embedder == "wordllama" and cache.threshold == BENCHMARK_THRESHOLD:
        return BENCHMARK_WRONG_HITS
    return WrongHits(
        None,
        "not measured: no judge run checks cache hits, and the cache benchmark's rate is for "
        f"WordLlama at {BENCHMARK_THRESHOLD:g} (this model: {cache.embedder} at "
        f"{cache.threshold:g})",
    )


def _eval_row(point: EvalPoint) -> dict[str, Any]:
    return {
        "at": point.at.isoformat(),
        "version": point.version,
        "kind": point.kind,
        "rows": point.rows,
        "score": point.score,
        "kappa": point.kappa,
        "guardrail_rate": point.guardrail_rate,
        "hallucination_rate": point.hallucination_rate,
        "judge": point.judge,
    }


def _extent(moments: list[datetime], window: TimeRange) -> tuple[datetime, datetime]:
    """The earliest to the latest call, judge run or event in ``window``, with a margin."""
    inside = [m for m in moments if window.since <= m < window.until]
    if not inside:
        return window.since, window.until
    first, last = min(inside), max(inside)
    margin = max((last - first) * MARGIN, MIN_MARGIN)
    return max(window.since, first - margin), min(window.until, last + margin)
