"""The current window: recent predictions (and their labels) read from the prediction log.

A window is ``last:N`` (the newest N predictions), ``since:6h`` (a duration back from
now, or an ISO time), or ``range:START/END`` (ISO times). Only live predictions that
succeeded count, unless shadow traffic is asked for; one version, or all of them.
DuckDB reads only the dates the window needs, and the inputs arrive as typed columns.

Every window carries its log coverage (:class:`~shipyard.logs.losses.LogCoverage`): the
rows it read against the rows the writers recorded as lost in the same span of time
(of the same version and roles). A decision on a window below
``monitoring.min_log_coverage`` says the window is incomplete and does not act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from shipyard.errors import ConfigError
from shipyard.logs.losses import LogCoverage, log_coverage
from shipyard.logs.reader import sql_literal
from shipyard.moments import as_utc, parse_moment
from shipyard.storage.location import Location

__all__ = ["LogWindow", "WindowSpec", "load_window", "probability_matrix", "window_coverage"]

_HINT = "Write last:5000, since:6h, since:2026-11-24T09:00:00+00:00 or range:START/END."


@dataclass(frozen=True)
class WindowSpec:
    """Which predictions a monitor run looks at."""

    kind: Literal["last", "since", "range"]
    count: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def parse(cls, text: str, *, now: datetime | None = None) -> WindowSpec:
        """``last:N``, ``since:DURATION|TIME`` or ``range:START/END``."""
        kind, _, value = text.strip().partition(":")
        value = value.strip()
        if kind == "last" and value.isdigit() and int(value) > 0:
            return cls("last", count=int(value))
        if kind == "since" and value:
            return cls("since", start=parse_moment(value, flag="since:", now=now, hint=_HINT))
        if kind == "range" and "/" in value:
            first, _, second = value.partition("/")
            start = parse_moment(first, flag="range: start", now=now, hint=_HINT)
            end = parse_moment(second, flag="range: end", now=now, hint=_HINT)
            if end <= start:
                raise ConfigError(f"Window {text!r} ends before it starts.", hint=_HINT)
            return cls("range", start=start, end=end)
        raise ConfigError(f"Window {text!r} is not understood.", hint=_HINT)

    def describe(self) -> str:
        """Short human form, e.g. ``last 5000`` or ``since 2026-11-24 09:00``."""
        if self.kind == "last":
            return f"last {self.count}"
        start = self.start.strftime("%Y-%m-%d %H:%M") if self.start else "?"
        if self.kind == "since":
            return f"since {start}"
        end = self.end.strftime("%Y-%m-%d %H:%M") if self.end else "?"
        return f"{start} to {end}"


@dataclass(frozen=True, eq=False)
class LogWindow:
    """The predictions of one window, newest last, with labels where they arrived."""

    spec: WindowSpec
    inputs: pd.DataFrame  # one column per model input
    outputs: list[Any]
    probabilities: np.ndarray | None  # rows × classes, when every row has them
    request_ids: np.ndarray
    times: pd.Series
    versions: np.ndarray
    labels: list[Any]  # None where no label arrived
    label_times: pd.Series
    coverage: LogCoverage | None = None  # None: not known (a window built by hand)

    @property
    def rows(self) -> int:
        """Predictions in the window."""
        return len(self.request_ids)

    @property
    def labelled(self) -> np.ndarray:
        """Boolean mask of the rows that have a label."""
        return np.array([label is not None for label in self.labels], dtype=bool)


def load_window(
    root: Path | Location,
    model: str,
    spec: WindowSpec,
    *,
    version: str | None = None,
    include_shadow: bool = False,
) -> LogWindow:
    """Read ``model``'s predictions in ``spec`` from the log under ``root``, with labels."""
    from shipyard.logs.reader import query_log

    filters = ["status = 'ok'"]
    if not include_shadow:
        filters.append("role = 'live'")
    if version is not None:
        filters.append(f"version = {sql_literal(version)}")
    if spec.end is not None:
        filters.append(f"time < {sql_literal(spec.end.isoformat())}::TIMESTAMPTZ")
    limit = f"LIMIT {spec.count}" if spec.count else ""
    sql = (
        "SELECT request_id, time, version, inputs, output, probabilities FROM log "
        f"WHERE {' AND '.join(filters)} ORDER BY time DESC, request_id DESC {limit}"
    )
    table = query_log(root, model, since=spec.start, sql=sql)
    table = table.take(pa.array(np.arange(table.num_rows)[::-1]))  # oldest first
    labels = _latest_labels(root, model)
    request_ids = np.asarray(table.column("request_id").to_pylist(), dtype=object)
    found = [labels.get(rid) for rid in request_ids]
    times = table.column("time").to_pylist()
    coverage = window_coverage(
        root,
        model,
        spec,
        len(request_ids),
        oldest=times[0] if times else None,
        version=version,
        roles=("live", "shadow") if include_shadow else ("live",),
    )
    return LogWindow(
        spec=spec,
        inputs=_inputs(table),
        outputs=[orjson.loads(text) for text in table.column("output").to_pylist()],
        probabilities=probability_matrix(table.column("probabilities").to_pylist()),
        request_ids=request_ids,
        times=pd.Series(table.column("time").to_pandas(), dtype="datetime64[us, UTC]"),
        versions=np.asarray(table.column("version").to_pylist(), dtype=object),
        labels=[None if hit is None else hit[0] for hit in found],
        label_times=pd.Series(
            [None if hit is None else hit[1] for hit in found], dtype="datetime64[us, UTC]"
        ),
        coverage=coverage,
    )


