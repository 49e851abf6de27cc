"""Guardrails of a roll-out step, from the prediction and label logs: candidate against champion.

For the step's window (from when the step began), the prediction log gives each side's
requests: the champion's live predictions, and the candidate's live ones (canary,
blue/green) or shadow ones (shadow steps). In a step where the candidate takes all live
traffic (canary 100 %, blue/green's switch), the champion answers nothing, so its side
is what it answered from one step's length before the roll-out began. Every guardrail is
safe to check at every poll: each is an always-valid test, so looking again and again
during a step does not raise false alarms (see :mod:`shipyard.delivery.sequential`).
Limits come from ``delivery:`` in ``shipyard.yaml``
(:class:`~shipyard.config.DeliverySettings`).

- **errors**: the share of the candidate's predictions that failed (a shadow that
  raised) against the champion's, with a margin of ``error_margin``.
- **latency**: the candidate's mean latency against the champion's, with a margin of
  ``latency_margin`` times the champion's mean.
- **latency_p99**: the share of the candidate's requests slower than the line
  ``L = champion p99 × (1 + p99_margin)``, against the champion's share above its own
  p99 (1 % by definition), as a proportion test with no further margin. The candidate's
  p99 exceeds ``L`` exactly when more than 1 % of its requests do, so a breach says the
  candidate's p99 is above the limit. The line is the champion's p99 in the step so far,
  re-estimated at each look; to first order (Bahadur's representation of a sample
  quantile) the champion's count above its estimated p99 carries that estimate's
  noise, and the candidate's count above ``L`` behaves as a count above a fixed line,
  so the pair is a difference of Bernoulli sums like the error rates, and the plug-in
  binomial variances are the right ones at the null boundary (a candidate that is the
  champion slowed by exactly ``1 + p99_margin``). Simulated with 100 looks per step,
  alpha 5 %: 2.9 % false alarms, both for equal latencies with ``p99_margin`` 0 and on
  that boundary.
- **prediction_drift**: the population stability index (PSI) between the two sides'
  predicted values: per predicted class for classifiers, on the champion's deciles for
  regressors. In a shadow step only requests that both answered are compared (the
  same requests). It breaches when an always-valid *lower bound* of the drift exceeds
  ``max_prediction_drift``: with ``D = Σ (aᵢ − bᵢ)² / p̄ᵢ`` (the shares of each bin on
  either side, ``p̄`` pooled; PSI ≥ D, the two agreeing for small drift) and the
  effective size ``n = nₐ·n_b / (nₐ + n_b)``, ``√D`` lies within
  ``r = √((1 + 1/(nτ²)) · (2 log(1/alpha) + d · log(1 + nτ²)) / n)`` of the truth at
  every look with probability ``1 − alpha`` (the confidence sequence of the normal
  mixture over the ``d = bins − 1`` dimensional difference, ``τ² = limit/d``), so the
  breach needs ``(√D − r)² > max_prediction_drift``. Conservative at small samples by
  design: a step is not rolled back on the noise in a hundred predictions.
- **disagreement** (shadow steps): shadow and live rows joined by request id; the
  share whose prediction differs (classifiers: another label; regressors: a relative
  difference above :data:`REGRESSION_TOLERANCE` of the larger magnitude). It breaches
  when an always-valid test shows the share above ``max_disagreement``.
- **quality** (classifiers, once labels arrive): the share of wrong predictions among
  those labelled (labels joined by request id, the latest label of each), candidate
  against champion with a margin of ``quality_margin``. Labels lag, often beyond one
  step, so this guardrail looks at every prediction since the roll-out began, one
  growing experiment rather than one per step. Without labels for those predictions it
  reports "no labels yet" and is not required, so slow labels never hold a step; once
  some arrive it is required: "gathering" until ``min_samples`` labels per side *and*
  the test shows the candidate not worse by more than ``quality_margin``, so a step
  cannot pass on a handful of labels that have not decided yet.

Drift and disagreement see a difference, not a fault: a retrain after the world changed
*should* answer differently from the champion. So once labels are arriving (any label
since the roll-out began, even for earlier requests: its own will follow), their
breaches wait for the quality test: excused when it shows the candidate not worse
(``excused_by: quality``), held as "gathering" while it has fewer than ``min_samples``
labels per side (``held_for: quality``), and standing otherwise. Without labels they
act alone.

Any other breach is a breach. Until each required guardrail has ``min_samples``
observations (per side, or pairs for disagreement) there is not enough evidence to pass;
after that the step may pass once it has also lasted its duration and served its minimum
requests (the roll-out enforces those). Each check is a
:class:`~shipyard.delivery.guardrail_registry.GuardrailCheck`, JSON-ready: ``value`` (the
candidate's), ``champion``, ``limit``, ``verdict`` (``ok``, ``breach``, ``gathering`` or
``n/a``), ``samples``, ``required``, ``reason`` and, for the sequential tests, ``test``
(the :class:`~shipyard.delivery.sequential.Decision`).

A step whose prediction log is known to have lost rows (see
:mod:`shipyard.logs.losses`) says so in its report (``log_coverage``); below
``min_log_coverage`` (``monitoring.min_log_coverage``) its verdict is ``continue``,
whatever the checks say: neither a breach nor a pass rests on an incomplete window.

Each guardrail above is a class registered in
:mod:`~shipyard.delivery.guardrail_registry`, where another one is added. The logs are
read with DuckDB, one query per guardrail family over both sides: counts and latency
moments and quantiles (once, shared), the drift histogram, the shadow pairs, the labels.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from shipyard.config import DeliverySettings
from shipyard.delivery.builtin_guardrails import JUDGE  # and registers the built-ins
from shipyard.delivery.builtin_guardrails import (  # where its statistical test finds it
    _distance_lower_bound as _distance_lower_bound,
)
from shipyard.delivery.guardrail_registry import (
    CheckVerdict,
    GuardrailCheck,
    StepLogs,
    registered_guardrails,
)
from shipyard.delivery.guardrail_window import REGRESSION_TOLERANCE, SideStats, StepWindow, Task
from shipyard.delivery.rollout import Rollout, step_kind
from shipyard.logs.losses import LogCoverage, log_coverage
from shipyard.moments import as_utc
from shipyard.storage.location import Location

__all__ = [
    "GUARDRAILS",
    "REGRESSION_TOLERANCE",
    "CheckVerdict",
    "GuardrailCheck",
    "GuardrailReport",
    "Task",
    "evaluate_guardrails",
    "format_value",
]

GUARDRAILS: tuple[str, ...] = tuple(g.name for g in registered_guardrails())
"""The built-in guardrails, in the order reports and the status view list them."""


@dataclass(frozen=True)
class GuardrailReport:
    """What the guardrails said for one step at one poll."""

    verdict: Literal["continue", "breach", "pass"]
    requests: int  # the candidate's, in this step
    reason: str
    checks: dict[str, GuardrailCheck]
    # Set when the champion answers nothing in the step (the candidate has all live
    # traffic): its side is then what it answered from this moment on.
    champion_since: datetime | None = None
    coverage: LogCoverage | None = None  # of the step's window in the prediction log

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence for the roll-out history and alerts."""
        checks = {name: check.to_dict() for name, check in self.checks.items()}
        evidence: dict[str, Any] = {"reason": self.reason, "checks": checks}
        if self.champion_since is not None:
            evidence["champion_since"] = self.champion_since.isoformat()
        if self.coverage is not None and not self.coverage.complete:
            evidence["log_coverage"] = self.coverage.to_dict()
        return evidence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``rollout status --json``)."""
        return {"verdict": self.verdict, "requests": self.requests, **self.evidence()}


def evaluate_guardrails(
    root: Path | Location,
    rollout: Rollout,
    *,
    since: datetime,
    settings: DeliverySettings | None = None,
    task: Task | None = None,
    min_log_coverage: float = 0.99,
) -> GuardrailReport:
    """Compare the candidate with the champion over the step that began at ``since``.

    Every registered guardrail runs, in order. ``task`` is inferred from the logged
    outputs when not given (floats without class probabilities: a regressor).
    Labelled quality looks at everything since the roll-out began. Below
    ``min_log_coverage`` of the step's answered rows in the log, the verdict is
    ``continue``.
    """
    limits = settings or DeliverySettings.model_validate({})
    since = as_utc(since)
    shadow = step_kind(rollout.strategy, rollout.step_index) == "shadow"
    started = _started(rollout, since)
    # All live traffic on the candidate: the champion answers nothing in this step, so its
    # side is what it answered from one step's length before the roll-out began.
    full = not shadow and rollout.step >= 100.0
    baseline = started - timedelta(seconds=rollout.step_seconds) if full else None
    window = StepWindow(root, rollout, "shadow" if shadow else "live", baseline)
    champion, candidate = window.sides(since, limits.p99_margin)
    step = StepLogs(
        rollout=rollout,
        since=since,
        started=started,
        shadow=shadow,
        task=task or _infer_task(champion, candidate),
        limits=limits,
        window=window,
        champion=champion,
        candidate=candidate,
    )
    guardrails = registered_guardrails()
    checks = {guardrail.name: guardrail.check(step) for guardrail in guardrails}
    _weigh_by_labels(checks, [g.name for g in guardrails if g.proxy])
    report = _report(checks, candidate.n, limits.min_samples, baseline)
    coverage = log_coverage(
        root,
        rollout.model,
        champion.n + candidate.n,
        since=baseline if baseline is not None and baseline < since else since,
        versions=[v for v in (rollout.champion, rollout.candidate) if v is not None],
        roles=("live", "shadow") if shadow else ("live",),
    )
    return _with_coverage(report, coverage, min_log_coverage)


def _with_coverage(
    report: GuardrailReport, coverage: LogCoverage, minimum: float
) -> GuardrailReport:
    """The report with its window's log coverage; held at ``continue`` below ``minimum``."""
    if coverage.complete:
        return replace(report, coverage=coverage)
    if coverage.enough(minimum):
        reason = f"{report.reason} (note: {coverage.describe()})"
        return replace(report, reason=reason, coverage=coverage)
    reason = (
        f"the step's window is incomplete, so no verdict acts on it: {coverage.describe()}, "
        f"below monitoring.min_log_coverage {minimum:.1%} (the checks said: {report.reason})"
    )
    return replace(report, verdict="continue", reason=reason, coverage=coverage)


