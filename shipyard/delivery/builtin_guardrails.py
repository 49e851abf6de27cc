"""The built-in guardrails, registered in the order reports list them.

What each one checks, and why it is safe to check at every poll, is told in
:mod:`shipyard.delivery.guardrails`; how to add another, in
:mod:`shipyard.delivery.guardrail_registry`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from shipyard.delivery.guardrail_registry import (
    CheckVerdict,
    Guardrail,
    GuardrailCheck,
    StepLogs,
    register,
)
from shipyard.delivery.guardrail_window import Labelled
from shipyard.delivery.sequential import MeanStats, ProportionStats, SequentialTest

if TYPE_CHECKING:
    from shipyard.config import DeliverySettings

__all__ = [
    "JUDGE",
    "Disagreement",
    "Errors",
    "Latency",
    "LatencyP99",
    "PredictionDrift",
    "Quality",
]

JUDGE = "quality"
"""The guardrail whose labels judge the proxies' breaches (see ``Guardrail.proxy``)."""
# A reference side this large has no variance: the two-sample test becomes a one-sample
# test of a rate against a fixed limit.
_FIXED = 10**9


@register
class Errors(Guardrail):
    """The candidate's share of failed predictions against the champion's."""

    name = "errors"

    def check(self, step: StepLogs) -> GuardrailCheck:
        """Failed shares, with a margin of ``error_margin``."""
        champion, candidate, limits = step.champion, step.candidate, step.limits
        decision = _test(limits, "proportion", limits.error_margin).decide(
            ProportionStats(champion.n, champion.errors),
            ProportionStats(candidate.n, candidate.errors),
        )
        base = _rate(champion.errors, champion.n)
        return GuardrailCheck.from_decision(
            decision,
            value=_rate(candidate.errors, candidate.n),
            champion=base,
            limit=None if base is None else base + limits.error_margin,
            samples=min(champion.n, candidate.n),
            unit="share",
            min_samples=limits.min_samples,
        )


@register
class Latency(Guardrail):
    """The candidate's mean latency against the champion's."""

    name = "latency"

    def check(self, step: StepLogs) -> GuardrailCheck:
        """Mean latencies, with a margin of ``latency_margin`` times the champion's."""
        champion, candidate, limits = step.champion, step.candidate, step.limits
        margin_ms = limits.latency_margin * max(champion.mean, 1e-6)
        decision = _test(limits, "mean", margin_ms).decide(
            MeanStats(champion.ok, champion.mean, champion.var),
            MeanStats(candidate.ok, candidate.mean, candidate.var),
        )
        return GuardrailCheck.from_decision(
            decision,
            value=candidate.mean if candidate.ok else None,
            champion=champion.mean if champion.ok else None,
            limit=champion.mean + margin_ms if champion.ok else None,
            samples=min(champion.ok, candidate.ok),
            unit="ms",
            min_samples=limits.min_samples,
        )


@register
class LatencyP99(Guardrail):
    """The candidate's share slower than the champion's p99 × (1 + ``p99_margin``)."""

    name = "latency_p99"

    def check(self, step: StepLogs) -> GuardrailCheck:
        """Candidate above L = champion p99 × (1 + margin) against the champion above its p99."""
        champion, candidate, limits = step.champion, step.candidate, step.limits
        decision = _test(limits, "proportion", 0.0).decide(
            ProportionStats(champion.ok, champion.above_p99),
            ProportionStats(candidate.ok, candidate.above_limit),
        )
        line = champion.p99
        limit = None if line is None else line * (1 + limits.p99_margin)
        share = _rate(candidate.above_limit, candidate.ok)
        check = GuardrailCheck.from_decision(
            decision,
            value=candidate.p99,
            champion=line,
            limit=limit,
            samples=min(champion.ok, candidate.ok),
            unit="ms",
            min_samples=limits.min_samples,
            details={
                "share_above_limit": share,
                "champion_share_above_p99": _rate(champion.above_p99, champion.ok),
            },
        )
        if check.verdict == "gathering" or share is None or limit is None:
            return check
        verb = "; shown above 1 %" if check.verdict == "breach" else ""
        return replace(
            check,
            reason=(
                f"{100 * share:.3g} % of the candidate's requests are slower than {limit:.3g} "
                f"ms (the champion's p99 × {1 + limits.p99_margin:g}){verb}: always-valid "
                f"p = {decision.p_value:.3g}."
            ),
        )