def window_coverage(
    root: Path | Location,
    model: str,
    spec: WindowSpec,
    logged: int,
    *,
    oldest: datetime | None,
    version: str | None = None,
    roles: tuple[str, ...] = ("live",),
) -> LogCoverage:
    """The coverage of a window that read ``logged`` rows, the oldest at ``oldest``.

    A ``last:N`` window spans from its oldest row to now: a row lost after the newest
    logged one would have been in it.
    """
    since = spec.start
    if since is None and oldest is not None:
        since = as_utc(oldest)
    if since is None:  # an empty last:N window: the last day's losses say how empty
        since = datetime.now(UTC) - timedelta(days=1)
    return log_coverage(
        root,
        model,
        logged,
        since=since,
        until=spec.end,
        versions=None if version is None else (version,),
        roles=roles,
    )


def _latest_labels(root: Path | Location, model: str) -> dict[str, tuple[Any, datetime]]:
    from shipyard.logs.reader import query_log

    sql = (
        "SELECT request_id, arg_max(label, time) AS label, max(time) AS at "
        "FROM log GROUP BY request_id"
    )
    table = query_log(root, model, kind="labels", sql=sql)
    return {
        rid: (orjson.loads(label), at)
        for rid, label, at in zip(
            table.column("request_id").to_pylist(),
            table.column("label").to_pylist(),
            table.column("at").to_pylist(),
            strict=True,
        )
    }


def _inputs(table: pa.Table) -> pd.DataFrame:
    column = table.column("inputs").combine_chunks()
    if not isinstance(column, pa.StructArray) or column.type.num_fields == 0:
        return pd.DataFrame(index=range(table.num_rows))
    fields = column.flatten()
    names = [column.type.field(i).name for i in range(column.type.num_fields)]
    return pd.DataFrame(
        {
            name: field.to_numpy(zero_copy_only=False)
            for name, field in zip(names, fields, strict=True)
        }
    )


def probability_matrix(rows: list[list[float] | None]) -> np.ndarray | None:
    """Rows × classes of probabilities, or None unless every row has them at one width."""
    if not rows or any(row is None for row in rows):
        return None
    widths = {len(row) for row in rows if row is not None}
    if len(widths) != 1:
        return None
    return np.asarray(rows, dtype=np.float64)
