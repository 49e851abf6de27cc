"""Production judge runs: a sample of a version's answers this week, read from the trace log.

One answer per request: the ``gateway`` span's output (the answer as the client saw it),
and the messages the ``provider.call`` span sent; live traffic only (every role the
gateway writes but ``shadow``), answered without error. A cache hit has no provider
call, so it is counted for the guardrails but not judged. Each sampled answer is judged
against the gold item whose input is the request's last user message when there is one,
else against the messages sent (grounding: a number the answer states that the request
never gave is a hallucination). Guardrail hits are counted over *every* answer of this
week and of the week before: the week-on-week signal needs no judge.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from shipyard.errors import EvaluationError
from shipyard.llm.evals_store import WEEK, ItemResult, LlmEvaluation, store_run, summarise
from shipyard.llm.judges import Guardrails, Judge

if TYPE_CHECKING:
    from shipyard.project import Project

__all__ = ["production_answers", "production_run"]

_SQL = """
SELECT request_id, time, name, input, output
FROM log
WHERE version = {version} AND role <> 'shadow' AND status = 'ok'
  AND name IN ('gateway', 'provider.call') AND time >= {since} AND time < {until}
ORDER BY time, request_id, CASE name WHEN 'gateway' THEN 0 ELSE 1 END
"""


def production_answers(
    project: Project, name: str, version: str, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """One ``{request_id, time, question, context, output}`` per answered live request in
    [since, until): the answer from the ``gateway`` span (else ``provider.call``), the
    messages sent from the ``provider.call`` span (none on a cache hit)."""
    import shipyard.logs.traces  # noqa: F401  (registers the traces log kind)
    from shipyard.logs.reader import query_log, sql_literal
    from shipyard.logs.root import project_log_root

    sql = _SQL.format(
        version=sql_literal(version),
        since=f"TIMESTAMPTZ {sql_literal(since.isoformat())}",
        until=f"TIMESTAMPTZ {sql_literal(until.isoformat())}",
    )
    table = query_log(project_log_root(project.config), name, kind="traces", since=since, sql=sql)
    requests: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        found = requests.setdefault(
            row["request_id"],
            {"request_id": row["request_id"], "time": row["time"], "output": None,
             "question": None, "context": None},
        )  # fmt: skip
        if row["name"] == "gateway" or found["output"] is None:
            found["output"] = row["output"] or ""
        if row["name"] == "provider.call" and row["input"] and found["context"] is None:
            found["question"], found["context"] = _messages(row["input"])
    return list(requests.values())


def _messages(text: str) -> tuple[str, str]:
    """The last user message and every message's text, from a span's input."""
    try:
        messages = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text, text
    if not isinstance(messages, list):
        return text, text
    contents = [str(m.get("content") or "") for m in messages if isinstance(m, dict)]
    users = [
        str(m.get("content") or "")
        for m in messages
        if isinstance(m, dict) and m.get("role") == "user"
    ]
    return (users[-1] if users else ""), " ".join(contents)


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
    judgeable = [row for row in this_week if row["context"] is not None]  # not cache hits
    rng = np.random.default_rng(0)
    picked = (
        judgeable
        if len(judgeable) <= size
        else [judgeable[i] for i in sorted(rng.choice(len(judgeable), size, replace=False))]
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
            row["output"],
            judge.verdict(references.get(row["question"], row["context"]), row["output"]),
            guard.hits(row["output"]),
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
    return sum(bool(guard.hits(row["output"])) for row in rows) / len(rows)
