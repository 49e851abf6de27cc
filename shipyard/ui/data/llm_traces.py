"""The trace log of an LLM model, summarised with DuckDB for the model page's LLM section.

Every span of a call is one row of the ``traces`` log (:mod:`shipyard.logs.traces`);
tokens and cost sit on the span that spent them, and every span carries the call's
tenant, prompt version, version and role. Spans are first summed per call (a trace), as
:mod:`shipyard.llm.costs` does: a call is a cache hit when any of its spans says so
(the gateway's span repeats its cache span's result), and counts once.

:func:`trace_stats` reads the window in one query (``GROUPING SETS``): totals, per tenant,
per time bucket, and per tenant and bucket (the tables per tenant and prompt version are
H3's :func:`shipyard.llm.costs.cost_rows`). Shadow calls cost money too and
are counted; their share is in :attr:`TraceStats.shadow_requests`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import shipyard.logs.traces  # noqa: F401  (registers the "traces" log kind)
from shipyard.jsonable import Record
from shipyard.logs.reader import query_log
from shipyard.storage.location import Location
from shipyard.ui.data.buckets import Grid
from shipyard.ui.data.log_stats import FleetStats, _instant, _micros

__all__ = ["TraceStats", "Usage", "llm_fleet_stats", "trace_stats"]

LOOKUP = "cache IN ('exact', 'semantic', 'miss')"


@dataclass(frozen=True)
class Usage(Record):
    """Calls, tokens, cost and cache results of one group of calls (a tenant, a prompt…)."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    saved: float = 0.0  # what the cache hits avoided (their usage priced as calls)
    lookups: int = 0
    exact_hits: int = 0
    semantic_hits: int = 0
    errors: int = 0

    @property
    def hits(self) -> int:
        """Calls answered from the cache (either layer)."""
        return self.exact_hits + self.semantic_hits

    @property
    def hit_rate(self) -> float | None:
        """Share of cache lookups answered from the cache (None without a lookup)."""
        return self.hits / self.lookups if self.lookups else None

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def row(self, **first: Any) -> dict[str, Any]:
        """A table row: ``first`` (the group's name), then the numbers the page shows."""
        return {
            **first,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cost": round(self.cost, 6),
            "cache_hits": self.hits,
            "hit_rate": None if self.hit_rate is None else round(self.hit_rate, 4),
            "saved": round(self.saved, 6),
        }


@dataclass(frozen=True)
class TraceStats:
    """One model's calls in a window: totals, per tenant, per bucket, per tenant and bucket."""

    total: Usage
    tenants: dict[str, Usage]
    buckets: dict[int, Usage]  # bucket index on the grid → its calls
    tenant_buckets: dict[tuple[str, int], Usage]  # (tenant, bucket) → its calls
    currency: str = ""
    shadow_requests: int = 0
    first: datetime | None = None
    last: datetime | None = None
    versions: list[str] = field(default_factory=list)


_SQL = """
WITH calls AS (
    SELECT
        trace_id,
        any_value(tenant) AS tenant,
        any_value(version) AS version,
        bool_or(role = 'shadow') AS shadow,
        min(time) AS time,
        max(time) AS last,
        coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
        coalesce(sum(completion_tokens), 0) AS completion_tokens,
        coalesce(sum(cached_tokens), 0) AS cached_tokens,
        coalesce(sum(cost), 0) AS cost,
        coalesce(sum(saved_cost), 0) AS saved,
        coalesce(bool_or({lookup}), false) AS looked_up,
        coalesce(bool_or(cache = 'exact'), false) AS exact,
        coalesce(bool_or(cache = 'semantic'), false) AS semantic,
        coalesce(bool_or(status = 'error'), false) AS failed,
        max(currency) FILTER (WHERE currency <> '') AS currency
    FROM log WHERE time < {until}
    GROUP BY trace_id
)
SELECT
    grouping(tenant) AS g_tenant,
    grouping(bucket) AS g_bucket,
    tenant, bucket,
    count(*) AS requests,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(cost) AS cost,
    sum(saved) AS saved,
    count_if(looked_up) AS lookups,
    count_if(exact) AS exact_hits,
    count_if(semantic AND NOT exact) AS semantic_hits,
    count_if(failed) AS errors,
    max(currency) AS currency,
    count_if(shadow) AS shadow,
    min(time) AS first, max(last) AS last,
    list(DISTINCT version) AS versions
FROM (SELECT *, (epoch_us(time) - {since}) // {step} AS bucket FROM calls)
GROUP BY GROUPING SETS ((), (tenant), (bucket), (tenant, bucket))
"""