def _infer_task(champion: SideStats, candidate: SideStats) -> Task:
    """Classifiers log labels (often with probabilities); regressors mostly log floats."""
    probabilities = champion.with_probabilities + candidate.with_probabilities
    floats = champion.floats + candidate.floats
    answered = champion.ok + candidate.ok
    return "regression" if not probabilities and 2 * floats > answered else "classification"


def _weigh_by_labels(checks: dict[str, GuardrailCheck], proxies: list[str]) -> None:
    """Let labels judge a candidate that only answers differently from the champion.

    The proxies (drift, disagreement) say the candidate answers differently, not which
    side is right, and a retrain after the world changed *should* answer differently.
    So once labels arrive (for any request since the roll-out began: they will come for
    its predictions too), their breaches wait for the quality test: excused when it
    shows the candidate not worse, held (gathering) while it has too few labels,
    standing otherwise. Without any label they act alone.
    """
    quality = checks.get(JUDGE)
    if quality is None or quality.verdict == "n/a":
        return
    if not (quality.details.get("labelled") or quality.details.get("arriving")):
        return
    not_worse = (
        quality.verdict == "ok" and quality.test is not None and quality.test.verdict == "pass"
    )
    for name in proxies:
        check = checks[name]
        if check.verdict != "breach":
            continue
        if not_worse:
            checks[name] = replace(
                check,
                verdict="ok",
                excused_by=JUDGE,
                reason=check.reason
                + f" Excused: the labels show the candidate not worse ({quality.reason})",
            )
        elif quality.verdict == "gathering":
            checks[name] = replace(
                check,
                verdict="gathering",
                held_for=JUDGE,
                reason=check.reason + f" Held for the labels to judge: {quality.reason}",
            )


