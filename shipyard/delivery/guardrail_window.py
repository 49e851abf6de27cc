"""The SQL behind the guardrails: one roll-out step's rows in the prediction and label logs.

:class:`StepWindow` reads, with DuckDB, each side's counts and latency moments, the
histogram of predicted values, the shadow/live pairs and the labelled predictions, one
query per guardrail family over both sides. :mod:`shipyard.delivery.guardrails` turns
them into verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from shipyard.delivery.rollout import Rollout
from shipyard.delivery.sequential import ProportionStats
from shipyard.logs.reader import sql_literal
from shipyard.moments import as_utc
from shipyard.storage.location import Location

__all__ = ["Labelled", "SideStats", "StepWindow", "same_label", "side_stats"]

Task = Literal["classification", "regression"]
REGRESSION_TOLERANCE = 0.1
"""A regressor's shadow and live predictions disagree beyond this relative difference."""

_DECILES = [round(0.1 * i, 1) for i in range(1, 10)]


@dataclass(frozen=True)
class SideStats:
    """One side's requests in a step: counts, latency moments and tail, output types.

    ``n`` requests, ``errors`` failed, ``ok`` answered; ``mean``, ``var`` and ``p99`` of
    the answered ones' latency (ms); ``above_p99`` above the champion's p99 and
    ``above_limit`` above it times ``1 + p99_margin``; ``with_probabilities`` and
    ``floats`` count answers with class probabilities and with a float output.
    """

    n: int = 0
    errors: int = 0
    ok: int = 0
    mean: float = 0.0
    var: float = 0.0
    p99: float | None = None
    above_p99: int = 0
    above_limit: int = 0
    with_probabilities: int = 0
    floats: int = 0


@dataclass(frozen=True)
class Labelled:
    """Each side's labelled predictions (and wrong ones) since the roll-out began, and
    how many labels arrived since then for any request of the model."""

    sides: dict[str, ProportionStats]
    arriving: int