@register
class PredictionDrift(Guardrail):
    """The PSI between both sides' predicted values, by an always-valid lower bound."""

    name = "prediction_drift"
    proxy = True

    def check(self, step: StepLogs) -> GuardrailCheck:
        """Breach when the lower bound of the drift exceeds ``max_prediction_drift``."""
        from shipyard.monitoring.statistics import psi

        counts = step.window.histogram(step.since, step.task, paired=step.shadow)
        limits = step.limits
        keys = sorted(set(counts["champion"]) | set(counts["candidate"]), key=str)
        a = [counts["champion"].get(key, 0) for key in keys]
        b = [counts["candidate"].get(key, 0) for key in keys]
        samples = min(sum(a), sum(b))
        limit = limits.max_prediction_drift
        if samples == 0:
            return GuardrailCheck(
                None, None, limit, "gathering", 0, True, "No predictions on a side yet."
            )
        value = float(psi(a, b)) if len(keys) > 1 else 0.0
        lower = _distance_lower_bound(a, b, limits.alpha, limit)
        verdict: CheckVerdict
        if samples < limits.min_samples:
            verdict = "gathering"
            reason = (
                f"Waiting for {limits.min_samples} predictions on each side ({samples} so far)."
            )
        elif lower > limit:
            verdict = "breach"
            reason = (
                f"Predictions drifted from the champion's: PSI {value:.3g}, always-valid lower "
                f"bound {lower:.3g} > {limit:g}."
            )
        else:
            verdict = "ok"
            reason = f"PSI {value:.3g}; always-valid lower bound {lower:.3g} ≤ {limit:g}."
        details = {"bins": len(keys), "lower": lower}
        return GuardrailCheck(
            value, None, limit, verdict, samples, True, reason, unit="psi", details=details
        )


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


@register
class Disagreement(Guardrail):
    """In shadow steps: the share of requests the shadow answers differently from live."""

    name = "disagreement"
    proxy = True

    def check(self, step: StepLogs) -> GuardrailCheck:
        """Breach when an always-valid test shows the share above ``max_disagreement``."""
        if not step.shadow:
            return GuardrailCheck.not_applicable(
                "Only in shadow steps, where both answer the same requests."
            )
        pairs = step.window.disagreement(step.since, step.task)
        limits = step.limits
        limit = limits.max_disagreement
        fixed = ProportionStats(_FIXED, round(_FIXED * limit))
        decision = _test(limits, "proportion", 0.0).decide(fixed, pairs)
        value = _rate(pairs.successes, pairs.count)
        check = GuardrailCheck.from_decision(
            decision,
            value=value,
            champion=None,
            limit=limit,
            samples=pairs.count,
            unit="share",
            min_samples=limits.min_samples,
        )
        if check.verdict == "gathering" or value is None:
            return check
        verb = "shown above" if check.verdict == "breach" else "allowed up to"
        return replace(
            check,
            reason=(
                f"{100 * value:.3g} % of {pairs.count} shadow answers differ from live; "
                f"{verb} {100 * limit:g} %: always-valid p = {decision.p_value:.3g}."
            ),
        )


@register
class Quality(Guardrail):
    """Classifiers, once labels arrive: the share of wrong predictions, both sides."""

    name = JUDGE

    def check(self, step: StepLogs) -> GuardrailCheck:
        """Wrong shares since the roll-out began, with a margin of ``quality_margin``."""
        if step.task != "classification":
            return GuardrailCheck.not_applicable(
                "Labelled quality is checked for classifiers only."
            )
        return _quality(step.window.quality(step.started), step.limits)


def _quality(labelled: Labelled | None, limits: DeliverySettings) -> GuardrailCheck:
    arriving = 0 if labelled is None else labelled.arriving
    if labelled is None or not any(side.count for side in labelled.sides.values()):
        reason = "No labels yet."
        if arriving:
            reason = f"No labels yet for its predictions ({arriving} arrived for earlier ones)."
        details = {"labelled": 0, "arriving": arriving}
        return GuardrailCheck(
            None, None, None, "gathering", 0, False, reason, unit="share", details=details
        )
    champion, candidate = labelled.sides["champion"], labelled.sides["candidate"]
    decision = _test(limits, "proportion", limits.quality_margin).decide(champion, candidate)
    base = _rate(champion.successes, champion.count)
    check = GuardrailCheck.from_decision(
        decision,
        value=_rate(candidate.successes, candidate.count),
        champion=base,
        limit=None if base is None else base + limits.quality_margin,
        samples=min(champion.count, candidate.count),
        unit="share",
        min_samples=limits.min_samples,
        details={"labelled": champion.count + candidate.count, "arriving": arriving},
    )
    # Its own predictions are being labelled: the step passes only once the labels show
    # the candidate not worse (the test's own "pass"), not merely after min_samples.
    if check.verdict == "ok" and decision.verdict != "pass":
        return replace(
            check,
            verdict="gathering",
            reason=(
                f"{decision.reason} Waiting for the labels to show the candidate not worse "
                f"by more than {100 * limits.quality_margin:g} points."
            ),
        )
    return check


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


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
