"""The performance window: the labelled predictions a monitor run measures, by label arrival.

A feature window is the newest predictions; their labels may not have arrived yet (a
label 1,000 predictions late is never inside a 1,000-row window). So performance has
its own window, ``monitoring.performance_window``, chosen among predictions that *have*
a label:

- ``last:N``: the newest N labelled predictions (by prediction time), however old;
- ``since:DURATION`` or ``since:TIME``: the labelled predictions whose label *arrived*
  in that period, whenever they were predicted.

Only live predictions that succeeded count (shadow ones too with ``include_shadow``),
of one version. A label's arrival is when the server took it (``received_at``, else
its ``time``); a request labelled twice counts once, with its latest label.
DuckDB joins the whole label log to the prediction log by request id: no predicate
on prediction time may drop an old prediction whose label came late.
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
from shipyard.logs.reader import sql_literal
from shipyard.moments import as_utc, parse_duration, parse_moment
from shipyard.monitoring.log_window import probability_matrix
from shipyard.storage.location import Location

__all__ = ["LabelWindow", "LabelWindowSpec", "load_label_window"]

_HINT = (
    "Set monitoring.performance_window to last:N (the newest N labelled predictions) or "
    "since:7d / since:2026-11-24T09:00:00+00:00 (labels that arrived since then)."
)
# Every label, whenever it was dated: the label log is read whole (see the module docstring).
_ALL = datetime(1970, 1, 1, tzinfo=UTC)

_LABELLED = """
WITH arrived AS (
    SELECT
        request_id,
        arg_max(label, (time, coalesce(received_at, time))) AS label,
        max(coalesce(received_at, time)) AS label_at
    FROM labels
    GROUP BY request_id
), joined AS (
    SELECT log.request_id, log.time, log.version, log.output, log.probabilities,
           arrived.label, arrived.label_at
    FROM log JOIN arrived USING (request_id)
    WHERE {filters}
)
SELECT * FROM (
    SELECT *, count(*) OVER () AS total, max(label_at) OVER () AS last_at FROM joined
) WHERE {chosen}
ORDER BY time DESC, request_id DESC {limit}
"""


@dataclass(frozen=True)
class LabelWindowSpec:
    """Which labelled predictions performance is measured on."""

    kind: Literal["last", "since"]
    count: int | None = None
    start: datetime | None = None
    span: timedelta | None = None  # since:DURATION: the window rolls forward with time

    @classmethod
    def parse(cls, text: str, *, now: datetime | None = None) -> LabelWindowSpec:
        """``last:N`` or ``since:DURATION|TIME``."""
        kind, _, value = text.strip().partition(":")
        value = value.strip()
        if kind == "last" and value.isdigit() and int(value) > 0:
            return cls("last", count=int(value))
        if kind == "since" and value:
            start = parse_moment(value, flag="performance_window since:", now=now, hint=_HINT)
            try:
                span: timedelta | None = parse_duration(value, flag="since:")
            except ConfigError:
                span = None  # a fixed moment: the window grows as labels arrive
            return cls("since", start=start, span=span)
        raise ConfigError(f"Performance window {text!r} is not understood.", hint=_HINT)

    def describe(self) -> str:
        """Short human form: ``last 2000 labelled`` or ``labels since 2026-11-24 09:00``."""
        if self.kind == "last":
            return f"last {self.count} labelled"
        start = self.start.strftime("%Y-%m-%d %H:%M") if self.start else "?"
        return f"labels since {start}"


@dataclass(frozen=True, eq=False)
class LabelWindow:
    """The labelled predictions of one performance window, oldest prediction first.

    ``spanned`` counts the predictions (labelled or not) made from the window's oldest
    labelled prediction to its newest, so ``rows / spanned`` is the window's coverage.
    ``total`` counts every labelled prediction of the version (in or out of the
    window) and ``last_arrival`` is the newest label among them: together they tell
    "no label ever arrived" from "none arrived lately".
    """

    spec: LabelWindowSpec
    request_ids: np.ndarray
    times: pd.Series  # when each prediction was made
    label_times: pd.Series  # when its label arrived
    outputs: list[Any]
    probabilities: np.ndarray | None
    labels: list[Any]
    spanned: int
    total: int
    last_arrival: datetime | None

    @property
    def rows(self) -> int:
        """Labelled predictions in the window."""
        return len(self.request_ids)


def load_label_window(
    root: Path | Location,
    model: str,
    spec: LabelWindowSpec,
    *,
    version: str | None = None,
    include_shadow: bool = False,
) -> LabelWindow:
    """Read ``model``'s labelled predictions in ``spec`` from the logs under ``root``."""
    from shipyard.logs.reader import query_log

    filters = ["log.status = 'ok'"]
    if not include_shadow:
        filters.append("log.role = 'live'")
    if version is not None:
        filters.append(f"log.version = {sql_literal(version)}")
    chosen = "TRUE"
    if spec.start is not None:
        chosen = f"label_at >= {sql_literal(as_utc(spec.start).isoformat())}::TIMESTAMPTZ"
    sql = _LABELLED.format(
        filters=" AND ".join(filters),
        chosen=chosen,
        limit=f"LIMIT {spec.count}" if spec.count else "",
    )
    # Predictions of any age: a label may arrive long after its prediction.
    table = query_log(root, model, sql=sql, labels_since=_ALL)
    table = table.take(pa.array(np.arange(table.num_rows)[::-1]))  # oldest first
    total, last_arrival = _summary(root, model, table, filters, spec)
    times = _stamps(table, "time")
    return LabelWindow(
        spec=spec,
        request_ids=np.asarray(table.column("request_id").to_pylist(), dtype=object),
        times=times,
        label_times=_stamps(table, "label_at"),
        outputs=[orjson.loads(text) for text in table.column("output").to_pylist()],
        probabilities=probability_matrix(table.column("probabilities").to_pylist()),
        labels=[orjson.loads(text) for text in table.column("label").to_pylist()],
        spanned=_spanned(root, model, times, filters),
        total=total,
        last_arrival=last_arrival,
    )


