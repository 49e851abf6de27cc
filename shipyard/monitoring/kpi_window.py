"""The prediction side of a KPI: the window's predictions, each with its route arm.

    window = KpiWindow("churn", since, until, moves)   # moves: (at, champion version)
    arms_view(con, log_root, window)                  # the view ``arms`` on ``con``

A live prediction's arm is ``champion`` when its version was champion at that moment
(the recorded alias moves), else ``challenger``; ``live`` while the model has no
recorded champion; a shadow prediction's arm is ``shadow``. Each row also carries
``bare_id``, its request id as the sender wrote it: the log prefixes ``<principal>/``
when the server authenticates, and a multi-row request's rows end in ``:<row>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from shipyard.logs.reader import log_source, sql_literal
from shipyard.moments import as_utc

if TYPE_CHECKING:
    from shipyard.storage.location import Location

__all__ = ["KpiWindow", "arms_view", "bounds", "bucket_of", "has_view"]

_NAMESPACE = "^[^/]*/"  # "<principal>/" before an authenticated sender's request id
_ROW = ":[0-9]+$"  # ":<row>" after the id of one row of a multi-row request


@dataclass(frozen=True)
class KpiWindow:
    """A model, the range ``[since, until)`` (None: open) and its champion's moves."""

    model: str
    since: datetime | None
    until: datetime | None
    moves: list[tuple[datetime, str | None]]


def arms_view(con: duckdb.DuckDBPyConnection, root: Path | Location, window: KpiWindow) -> bool:
    """The window's predictions with their arm, as the view ``arms``; False without a log."""
    source = log_source(con, root, "predictions", window.model, since=window.since)
    if source is None:
        return False
    stints = []  # who was champion from when to when
    for i, (at, version) in enumerate(window.moves):
        stop = window.moves[i + 1][0] if i + 1 < len(window.moves) else None
        if version is not None:
            stints.append({"version": version, "start": at, "stop": stop})
    stamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema([("version", pa.string()), ("start", stamp), ("stop", stamp)])
    con.register("champion_stints", pa.Table.from_pylist(stints, schema=schema))
    otherwise = "'challenger'" if window.moves else "'live'"
    con.execute(
        "CREATE TEMP VIEW arms AS SELECT p.request_id, "
        f"regexp_replace(regexp_replace(p.request_id, {sql_literal(_NAMESPACE)}, ''), "
        f"{sql_literal(_ROW)}, '') AS bare_id, p.time, p.version, p.status, p.output, "
        "p.probabilities, CASE WHEN p.role = 'shadow' THEN 'shadow' "
        f"WHEN c.version IS NOT NULL THEN 'champion' ELSE {otherwise} END AS arm "
        f"FROM (SELECT * FROM {source} WHERE model = {sql_literal(window.model)} "
        f"AND {bounds('time', window, dates=True)}) p "
        "LEFT JOIN champion_stints c ON p.role <> 'shadow' AND p.version = c.version "
        "AND p.time >= c.start AND (c.stop IS NULL OR p.time < c.stop)"
    )
    return True


def has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``con`` has a view called ``name``."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = $name", {"name": name}
    ).fetchone()
    return bool(found and found[0])


def bounds(column: str, window: KpiWindow, *, dates: bool) -> str:
    """SQL keeping ``column`` inside the window; ``dates`` also prunes log partitions."""
    parts = ["TRUE"]
    if window.since is not None:
        since = as_utc(window.since)
        parts.append(f"{column} >= {sql_literal(since.isoformat())}::TIMESTAMPTZ")
        if dates:  # skips whole date directories of the log before reading a file
            parts.append(f"date >= DATE {sql_literal(since.date().isoformat())}")
    if window.until is not None:
        parts.append(f"{column} < {sql_literal(as_utc(window.until).isoformat())}::TIMESTAMPTZ")
    return " AND ".join(parts)


def bucket_of(column: str, seconds: int) -> str:
    """SQL for the start (UTC) of the ``seconds``-long bucket that holds ``column``."""
    return f"to_timestamp(floor(epoch({column}) / {seconds}) * {seconds})"
