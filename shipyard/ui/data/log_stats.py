"""The prediction log, summarised with DuckDB in one pass per page.

:func:`bucket_stats` reads one model's window once and returns, per time bucket,
version and route arm, the requests, the answered ones and the latency quantiles; the
throughput, latency and error charts are all drawn from it. The arm of a live row is
``champion`` when its version was champion at the row's time (from the champion
alias's recorded moves), else ``challenger``; shadow rows are ``shadow``.

:func:`fleet_stats` reads every model's window in one query for the fleet page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from shipyard.errors import DataError
from shipyard.logs.reader import log_source, query_log, sql_literal
from shipyard.moments import as_utc
from shipyard.storage.location import Location
from shipyard.ui.data.buckets import Grid

__all__ = ["BucketStats", "FleetStats", "bucket_stats", "fleet_stats"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class BucketStats:
    """Per (bucket, version, arm): requests, answered (status ok) and latency quantiles (ms)."""

    bucket: np.ndarray
    version: list[str]
    arm: list[str]
    requests: np.ndarray
    ok: np.ndarray
    latency: np.ndarray  # shape (n, 3): p50, p95, p99 of answered rows; NaN where none

    @property
    def groups(self) -> list[tuple[str, str]]:
        """The (version, arm) pairs present, in a stable order."""
        order = {"champion": 0, "challenger": 1, "shadow": 2}
        pairs = set(zip(self.version, self.arm, strict=True))
        return sorted(pairs, key=lambda p: (order.get(p[1], 3), _number(p[0]), p[0]))


@dataclass(frozen=True)
class FleetStats:
    """One model's live traffic over the window: requests, answered, latency quantiles (ms)."""

    requests: int
    ok: int
    latency: tuple[float | None, float | None, float | None]


def _instant(moment: datetime) -> str:
    return f"TIMESTAMPTZ {sql_literal(as_utc(moment).isoformat())}"


def _micros(moment: datetime) -> int:
    delta = as_utc(moment) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _champion_sql(moves: Sequence[tuple[datetime, str | None]], since: datetime) -> str:
    """A CASE naming the champion at each row's ``time``: the moves in range, newest first,
    and the last one before ``since`` as the ELSE (cheaper than an ASOF join: a few moves
    against a million rows)."""
    before: str | None = None
    inside: list[tuple[datetime, str | None]] = []
    for at, version in moves:
        if at <= since:
            before = version
        else:
            inside.append((at, version))
    otherwise = "NULL::VARCHAR" if before is None else sql_literal(before)
    if not inside:
        return otherwise
    arms = " ".join(
        f"WHEN time >= {_instant(at)} THEN {'NULL::VARCHAR' if v is None else sql_literal(v)}"
        for at, v in reversed(inside)
    )
    return f"CASE {arms} ELSE {otherwise} END"


def bucket_stats(
    root: Path | Location,
    model: str,
    grid: Grid,
    moves: Sequence[tuple[datetime, str | None]],
) -> BucketStats:
    """``model``'s log in ``grid``'s range, grouped by bucket, version and arm, in one pass."""
    sql = f"""
    WITH armed AS (
        SELECT time, version, role, latency_ms, status,
               {_champion_sql(moves, grid.since)} AS champion
        FROM log
        WHERE time < {_instant(grid.until)}
    )
    SELECT
        (epoch_us(time) - {_micros(grid.since)}) // {grid.step * 1_000_000} AS bucket,
        coalesce(version, '?') AS version,
        CASE WHEN role = 'shadow' THEN 'shadow'
             WHEN champion IS NULL OR version = champion THEN 'champion'
             ELSE 'challenger' END AS arm,
        count(*) AS requests,
        count_if(status = 'ok') AS ok,
        quantile_cont(latency_ms, [{", ".join(map(str, QUANTILES))}])
            FILTER (WHERE status = 'ok') AS latency
    FROM armed
    GROUP BY ALL
    ORDER BY bucket
    """
    table = query_log(root, model, since=grid.since, sql=sql)
    data = table.to_pydict()
    latency = np.array(
        [
            [np.nan if v is None else float(v) for v in q] if q else [np.nan] * len(QUANTILES)
            for q in data["latency"]
        ],
        dtype=np.float64,
    ).reshape(-1, len(QUANTILES))
    return BucketStats(
        bucket=np.asarray(data["bucket"], dtype=np.int64),
        version=[str(v) for v in data["version"]],
        arm=[str(a) for a in data["arm"]],
        requests=np.asarray(data["requests"], dtype=np.int64),
        ok=np.asarray(data["ok"], dtype=np.int64),
        latency=latency,
    )


def fleet_stats(
    root: Path | Location, models: Sequence[str], since: datetime, until: datetime
) -> dict[str, FleetStats]:
    """Every model's live traffic in ``[since, until)``: one DuckDB query over all their logs."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        parts = []
        for model in models:
            source = log_source(con, root, "predictions", model, since=since)
            if source is None:
                continue
            day = sql_literal(as_utc(since).date().isoformat())
            parts.append(
                f"SELECT {sql_literal(model)} AS model, role, latency_ms, status FROM {source} "
                f"WHERE date >= DATE {day} AND time >= {_instant(since)} "
                f"AND time < {_instant(until)} AND model = {sql_literal(model)}"
            )
        if not parts:
            return {}
        sql = f"""
        SELECT model, count(*) AS requests, count_if(status = 'ok') AS ok,
               quantile_cont(latency_ms, [{", ".join(map(str, QUANTILES))}])
                   FILTER (WHERE status = 'ok') AS latency
        FROM ({" UNION ALL ".join(parts)})
        WHERE role IS DISTINCT FROM 'shadow'
        GROUP BY model
        """
        try:
            rows = con.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise DataError(
                f"Reading the prediction logs for the fleet page failed: {exc}",
                hint="Check that every file in the log directory was written by Shipyard.",
            ) from exc
    finally:
        con.close()
    found: dict[str, FleetStats] = {}
    for model, requests, ok, latency in rows:
        quantiles = tuple(None if v is None else float(v) for v in (latency or [None] * 3))
        found[str(model)] = FleetStats(int(requests), int(ok), quantiles)  # type: ignore[arg-type]
    return found


def _number(version: str) -> int:
    return int(version) if version.isdigit() else 1 << 30
