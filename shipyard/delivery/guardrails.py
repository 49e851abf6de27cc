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
requests (the roll-out enforces those). Each check is JSON-ready: ``value`` (the
candidate's), ``champion``, ``limit``, ``verdict`` (``ok``, ``breach``, ``gathering`` or
``n/a``), ``samples``, ``required``, ``reason`` and, for the sequential tests, ``test``
(the :class:`~shipyard.delivery.sequential.Decision`).

The logs are read with DuckDB, one query per guardrail family over both sides: counts
and latency moments and quantiles, the drift histogram, the shadow pairs, the labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from shipyard.config import DeliverySettings
from shipyard.delivery.guardrail_window import (
    REGRESSION_TOLERANCE,
    Labelled,
    StepWindow,
    Task,
)
from shipyard.delivery.rollout import Rollout, step_kind
from shipyard.delivery.sequential import Decision, MeanStats, ProportionStats, SequentialTest
from shipyard.store import as_utc

__all__ = [
    "GUARDRAILS",
    "REGRESSION_TOLERANCE",
    "CheckVerdict",
    "GuardrailReport",
    "Task",
    "evaluate_guardrails",
    "format_value",
]

CheckVerdict = Literal["ok", "breach", "gathering", "n/a"]

GUARDRAILS: tuple[str, ...] = (
    "errors",
    "latency",
    "latency_p99",
    "prediction_drift",
    "disagreement",
    "quality",
)
"""The guardrails, in the order reports and the status view list them."""

# Guardrails that see a difference, not a fault: labels, when they come, have the last word.
_PROXIES = ("prediction_drift", "disagreement")
# A reference side this large has no variance: the two-sample test becomes a one-sample
# test of a rate against a fixed limit.
_FIXED = 10**9


@dataclass(frozen=True)
class GuardrailReport:
    """What the guardrails said for one step at one poll."""

    verdict: Literal["continue", "breach", "pass"]
    requests: int  # the candidate's, in this step
    reason: str
    checks: dict[str, dict[str, Any]]
    # Set when the champion answers nothing in the step (the candidate has all live
    # traffic): its side is then what it answered from this moment on.
    champion_since: datetime | None = None

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence for the roll-out history and alerts."""
        evidence: dict[str, Any] = {"reason": self.reason, "checks": self.checks}
        if self.champion_since is not None:
            evidence["champion_since"] = self.champion_since.isoformat()
        return evidence

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``rollout status --json``)."""
        return {"verdict": self.verdict, "requests": self.requests, **self.evidence()}


