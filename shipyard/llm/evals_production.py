"""Production judge runs: a sample of a version's answers this week, read from the trace log.

One answer per request: the ``gateway`` span (the whole call, as the client saw it), or
the ``provider.call`` span when a request has no gateway span; live traffic only (not
shadow), answered without error. Each sampled answer is judged against the gold item
with the same input when there is one, else against the request's own input (so a
number the answer states that the request never gave is a hallucination). Guardrail
hits are counted over *every* answer of this week and of the week before: the
week-on-week signal needs no judge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.errors import EvaluationError
from shipyard.llm.evals_store import WEEK, ItemResult, LlmEvaluation, store_run, summarise
from shipyard.llm.judges import Guardrails, Judge

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["production_answers", "production_run"]

_SQL = """
SELECT request_id, time, name, input, output
FROM log
WHERE version = {version} AND role = 'live' AND status = 'ok'
  AND name IN ('gateway', 'provider.call') AND time >= {since} AND time < {until}
ORDER BY request_id, CASE name WHEN 'gateway' THEN 0 ELSE 1 END, time
"""


def production_answers(
    project: Project, name: str, version: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """One ``{request_id, time, input, output}`` per answered live request in [since, until)."""
    import shipyard.logs.traces  # noqa: F401  (registers the traces log kind)
    from shipyard.logs.reader import query_log, sql_literal
    from shipyard.logs.root import project_log_root

    sql = _SQL.format(
        version=sql_literal(version),
        since=f"TIMESTAMPTZ {sql_literal(since.isoformat())}",
        until=f"TIMESTAMPTZ {sql_literal(until.isoformat())}",
    )
    table = query_log(project_log_root(project.config), name, kind="traces", since=since, sql=sql)
    seen: set[str] = set()
    rows = []
    for row in table.to_pylist():
        if row["request_id"] in seen:
            continue
        seen.add(row["request_id"])
        rows.append(row)
    return rows


def production_run(
    project: Project,
    name: str,
    version: str,
    judge: Judge,
    guard: Guardrails,
    sample: int | None,
    clock: Callable[[], datetime],
) -> LlmEvaluation:
    """Judge a sample of ``name/version``'s answers of the last 7 days; store the run."""
    from shipyard.llm.gold import project_gold

    config = project.config
    now = clock()
    this_week = production_answers(project, name, version, now - WEEK, now)
    last_week = production_answers(project, name, version, now - 2 * WEEK, now - WEEK)
    if not this_week:
        raise EvaluationError(
            f"{name}/{version} answered no live requests in the last 7 days.",
            hint="A production run judges answers from the trace log; serve some traffic first.",
        )
    size = config.llm.judge.sample if sample is None else sample
    rng = np.random.default_rng(0)
    picked = (
        this_week
        if len(this_week) <= size
        else [this_week[i] for i in sorted(rng.choice(len(this_week), size, replace=False))]
    )
    references: dict[str, str] = {}
    digest = None
    if config.llm.judge.gold is not None:
        gold, snap = project_gold(config, project.store)
        digest = snap.digest
        references = {item.input: item.expected for item in gold.items if item.input}
    items = [
        ItemResult(
            row["request_id"],
            row["output"] or "",
            judge.verdict(
                references.get(row["input"] or "", row["input"] or ""), row["output"] or ""
            ),
            guard.hits(row["output"] or ""),
        )
        for row in picked
    ]
    summary = summarise(items)
    summary["guardrail_rate"] = _rate(guard, this_week)
    previous = _rate(guard, last_week) if last_week else None
    return store_run(
        project,
        name=name,
        version=version,
        kind="production",
        digest=digest,
        judge=judge.name,
        items=items,
        summary=summary,
        agreement=None,
        champion=(None, None),
        passed=None,
        kappa=(None, False),
        guardrail_previous=(previous, len(last_week)),
        scorecard=None,
        at=now,
    )


def _rate(guard: Guardrails, rows: list[dict[str, Any]]) -> float:
    return sum(bool(guard.hits(row["output"] or "")) for row in rows) / len(rows)