def trace_stats(root: Path | Location, model: str, grid: Grid) -> TraceStats:
    """``model``'s calls in ``grid``'s range, from its trace log (an empty summary without
    one); a :class:`~shipyard.errors.DataError` when a file cannot be read."""
    sql = _SQL.format(
        lookup=LOOKUP,
        since=_micros(grid.since),
        step=grid.step * 1_000_000,
        until=_instant(grid.until),
    )
    rows = query_log(root, model, kind="traces", since=grid.since, sql=sql).to_pylist()
    total = Usage()
    tenants: dict[str, Usage] = {}
    buckets: dict[int, Usage] = {}
    tenant_buckets: dict[tuple[str, int], Usage] = {}
    extra: dict[str, Any] = {"currency": "", "shadow_requests": 0, "first": None, "last": None}
    versions: list[str] = []
    for row in rows:
        usage = _usage(row)
        if row["g_tenant"] and row["g_bucket"]:
            total = usage
            extra = {
                "currency": row["currency"] or "",
                "shadow_requests": int(row["shadow"] or 0),
                "first": row["first"],
                "last": row["last"],
            }
            versions = sorted({str(v) for v in row["versions"] or [] if v}, key=_number)
        elif not row["g_tenant"] and not row["g_bucket"]:
            if _inside(row["bucket"], grid):
                tenant_buckets[(row["tenant"] or "(none)", int(row["bucket"]))] = usage
        elif not row["g_tenant"]:
            tenants[row["tenant"] or "(none)"] = usage
        elif _inside(row["bucket"], grid):
            buckets[int(row["bucket"])] = usage
    return TraceStats(total, tenants, buckets, tenant_buckets, versions=versions, **extra)


def _inside(bucket: Any, grid: Grid) -> bool:
    return bucket is not None and 0 <= int(bucket) < grid.count


def _usage(row: dict[str, Any]) -> Usage:
    return Usage(
        requests=int(row["requests"] or 0),
        prompt_tokens=int(row["prompt_tokens"] or 0),
        completion_tokens=int(row["completion_tokens"] or 0),
        cached_tokens=int(row["cached_tokens"] or 0),
        cost=float(row["cost"] or 0.0),
        saved=float(row["saved"] or 0.0),
        lookups=int(row["lookups"] or 0),
        exact_hits=int(row["exact_hits"] or 0),
        semantic_hits=int(row["semantic_hits"] or 0),
        errors=int(row["errors"] or 0),
    )


def _number(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)


_FLEET_SQL = """
SELECT count(*) AS requests, count_if(status = 'ok') AS ok,
       quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FILTER (WHERE status = 'ok') AS latency
FROM log
WHERE coalesce(parent_span_id, '') = '' AND role <> 'shadow' AND time < {until}
"""


def llm_fleet_stats(
    root: Path | Location, models: Sequence[str], since: datetime, until: datetime
) -> dict[str, FleetStats]:
    """The fleet page's traffic of the LLM models among ``models`` (those with a trace log
    under a local ``root``): calls, answered ones, and latency quantiles (ms) of each call's
    root span (the gateway's, as the client saw it), shadow copies left out."""
    from shipyard.errors import ConfigError
    from shipyard.llm.costs import traced_models

    try:
        traced = set(traced_models(root))
    except ConfigError:  # a bucket: not listed (the fleet shows the prediction log only)
        return {}
    found: dict[str, FleetStats] = {}
    for model in (m for m in models if m in traced):
        sql = _FLEET_SQL.format(until=_instant(until))
        (row,) = query_log(root, model, kind="traces", since=since, sql=sql).to_pylist()
        if not row["requests"]:
            continue
        latency = row["latency"] or [None, None, None]
        quantiles = tuple(None if v is None else float(v) for v in latency)
        found[model] = FleetStats(int(row["requests"]), int(row["ok"]), quantiles)  # type: ignore[arg-type]
    return found