def _report(
    checks: dict[str, GuardrailCheck],
    requests: int,
    min_samples: int,
    baseline: datetime | None,
) -> GuardrailReport:
    breached = [name for name, check in checks.items() if check.verdict == "breach"]
    if breached:
        what = "; ".join(_describe(name, checks[name]) for name in breached)
        return GuardrailReport("breach", requests, what, checks, baseline)
    waiting = [
        name for name, check in checks.items() if check.required and check.verdict == "gathering"
    ]
    if waiting:
        fewest = min(checks[name].samples for name in waiting)
        reason = (
            f"gathering evidence: {fewest} of {min_samples} observations per side "
            f"({', '.join(waiting)})"
        )
        return GuardrailReport("continue", requests, reason, checks, baseline)
    return GuardrailReport("pass", requests, "no guardrail breached", checks, baseline)


def _describe(name: str, check: GuardrailCheck) -> str:
    """``latency_p99: candidate 41.2 ms vs limit 15.1 ms (champion 10.1 ms), p = 0.002``."""
    unit = check.unit or ""
    text = f"{name}: candidate {format_value(check.value, unit)}"
    text += f" vs limit {format_value(check.limit, unit)}"
    if check.champion is not None:
        text += f" (champion {format_value(check.champion, unit)})"
    if check.p_value is not None:
        text += f", always-valid p = {check.p_value:.3g}"
    elif check.details.get("lower") is not None:
        text += f", always-valid lower bound {check.details['lower']:.3g}"
    return text


def format_value(value: float | None, unit: str) -> str:
    """A check's number for people: ``2.1 %``, ``14.2 ms``, ``0.213``, or ``–``."""
    if value is None:
        return "–"
    if unit == "share":
        return f"{100 * value:.3g} %"
    if unit == "ms":
        return f"{value:.3g} ms"
    return f"{value:.3g}"


def _started(rollout: Rollout, fallback: datetime) -> datetime:
    """When the roll-out began: its first history entry."""
    if rollout.history:
        return as_utc(datetime.fromisoformat(str(rollout.history[0]["at"])))
    return fallback
