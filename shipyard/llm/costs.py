"""What LLM calls cost, from the trace log: per tenant, model, version, prompt and day.

DuckDB reads the ``traces`` log (:mod:`shipyard.logs.traces`) of one model, several, or
every model under a local root. Each call (a trace) counts once: its spans' tokens,
cost and cache savings are summed (a span carries only what it spent), its cache
result is a hit when a span says ``exact`` or ``semantic``. Costs are read as recorded
when each call was made (provider-reported, or computed from the price table valid
then), so a later price change never changes these sums. Currencies are never added
together: ``currency`` is always part of the grouping.

``saved`` is what cache hits avoided: the cached answer's usage priced as a call.
``cache_lookups`` counts calls that looked the cache up (hit or miss), so the hit rate
is ``cache_hits / cache_lookups``. Used by ``shipyard llm cost``, the dashboard and
:class:`~shipyard.llm.metrics.LlmMetrics`-style reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb

from shipyard.errors import ConfigError, DataError
from shipyard.jsonable import Record
from shipyard.logs.reader import log_source, sql_literal
from shipyard.logs.traces import TRACE_SCHEMA
from shipyard.moments import as_utc
from shipyard.storage.location import Location

__all__ = ["DIMENSIONS", "CostRow", "cost_rows", "cost_total", "traced_models"]

DIMENSIONS = ("tenant", "model", "version", "prompt", "role", "day")
"""What costs may be grouped by."""

_PER_CALL = """
SELECT
    trace_id,
    any_value(tenant) AS tenant,
    any_value(model) AS model,
    any_value(version) AS version,
    any_value(prompt) AS prompt,
    any_value(role) AS role,
    CAST(min(time) AS DATE) AS day,
    coalesce(max(currency) FILTER (WHERE cost IS NOT NULL OR saved_cost IS NOT NULL), '')
        AS currency,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(coalesce(cost, 0)) AS cost,
    coalesce(bool_or(cache IN ('exact', 'semantic')), false) AS hit,
    coalesce(bool_or(cache IN ('exact', 'semantic', 'miss')), false) AS looked_up,
    sum(coalesce(saved_cost, 0)) AS saved,
    coalesce(bool_or(cost_source = 'unpriced'), false) AS unpriced,
    coalesce(bool_or(status = 'error'), false) AS failed
FROM spans
GROUP BY trace_id
"""


@dataclass(frozen=True)
class CostRow(Record):
    """Calls, tokens and cost of one group; a dimension not grouped by is None."""

    currency: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: float
    cache_hits: int
    cache_lookups: int
    saved: float
    unpriced: int
    errors: int
    tenant: str | None = None
    model: str | None = None
    version: str | None = None
    prompt: str | None = None
    role: str | None = None
    day: date | None = None

    @property
    def hit_rate(self) -> float | None:
        """Cache hits per cache lookup (None without a lookup)."""
        return self.cache_hits / self.cache_lookups if self.cache_lookups else None


def traced_models(root: Path | Location) -> list[str]:
    """The models with a trace log under a local ``root``."""
    local = _local(root)
    if local is None:
        raise ConfigError(
            "Listing the traced models of a bucket is not supported.",
            hint="Name the models (--model) whose costs to read.",
        )
    folder = local / "traces"
    if not folder.is_dir():
        return []
    return sorted(
        unquote(path.name.removeprefix("model="))
        for path in folder.glob("model=*")
        if path.is_dir() and any(path.glob("date=*/*.parquet"))
    )


def cost_rows(
    root: Path | Location,
    models: Sequence[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    by: Sequence[str] = ("tenant", "model", "prompt", "day"),
) -> list[CostRow]:
    """Calls, tokens, cost and cache savings per group of ``by`` (see :data:`DIMENSIONS`).

    ``models`` None reads every model with a trace log under a local ``root``; calls
    from ``since`` (inclusive) to ``until`` (exclusive).
    """
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown or len(set(by)) != len(by):
        raise ConfigError(
            f"Cannot group costs by {', '.join(by)}.",
            hint=f"Group by any of: {', '.join(DIMENSIONS)} (each once).",
        )
    if since is not None and until is not None and as_utc(since) >= as_utc(until):
        raise ConfigError("The cost window is empty: since must come before until.")
    names = traced_models(root) if models is None else list(models)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        sources = [
            found
            for name in names
            if (found := log_source(con, root, "traces", name, since=since)) is not None
        ]
        if not sources:
            return []
        columns = ", ".join(f'"{field.name}"' for field in TRACE_SCHEMA)
        filters = []
        if since is not None:
            filters.append(f"time >= {sql_literal(as_utc(since).isoformat())}::TIMESTAMPTZ")
            filters.append(f"date >= DATE {sql_literal(as_utc(since).date().isoformat())}")
        if until is not None:
            filters.append(f"time < {sql_literal(as_utc(until).isoformat())}::TIMESTAMPTZ")
        where = f" WHERE {' AND '.join(filters)}" if filters else ""
        union = " UNION ALL BY NAME ".join(f"SELECT {columns} FROM {s}{where}" for s in sources)
        groups = ", ".join([*by, "currency"])
        sql = (
            f"WITH spans AS ({union}), calls AS ({_PER_CALL}) "
            f"SELECT {groups}, count(*) AS requests, "
            "sum(prompt_tokens)::BIGINT AS prompt_tokens, "
            "sum(completion_tokens)::BIGINT AS completion_tokens, "
            "sum(cached_tokens)::BIGINT AS cached_tokens, sum(cost) AS cost, "
            "count(*) FILTER (WHERE hit) AS cache_hits, "
            "count(*) FILTER (WHERE looked_up) AS cache_lookups, sum(saved) AS saved, "
            "count(*) FILTER (WHERE unpriced) AS unpriced, "
            "count(*) FILTER (WHERE failed) AS errors "
            f"FROM calls GROUP BY {groups} ORDER BY {groups}"
        )
        try:
            relation = con.sql(sql)
            header = list(relation.columns)
            rows = relation.fetchall()
        except duckdb.Error as exc:
            raise DataError(
                f"Reading the trace log failed: {str(exc).splitlines()[0]}",
                hint="Check the files under the log root's traces/ folder "
                "(`shipyard logs query NAME --kind traces` reads them too).",
            ) from None
    return [CostRow(**_typed(dict(zip(header, row, strict=True)))) for row in rows]


def cost_total(
    root: Path | Location,
    models: Sequence[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[CostRow]:
    """One row per currency: everything the calls in the window cost."""
    return cost_rows(root, models, since=since, until=until, by=())


_COUNTS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens")
_CALLS = ("cache_hits", "cache_lookups", "unpriced", "errors")


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    for key in (*_COUNTS, *_CALLS):
        row[key] = int(row[key] or 0)
    row["cost"] = float(row["cost"] or 0.0)
    row["saved"] = float(row["saved"] or 0.0)
    return row


def _local(root: Path | Location) -> Path | None:
    if isinstance(root, Location):
        return root.local_path() if root.is_local else None
    return Path(root)