class StepWindow:
    """SQL over one roll-out's prediction log: which rows are whose."""

    def __init__(
        self, root: Path | Location, rollout: Rollout, role: str, baseline: datetime | None = None
    ) -> None:
        self.root = root
        self.model = rollout.model
        self._baseline = baseline  # where the champion's rows start, when before the step
        champion = (
            f"version = {sql_literal(rollout.champion)} AND role = 'live'"
            if rollout.champion is not None
            else "FALSE"
        )
        self._champion = champion
        self._candidate = f"version = {sql_literal(rollout.candidate)}"
        self._role = role

    def rows(self, roles: str, since: datetime, *, baseline: bool = True) -> str:
        """A SELECT of the log's rows of either side since ``since``, with a ``side``.

        With ``baseline``, the champion's rows start at the window's baseline instead.
        """
        start = self._start(since) if baseline else since
        champion = f"{self._champion} AND time >= {_moment(start)}"
        candidate = f"{self._candidate} AND role IN ({roles}) AND time >= {_moment(since)}"
        return (
            f"SELECT CASE WHEN {self._champion} THEN 'champion' ELSE 'candidate' END AS side, "
            f"request_id, time, output, probabilities, latency_ms, status FROM log "
            f"WHERE ({champion}) OR ({candidate})"
        )

    def step_rows(self, since: datetime) -> str:
        """A SELECT of the step's rows of either side: live, or shadow in a shadow step."""
        return self.rows(sql_literal(self._role), since)

    def _start(self, since: datetime) -> datetime:
        """Where the champion's rows start: the baseline when it is earlier than ``since``."""
        if self._baseline is not None and self._baseline < since:
            return self._baseline
        return since

    def sides(self, since: datetime, p99_margin: float) -> tuple[SideStats, SideStats]:
        """Counts, latency moments and tail counts of both sides, in one query."""
        sql = (
            f"WITH step AS ({self.step_rows(since)}), "
            "line AS (SELECT quantile_cont(latency_ms, 0.99) AS p99 FROM step "
            "WHERE side = 'champion' AND status = 'ok') "
            "SELECT side, count(*) AS n, count(*) FILTER (WHERE status <> 'ok') AS errors, "
            "count(*) FILTER (WHERE status = 'ok') AS ok, "
            "avg(latency_ms) FILTER (WHERE status = 'ok') AS mean, "
            "var_samp(latency_ms) FILTER (WHERE status = 'ok') AS var, "
            "quantile_cont(latency_ms, 0.99) FILTER (WHERE status = 'ok') AS p99, "
            "count(*) FILTER (WHERE status = 'ok' AND latency_ms > line.p99) AS above_p99, "
            "count(*) FILTER (WHERE status = 'ok' AND latency_ms > line.p99 * "
            f"{1.0 + p99_margin!r}) AS above_limit, "
            "count(*) FILTER (WHERE status = 'ok' AND probabilities IS NOT NULL) "
            "AS with_probabilities, "
            "count(*) FILTER (WHERE status = 'ok' AND json_type(output) = 'DOUBLE') AS floats "
            "FROM step, line GROUP BY side"
        )
        found = {row["side"]: row for row in self.query(sql, since)}
        return side_stats(found.get("champion")), side_stats(found.get("candidate"))

    def histogram(self, since: datetime, task: Task, *, paired: bool) -> dict[str, dict[Any, int]]:
        """Counts of each side's predicted values per bin (classes, or champion deciles)."""
        if paired:  # the same requests: shadow and live rows that both succeeded
            values = (
                f"WITH step AS ({self.step_rows(since)}), pairs AS ("
                "SELECT c.output AS champion, s.output AS candidate FROM step c "
                "JOIN step s USING (request_id) WHERE c.side = 'champion' "
                "AND s.side = 'candidate' AND c.status = 'ok' AND s.status = 'ok'), "
                "answered AS (SELECT 'champion' AS side, champion AS output FROM pairs "
                "UNION ALL SELECT 'candidate', candidate FROM pairs)"
            )
        else:
            values = (
                f"WITH step AS ({self.step_rows(since)}), "
                "answered AS (SELECT side, output FROM step WHERE status = 'ok')"
            )
        if task == "classification":
            sql = f"{values} SELECT side, output AS bin, count(*) AS n FROM answered GROUP BY ALL"
        else:
            sql = (
                f"{values}, numbers AS (SELECT side, TRY_CAST(output ->> '$' AS DOUBLE) AS x "
                "FROM answered), finite AS (SELECT * FROM numbers WHERE isfinite(x)), "
                f"edges AS (SELECT list_sort(list_distinct(quantile_cont(x, {_DECILES}))) AS e "
                "FROM finite WHERE side = 'champion') "
                "SELECT side, len(list_filter(e, lambda t: t < x)) AS bin, count(*) AS n "
                "FROM finite, edges GROUP BY ALL"
            )
        counts: dict[str, dict[Any, int]] = {"champion": {}, "candidate": {}}
        for row in self.query(sql, since):
            counts[row["side"]][row["bin"]] = int(row["n"])
        return counts

    def disagreement(self, since: datetime, task: Task) -> ProportionStats:
        """Shadow and live answers to the same requests: pairs, and pairs that differ."""
        if task == "classification":
            differ = f"NOT {same_label('c.output', 's.output')}"
        else:
            c, s = (f"TRY_CAST({o}.output ->> '$' AS DOUBLE)" for o in ("c", "s"))
            differ = f"abs({s} - {c}) > {REGRESSION_TOLERANCE!r} * greatest(abs({s}), abs({c}))"
        sql = (
            f"WITH step AS ({self.step_rows(since)}) "
            f"SELECT count(*) AS pairs, count(*) FILTER (WHERE {differ}) AS differ "
            "FROM step c JOIN step s USING (request_id) WHERE c.side = 'champion' "
            "AND s.side = 'candidate' AND c.status = 'ok' AND s.status = 'ok'"
        )
        row = self.query(sql, since)[0]
        return ProportionStats(int(row["pairs"] or 0), int(row["differ"] or 0))

    def quality(self, since: datetime) -> Labelled | None:
        """Labelled predictions and wrong ones per side since ``since``; None: no label log."""
        import duckdb

        from shipyard.logs.reader import log_source

        with duckdb.connect() as con:
            if log_source(con, self.root, "labels", self.model) is None:
                return None
        # The label log is the reader's `labels` view beside the prediction log's `log`,
        # wherever the logs live (a bucket included); labels arrive after their
        # predictions, so only those since `since`.
        answered = self.rows("'live', 'shadow'", since, baseline=False)
        sql = (
            f"WITH answered AS ({answered}), "
            "latest AS (SELECT request_id, arg_max(label, time) AS label "
            f"FROM labels WHERE model = {sql_literal(self.model)} GROUP BY request_id), "
            "judged AS (SELECT side, output, label FROM answered JOIN latest USING (request_id) "
            "WHERE status = 'ok' AND label IS NOT NULL AND label <> 'null') "
            "SELECT sides.side, count(judged.side) AS labelled, "
            f"count(judged.side) FILTER (WHERE NOT {same_label('output', 'label')}) AS wrong, "
            "(SELECT count(*) FROM latest) AS arriving "
            "FROM (VALUES ('champion'), ('candidate')) AS sides(side) "
            "LEFT JOIN judged ON judged.side = sides.side GROUP BY sides.side"
        )
        rows = self.query(sql, since, labels_since=as_utc(since))
        return Labelled(
            {row["side"]: ProportionStats(int(row["labelled"]), int(row["wrong"])) for row in rows},
            arriving=int(rows[0]["arriving"]),
        )

    def query(
        self, sql: str, since: datetime, *, labels_since: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Rows of ``sql`` over the model's prediction log (the view ``log``) from the
        window's start: wrap :meth:`step_rows` or :meth:`rows` in it. With
        ``labels_since``, ``sql`` also sees the label log from then on (the view ``labels``)."""
        from shipyard.logs.reader import query_log

        rows: list[dict[str, Any]] = query_log(
            self.root, self.model, since=self._start(since), sql=sql, labels_since=labels_since
        ).to_pylist()
        return rows


def side_stats(row: dict[str, Any] | None) -> SideStats:
    """One side's statistics from its row of :meth:`StepWindow.sides`; zeros when it
    logged nothing."""
    row = row or {}

    def number(key: str) -> float | None:
        value = row.get(key)
        return None if value is None else float(value)

    return SideStats(
        n=int(row.get("n") or 0),
        errors=int(row.get("errors") or 0),
        ok=int(row.get("ok") or 0),
        mean=number("mean") or 0.0,
        var=number("var") or 0.0,
        p99=number("p99"),
        above_p99=int(row.get("above_p99") or 0),
        above_limit=int(row.get("above_limit") or 0),
        with_probabilities=int(row.get("with_probabilities") or 0),
        floats=int(row.get("floats") or 0),
    )


def same_label(left: str, right: str) -> str:
    """SQL: two JSON values name the same label (``1`` and ``"1"`` and ``1.0`` do)."""
    a, b = f"({left} ->> '$')", f"({right} ->> '$')"
    return f"coalesce(TRY_CAST({a} AS DOUBLE) = TRY_CAST({b} AS DOUBLE), {a} = {b})"


def _moment(moment: datetime) -> str:
    return f"{sql_literal(as_utc(moment).isoformat())}::TIMESTAMPTZ"
