"""The LLM section's charts: tokens, cost per tenant and cache savings, cache hit and
wrong-hit rates, judge scores, κ, guardrail and hallucination rates against their bands.

Each chart is a :class:`~shipyard.ui.views.Chart` of one of :data:`LLM_PANELS`, drawn by
``static/dashboard.js`` like every other chart of the model page; the prompt history and
the model's audited events are its annotations. The panels read the trace log and the
judge runs (the web UI only: they have no Prometheus targets, so the Grafana export
leaves them out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from shipyard.ui.data.buckets import Grid
from shipyard.ui.data.llm_evals import EvalPoint, Signal
from shipyard.ui.data.llm_traces import TraceStats, Usage
from shipyard.ui.panels import Panel
from shipyard.ui.views import Annotation, Chart, Series

__all__ = [
    "LLM_PANELS",
    "WrongHits",
    "cache_chart",
    "cost_chart",
    "eval_chart",
    "kappa_chart",
    "llm_panel",
    "tokens_chart",
]


def _panel(id_: str, title: str, unit: str, description: str) -> Panel:
    return Panel(id_, title, "model", "timeseries", unit, description)


LLM_PANELS: tuple[Panel, ...] = (
    _panel(
        "llm_tokens",
        "Tokens",
        "none",
        "Prompt, completion and cached prompt tokens per bucket, from the trace log.",
    ),
    _panel(
        "llm_cost",
        "LLM cost per tenant and cache savings",
        "currencyUSD",
        "What the provider calls cost per bucket, per tenant (provider-reported or priced "
        "when made), and what the cache's hits avoided.",
    ),
    _panel(
        "llm_cache",
        "Cache hit and wrong-hit rates",
        "percentunit",
        "Share of cache lookups answered by the exact and the semantic layer, and the share "
        "of hits that were wrong answers.",
    ),
    _panel(
        "llm_judge",
        "Judge score against its bands",
        "none",
        "Mean judge score (1–5) of each judge run, per version, with the inspect, retrain and "
        "pause bands below the champion's score.",
    ),
    _panel(
        "llm_kappa",
        "Judge agreement with humans (Cohen's κ)",
        "none",
        "The judge's κ against the human labels of the gold set's calibration slice; a fall "
        "below the drift line is judge drift.",
    ),
    _panel(
        "llm_guardrails",
        "Guardrail hit rate against its bands",
        "percentunit",
        "Share of completions a guardrail matched, per judge run and version, with the bands "
        "above the champion's rate.",
    ),
    _panel(
        "llm_hallucinations",
        "Hallucination rate against its bands",
        "percentunit",
        "Share of completions the judge flagged as hallucinated, per judge run and version, "
        "with the bands above the champion's rate.",
    ),
)
"""The LLM section's panels, in the order the page shows them."""

_BANDS = ("inspect", "retrain", "pause")


def llm_panel(panel_id: str) -> Panel:
    """The LLM panel with this id."""
    return next(panel for panel in LLM_PANELS if panel.id == panel_id)


@dataclass(frozen=True)
class WrongHits:
    """The wrong-hit rate the page shows, and where it comes from (a judge's verdicts on
    cache hits, or the cache benchmark on the shipped paraphrase set)."""

    rate: float | None
    source: str
    hits: int = 0


def _bucketed(
    grid: Grid, stats: TraceStats, value: Callable[[Usage], float | None], empty: float | None
) -> list[float | None]:
    return [value(stats.buckets[i]) if i in stats.buckets else empty for i in range(grid.count)]


def tokens_chart(grid: Grid, stats: TraceStats, notes: list[Annotation]) -> Chart:
    """Prompt, completion and cached tokens per bucket."""
    x = grid.labels()
    series = [
        Series("prompt", x, _bucketed(grid, stats, lambda u: float(u.prompt_tokens), 0.0)),
        Series("completion", x, _bucketed(grid, stats, lambda u: float(u.completion_tokens), 0.0)),
        Series(
            "cached prompt",
            x,
            _bucketed(grid, stats, lambda u: float(u.cached_tokens), 0.0),
            dash=True,
        ),
    ]
    total = stats.total
    note = (
        f"{total.tokens:,} tokens in {total.requests:,} calls ({total.prompt_tokens:,} prompt, "
        f"{total.completion_tokens:,} completion, {total.cached_tokens:,} cached)."
    )
    return Chart(llm_panel("llm_tokens"), series=series, annotations=notes, note=note)


def cost_chart(grid: Grid, stats: TraceStats, notes: list[Annotation]) -> Chart:
    """Cost per bucket per tenant, and what the cache saved per bucket (dashed)."""
    panel = llm_panel("llm_cost")
    currency = stats.currency or "USD"
    if currency != "USD":  # dashboard.js formats dollars only; other currencies as numbers
        panel = replace(panel, unit="none")
    x = grid.labels()
    series = []
    for tenant in sorted(stats.tenants):
        values = [
            stats.tenant_buckets[(tenant, i)].cost if (tenant, i) in stats.tenant_buckets else None
            for i in range(grid.count)
        ]
        series.append(Series(f"tenant {tenant}", x, list(values)))
    series.append(
        Series("saved by the cache", x, _bucketed(grid, stats, lambda u: u.saved, None), dash=True)
    )
    total = stats.total
    note = (
        f"In {currency}: {total.cost:.4f} spent, {total.saved:.4f} saved by "
        f"{total.hits:,} cache hits"
    )
    if total.cost + total.saved > 0:
        note += f" ({total.saved / (total.cost + total.saved):.0%} of what the calls would cost)"
    if stats.shadow_requests:
        note += f"; {stats.shadow_requests:,} shadow calls included"
    return Chart(panel, series=series, annotations=notes, note=note + ".")