def evaluate_guardrails(
    root: Path,
    rollout: Rollout,
    *,
    since: datetime,
    settings: DeliverySettings | None = None,
    task: Task | None = None,
) -> GuardrailReport:
    """Compare the candidate with the champion over the step that began at ``since``.

    ``task`` is inferred from the logged outputs when not given (floats without class
    probabilities: a regressor). Labelled quality looks at everything since the
    roll-out began.
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
    task = task or _infer_task(champion, candidate)
    checks = {
        "errors": _errors(champion, candidate, limits),
        "latency": _latency(champion, candidate, limits),
        "latency_p99": _latency_p99(champion, candidate, limits),
        "prediction_drift": _drift(window.histogram(since, task, paired=shadow), limits),
        "disagreement": (
            _disagreement(window.disagreement(since, task), limits)
            if shadow
            else _na("Only in shadow steps, where both answer the same requests.")
        ),
        "quality": (
            _quality(window.quality(started), limits)
            if task == "classification"
            else _na("Labelled quality is checked for classifiers only.")
        ),
    }
    _weigh_by_labels(checks)
    return _report(checks, candidate["n"], limits.min_samples, baseline)


def _infer_task(champion: dict[str, Any], candidate: dict[str, Any]) -> Task:
    """Classifiers log labels (often with probabilities); regressors mostly log floats."""
    probabilities = champion["with_probabilities"] + candidate["with_probabilities"]
    floats = champion["floats"] + candidate["floats"]
    answered = champion["ok"] + candidate["ok"]
    return "regression" if not probabilities and 2 * floats > answered else "classification"


def _errors(
    champion: dict[str, Any], candidate: dict[str, Any], limits: DeliverySettings
) -> dict[str, Any]:
    decision = _test(limits, "proportion", limits.error_margin).decide(
        ProportionStats(champion["n"], champion["errors"]),
        ProportionStats(candidate["n"], candidate["errors"]),
    )
    base = _rate(champion["errors"], champion["n"])
    return _sequential(
        decision,
        value=_rate(candidate["errors"], candidate["n"]),
        champion=base,
        limit=None if base is None else base + limits.error_margin,
        samples=min(champion["n"], candidate["n"]),
        unit="share",
        limits=limits,
    )


def _latency(
    champion: dict[str, Any], candidate: dict[str, Any], limits: DeliverySettings
) -> dict[str, Any]:
    margin_ms = limits.latency_margin * max(champion["mean"], 1e-6)
    decision = _test(limits, "mean", margin_ms).decide(
        MeanStats(champion["ok"], champion["mean"], champion["var"]),
        MeanStats(candidate["ok"], candidate["mean"], candidate["var"]),
    )
    return _sequential(
        decision,
        value=candidate["mean"] if candidate["ok"] else None,
        champion=champion["mean"] if champion["ok"] else None,
        limit=champion["mean"] + margin_ms if champion["ok"] else None,
        samples=min(champion["ok"], candidate["ok"]),
        unit="ms",
        limits=limits,
    )


def _latency_p99(
    champion: dict[str, Any], candidate: dict[str, Any], limits: DeliverySettings
) -> dict[str, Any]:
    # Candidate above L = champion p99 × (1 + margin) against the champion above its p99.
    decision = _test(limits, "proportion", 0.0).decide(
        ProportionStats(champion["ok"], champion["above_p99"]),
        ProportionStats(candidate["ok"], candidate["above_limit"]),
    )
    line = champion["p99"]
    limit = None if line is None else line * (1 + limits.p99_margin)
    share = _rate(candidate["above_limit"], candidate["ok"])
    check = _sequential(
        decision,
        value=candidate["p99"],
        champion=line,
        limit=limit,
        samples=min(champion["ok"], candidate["ok"]),
        unit="ms",
        limits=limits,
        extra={
            "share_above_limit": share,
            "champion_share_above_p99": _rate(champion["above_p99"], champion["ok"]),
        },
    )
    if check["verdict"] != "gathering" and share is not None and limit is not None:
        verb = "; shown above 1 %" if check["verdict"] == "breach" else ""
        check["reason"] = (
            f"{100 * share:.3g} % of the candidate's requests are slower than {limit:.3g} ms "
            f"(the champion's p99 × {1 + limits.p99_margin:g}){verb}: always-valid "
            f"p = {decision.p_value:.3g}."
        )
    return check


def _drift(counts: dict[str, dict[Any, int]], limits: DeliverySettings) -> dict[str, Any]:
    from shipyard.monitoring.statistics import psi

    keys = sorted(set(counts["champion"]) | set(counts["candidate"]), key=str)
    a = [counts["champion"].get(key, 0) for key in keys]
    b = [counts["candidate"].get(key, 0) for key in keys]
    n_a, n_b = sum(a), sum(b)
    samples = min(n_a, n_b)
    limit = limits.max_prediction_drift
    if samples == 0:
        return _check(None, None, limit, "gathering", 0, True, "No predictions on a side yet.")
    value = float(psi(a, b)) if len(keys) > 1 else 0.0
    lower = _distance_lower_bound(a, b, limits.alpha, limit)
    extra = {"bins": len(keys), "lower": lower, "unit": "psi"}
    if samples < limits.min_samples:
        reason = f"Waiting for {limits.min_samples} predictions on each side ({samples} so far)."
        return _check(value, None, limit, "gathering", samples, True, reason, **extra)
    if lower > limit:
        reason = (
            f"Predictions drifted from the champion's: PSI {value:.3g}, always-valid lower "
            f"bound {lower:.3g} > {limit:g}."
        )
        return _check(value, None, limit, "breach", samples, True, reason, **extra)
    reason = f"PSI {value:.3g}; always-valid lower bound {lower:.3g} ≤ {limit:g}."
    return _check(value, None, limit, "ok", samples, True, reason, **extra)


def _distance_lower_bound(a: list[int], b: list[int], alpha: float, limit: float) -> float:
    """Always-valid lower bound of ``D = Σ (aᵢ − bᵢ)² / p̄ᵢ`` between two histograms."""
    n_a, n_b = sum(a), sum(b)
    pairs = [(x / n_a, y / n_b, (x + y) / (n_a + n_b)) for x, y in zip(a, b, strict=True)]
    distance = sum((x - y) ** 2 / p for x, y, p in pairs if p > 0)
    dims = max(len(pairs) - 1, 1)
    n = n_a * n_b / (n_a + n_b)
    spread = n * max(limit, 1e-3) / dims  # n τ², the mixture tuned to drifts near the limit
    radius = math.sqrt((1 + 1 / spread) * (2 * math.log(1 / alpha) + dims * math.log1p(spread)) / n)
    return max(0.0, math.sqrt(distance) - radius) ** 2


def _disagreement(pairs: ProportionStats, limits: DeliverySettings) -> dict[str, Any]:
    limit = limits.max_disagreement
    fixed = ProportionStats(_FIXED, round(_FIXED * limit))
    decision = _test(limits, "proportion", 0.0).decide(fixed, pairs)
    value = _rate(pairs.successes, pairs.count)
    check = _sequential(
        decision,
        value=value,
        champion=None,
        limit=limit,
        samples=pairs.count,
        unit="share",
        limits=limits,
    )
    if check["verdict"] != "gathering" and value is not None:
        verb = "shown above" if check["verdict"] == "breach" else "allowed up to"
        check["reason"] = (
            f"{100 * value:.3g} % of {pairs.count} shadow answers differ from live; "
            f"{verb} {100 * limit:g} %: always-valid p = {decision.p_value:.3g}."
        )
    return check


def _quality(labelled: Labelled | None, limits: DeliverySettings) -> dict[str, Any]:
    arriving = 0 if labelled is None else labelled.arriving
    if labelled is None or not any(side.count for side in labelled.sides.values()):
        reason = "No labels yet."
        if arriving:
            reason = f"No labels yet for its predictions ({arriving} arrived for earlier ones)."
        return _check(
            None,
            None,
            None,
            "gathering",
            0,
            False,
            reason,
            unit="share",
            labelled=0,
            arriving=arriving,
        )
    champion, candidate = labelled.sides["champion"], labelled.sides["candidate"]
    decision = _test(limits, "proportion", limits.quality_margin).decide(champion, candidate)
    base = _rate(champion.successes, champion.count)
    check = _sequential(
        decision,
        value=_rate(candidate.successes, candidate.count),
        champion=base,
        limit=None if base is None else base + limits.quality_margin,
        samples=min(champion.count, candidate.count),
        unit="share",
        limits=limits,
    )
    # Its own predictions are being labelled: the step passes only once the labels show
    # the candidate not worse (the test's own "pass"), not merely after min_samples.
    if check["verdict"] == "ok" and decision.verdict != "pass":
        check["verdict"] = "gathering"
        check["reason"] = (
            f"{decision.reason} Waiting for the labels to show the candidate not worse "
            f"by more than {100 * limits.quality_margin:g} points."
        )
    return {**check, "labelled": champion.count + candidate.count, "arriving": arriving}


def _weigh_by_labels(checks: dict[str, dict[str, Any]]) -> None:
    """Let labels judge a candidate that only answers differently from the champion.

    Drift and disagreement say the candidate answers differently, not which side is
    right, and a retrain after the world changed *should* answer differently. So once
    labels arrive (for any request since the roll-out began: they will come for its
    predictions too), their breaches wait for the quality test: excused when it shows
    the candidate not worse, held (gathering) while it has too few labels, standing
    otherwise. Without any label they act alone.
    """
    quality = checks["quality"]
    if quality["verdict"] == "n/a" or not (quality.get("labelled") or quality.get("arriving")):
        return
    not_worse = quality["verdict"] == "ok" and quality["test"]["verdict"] == "pass"
    for name in _PROXIES:
        check = checks[name]
        if check["verdict"] != "breach":
            continue
        if not_worse:
            check["verdict"], check["excused_by"] = "ok", "quality"
            check["reason"] += (
                f" Excused: the labels show the candidate not worse ({quality['reason']})"
            )
        elif quality["verdict"] == "gathering":
            check["verdict"], check["held_for"] = "gathering", "quality"
            check["reason"] += f" Held for the labels to judge: {quality['reason']}"


def _test(
    limits: DeliverySettings, kind: Literal["proportion", "mean"], margin: float
) -> SequentialTest:
    return SequentialTest(
        alpha=limits.alpha,
        margin=margin,
        min_samples=limits.min_samples,
        kind=kind,
        direction="lower_is_better",
    )


def _sequential(
    decision: Decision,
    *,
    value: float | None,
    champion: float | None,
    limit: float | None,
    samples: int,
    unit: str,
    limits: DeliverySettings,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A check from an always-valid test's decision: breach, or enough evidence, or not."""
    verdict: CheckVerdict
    if decision.verdict == "breach":
        verdict = "breach"
    elif samples < limits.min_samples:
        verdict = "gathering"
    else:
        verdict = "ok"
    return _check(
        value,
        champion,
        limit,
        verdict,
        samples,
        True,
        decision.reason,
        unit=unit,
        p_value=decision.p_value,
        test=decision.to_dict(),
        **(extra or {}),
    )