def _summary(
    root: Path | Location,
    model: str,
    table: pa.Table,
    filters: list[str],
    spec: LabelWindowSpec,
) -> tuple[int, datetime | None]:
    """Labelled predictions of the version in all, and the newest label's arrival."""
    if table.num_rows:
        total = table.column("total")[0].as_py()
        last = table.column("last_at")[0].as_py()
        return int(total), None if last is None else as_utc(last)
    if spec.start is None:  # an empty last:N window: nothing is labelled at all
        return 0, None
    # An empty since: window says nothing of older labels: ask for them.
    from shipyard.logs.reader import query_log

    sql = _LABELLED.format(filters=" AND ".join(filters), chosen="TRUE", limit="LIMIT 1")
    found = query_log(root, model, sql=sql, labels_since=_ALL)
    if not found.num_rows:
        return 0, None
    last = found.column("last_at")[0].as_py()
    return int(found.column("total")[0].as_py()), None if last is None else as_utc(last)


def _spanned(root: Path | Location, model: str, times: pd.Series, filters: list[str]) -> int:
    """Predictions made from the oldest time in ``times`` to the newest (0 for none)."""
    if times.empty:
        return 0
    from shipyard.logs.reader import query_log

    first, last = times.min().to_pydatetime(), times.max().to_pydatetime()
    sql = (
        f"SELECT count(*) AS n FROM log WHERE {' AND '.join(filters)} AND log.time <= "
        f"{sql_literal(last.isoformat())}::TIMESTAMPTZ"
    )
    return int(query_log(root, model, since=first, sql=sql).column("n")[0].as_py())


def _stamps(table: pa.Table, column: str) -> pd.Series:
    return pd.Series(table.column(column).to_pandas(), dtype="datetime64[us, UTC]")
