"""Guardrails of a roll-out step, from the prediction log: candidate against champion.

For the step's window (from when the step began), the log gives each side's request
count, failures and latencies: the champion's live predictions, and the candidate's
live ones (canary, blue/green) or shadow ones (shadow steps). Two always-valid
sequential tests compare them, so the agent may check at every poll:

- **errors**: the share of the candidate's predictions that failed (a shadow that
  raised), against the champion's, with a margin of ``error_margin``;
- **latency**: the candidate's mean latency against the champion's, with a margin of
  ``latency_margin`` times the champion's mean.

Any breach is a breach. Until each side has ``min_samples`` requests in the step there
is not enough evidence to pass; after that the step may pass once it has also lasted
its duration and served its minimum requests (the roll-out enforces those).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from shipyard.delivery.rollout import Rollout
from shipyard.delivery.sequential import MeanStats, ProportionStats, SequentialTest

__all__ = ["GuardrailReport", "evaluate_guardrails"]


@dataclass(frozen=True)
class GuardrailReport:
    """What the guardrails said for one step at one poll."""

    verdict: Literal["continue", "breach", "pass"]
    requests: int  # the candidate's, in this step
    reason: str
    checks: dict[str, dict[str, Any]]

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence for the roll-out history and alerts."""
        return {"reason": self.reason, "checks": self.checks}


def evaluate_guardrails(
    root: Path,
    rollout: Rollout,
    *,
    since: datetime,
    error_margin: float = 0.01,
    latency_margin: float = 0.25,
    alpha: float = 0.05,
    min_samples: int = 100,
) -> GuardrailReport:
    """Compare the candidate with the champion over the step that began at ``since``."""
    from shipyard.delivery.rollout import step_kind

    shadow = step_kind(rollout.strategy, rollout.step_index) == "shadow"
    champion = _side(root, rollout.model, rollout.champion, "live", since)
    candidate = _side(root, rollout.model, rollout.candidate, "shadow" if shadow else "live", since)
    errors = SequentialTest(
        alpha=alpha,
        margin=error_margin,
        min_samples=min_samples,
        kind="proportion",
        direction="lower_is_better",
    ).decide(
        ProportionStats(champion["n"], champion["errors"]),
        ProportionStats(candidate["n"], candidate["errors"]),
    )
    latency_margin_ms = latency_margin * max(champion["mean"], 1e-6)
    latency = SequentialTest(
        alpha=alpha,
        margin=latency_margin_ms,
        min_samples=min_samples,
        kind="mean",
        direction="lower_is_better",
    ).decide(
        MeanStats(champion["ok"], champion["mean"], champion["var"]),
        MeanStats(candidate["ok"], candidate["mean"], candidate["var"]),
    )
    checks = {
        "errors": {**errors.to_dict(), "champion": champion, "candidate": candidate},
        "latency": {**latency.to_dict(), "margin_ms": latency_margin_ms},
    }
    tests = (("errors", errors), ("latency", latency))
    breached = [name for name, d in tests if d.verdict == "breach"]
    if breached:
        what = "; ".join(
            f"{name}: candidate worse by {d.difference:.4g} (always-valid p = {d.p_value:.3g})"
            for name, d in tests
            if name in breached
        )
        return GuardrailReport("breach", candidate["n"], what, checks)
    fewest = min(champion["ok"], candidate["ok"], champion["n"], candidate["n"])
    if fewest < min_samples:
        reason = f"gathering evidence: {fewest} of {min_samples} requests per side"
        return GuardrailReport("continue", candidate["n"], reason, checks)
    return GuardrailReport("pass", candidate["n"], "no guardrail breached", checks)


def _side(
    root: Path, model: str, version: str | None, role: str, since: datetime
) -> dict[str, Any]:
    """Counts and latency moments of one version's predictions since ``since``."""
    from shipyard.serving.log_query import query_log

    empty = {"n": 0, "errors": 0, "ok": 0, "mean": 0.0, "var": 0.0}
    if version is None:
        return empty
    sql = (
        "SELECT count(*) AS n, count(*) FILTER (WHERE status <> 'ok') AS errors, "
        "count(*) FILTER (WHERE status = 'ok') AS ok, "
        "avg(latency_ms) FILTER (WHERE status = 'ok') AS mean, "
        "var_samp(latency_ms) FILTER (WHERE status = 'ok') AS var FROM log "
        f"WHERE version = '{version.replace(chr(39), chr(39) * 2)}' AND role = '{role}'"
    )
    row = query_log(root, model, since=since, sql=sql).to_pylist()[0]
    return {
        "n": int(row["n"] or 0),
        "errors": int(row["errors"] or 0),
        "ok": int(row["ok"] or 0),
        "mean": float(row["mean"] or 0.0),
        "var": float(row["var"] or 0.0),
    }