def _check(
    value: float | None,
    champion: float | None,
    limit: float | None,
    verdict: CheckVerdict,
    samples: int,
    required: bool,
    reason: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "value": value,
        "champion": champion,
        "limit": limit,
        "verdict": verdict,
        "samples": samples,
        "required": required,
        "reason": reason,
        **extra,
    }


def _na(reason: str) -> dict[str, Any]:
    return _check(None, None, None, "n/a", 0, False, reason)


def _report(
    checks: dict[str, dict[str, Any]],
    requests: int,
    min_samples: int,
    baseline: datetime | None,
) -> GuardrailReport:
    breached = [name for name, check in checks.items() if check["verdict"] == "breach"]
    if breached:
        what = "; ".join(_describe(name, checks[name]) for name in breached)
        return GuardrailReport("breach", requests, what, checks, baseline)
    waiting = [
        name
        for name, check in checks.items()
        if check["required"] and check["verdict"] == "gathering"
    ]
    if waiting:
        fewest = min(checks[name]["samples"] for name in waiting)
        reason = (
            f"gathering evidence: {fewest} of {min_samples} observations per side "
            f"({', '.join(waiting)})"
        )
        return GuardrailReport("continue", requests, reason, checks, baseline)
    return GuardrailReport("pass", requests, "no guardrail breached", checks, baseline)


def _describe(name: str, check: dict[str, Any]) -> str:
    """``latency_p99: candidate 41.2 ms vs limit 15.1 ms (champion 10.1 ms), p = 0.002``."""
    unit = check.get("unit", "")
    text = f"{name}: candidate {format_value(check['value'], unit)}"
    text += f" vs limit {format_value(check['limit'], unit)}"
    if check.get("champion") is not None:
        text += f" (champion {format_value(check['champion'], unit)})"
    if check.get("p_value") is not None:
        text += f", always-valid p = {check['p_value']:.3g}"
    elif check.get("lower") is not None:
        text += f", always-valid lower bound {check['lower']:.3g}"
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


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _started(rollout: Rollout, fallback: datetime) -> datetime:
    """When the roll-out began: its first history entry."""
    if rollout.history:
        return as_utc(datetime.fromisoformat(str(rollout.history[0]["at"])))
    return fallback