def cache_chart(
    grid: Grid, stats: TraceStats, wrong: WrongHits, notes: list[Annotation], edges: list[str]
) -> Chart:
    """Exact and semantic hit rates per bucket (of lookups), and the wrong-hit rate."""
    x = grid.labels()

    def share(count: Callable[[Usage], int]) -> Callable[[Usage], float | None]:
        return lambda u: count(u) / u.lookups if u.lookups else None

    series = [
        Series("exact hits", x, _bucketed(grid, stats, share(lambda u: u.exact_hits), None)),
        Series("semantic hits", x, _bucketed(grid, stats, share(lambda u: u.semantic_hits), None)),
    ]
    if wrong.rate is not None:
        series.append(Series("wrong hits (share of hits)", edges, [wrong.rate] * 2, dash=True))
    total = stats.total
    rate = "no lookup" if total.hit_rate is None else f"{total.hit_rate:.1%} hit rate"
    measured = "" if wrong.rate is None else f"{wrong.rate:.2%}, from "
    note = (
        f"{rate} over {total.lookups:,} lookups ({total.exact_hits:,} exact, "
        f"{total.semantic_hits:,} semantic). Wrong hits: {measured}{wrong.source}."
    )
    return Chart(llm_panel("llm_cache"), series=series, annotations=notes, note=note)


def eval_chart(
    panel_id: str,
    field: str,
    points: Sequence[EvalPoint],
    signals: Sequence[Signal],
    champion: str | None,
    notes: list[Annotation],
    edges: list[str],
) -> Chart:
    """One judge-run field (score, guardrail or hallucination rate) per version and kind,
    with its bands around the champion's latest gold value."""
    series = _per_version(points, field, champion)
    name = _SIGNAL[field]
    base = next((s for s in signals if s.signal == name and s.baseline is not None), None)
    note = "No judge run in this range." if not series else None
    if base is not None and base.baseline is not None:
        for band, width in zip(_BANDS, base.bands, strict=True):
            line = _band(field, base.baseline, width)
            if line is not None:
                series.append(Series(f"{band} band", edges, [line, line], dash=True))
        flagged = [s for s in signals if s.signal == name and s.level not in ("ok", "unknown")]
        note = f"Baseline {base.baseline:.3g} ({_BASELINE[field]})." + "".join(
            f" Version {s.version} at {s.level}." for s in flagged
        )
    return Chart(llm_panel(panel_id), series=series, annotations=notes, note=note)


_SIGNAL = {
    "score": "llm:judge",
    "guardrail_rate": "llm:guardrail",
    "hallucination_rate": "llm:hallucination",
}
_BASELINE = {
    "score": "the champion's gold run",
    "guardrail_rate": "the week before",
    "hallucination_rate": "the champion's gold run",
}


def _band(field: str, baseline: float, width: float) -> float | None:
    if field == "score":
        return baseline - width
    if field == "guardrail_rate":
        return baseline * (1.0 + width) if baseline > 0 else None
    return baseline + width


def kappa_chart(
    points: Sequence[EvalPoint],
    signals: Sequence[Signal],
    champion: str | None,
    notes: list[Annotation],
    edges: list[str],
) -> Chart:
    """κ on the calibration slice per gold run, and the judge-drift line."""
    gold = [p for p in points if p.kind == "gold"]
    series = _per_version(gold, "kappa", champion)
    drift = next((s for s in signals if s.signal == "llm:kappa" and s.baseline is not None), None)
    note = "No judge run with human labels in this range." if not series else None
    if drift is not None and drift.baseline is not None:
        line = drift.baseline - drift.bands[0]
        series.append(Series("judge drift", edges, [line, line], dash=True))
        latest = "—" if drift.value is None else f"{drift.value:.2f}"
        note = f"First κ {drift.baseline:.2f}, latest {latest}: " + (
            "judge drift." if drift.level == "inspect" else "no judge drift."
        )
    return Chart(llm_panel("llm_kappa"), series=series, annotations=notes, note=note)


def _per_version(points: Sequence[EvalPoint], field: str, champion: str | None) -> list[Series]:
    groups: dict[tuple[str, str], list[EvalPoint]] = {}
    for point in points:
        if getattr(point, field) is not None:
            groups.setdefault((point.version, point.kind), []).append(point)
    series = []
    for (version, kind), found in sorted(groups.items(), key=lambda g: (_num(g[0][0]), g[0])):
        arm = "champion" if version == champion else "challenger"
        series.append(
            Series(
                f"{version} {kind}",
                [_iso(p.at) for p in found],
                [float(getattr(p, field)) for p in found],
                arm=arm,
                dash=kind != "gold",
            )
        )
    return series


def _num(version: str) -> int:
    return int(version) if version.isdigit() else 1 << 30


def _iso(moment: datetime) -> str:
    return moment.isoformat()
