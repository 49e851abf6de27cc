"""Guards against retraining on noise: a cooldown, a minimum of new data, a real loss,
and a loss worth more than the retrain.

Each guard returns a decision with its evidence. A trigger that fails the cooldown, the
minimum of new data (since the champion trained, ``ct.min_new_rows``, or since the
drift trigger fired, ``ct.rows_after_trigger``) is *deferred*: it stays pending, and the
cycle starts once the guard allows it. One whose measured loss is too small, or costs
less than retraining, is *skipped*: the trigger is spent, because the champion is still
good enough. A manual retrain with ``--force`` skips the guards.

**Cost** (on with ``ct.cost_per_error`` or ``ct.cost_kpi``)::

    expected loss  = loss per prediction × predictions since the champion took over
    loss per prediction = performance drop × ct.cost_per_error    (or the KPI's fall)
    retrain cost   = last retrain's CPU-hours × cost.cpu_hour (+ GPU) + ct.retrain_fixed_cost

Retrain when expected loss ≥ retrain cost. A loss that is unknown (no labels and no
reliable estimate, or a KPI without two buckets) never skips: the guard says so and
lets the retrain go on, as the performance-loss guard does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard.moments import as_utc

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.pipelines.cycles import Cycle
    from shipyard.pipelines.economics import RetrainEconomics

__all__ = ["GuardDecision", "PerformanceLoss", "check_guards", "cost_decision"]

# A measured value needs this many labelled rows before it outranks the estimate.
MIN_LABELLED = 30


@dataclass(frozen=True)
class GuardDecision:
    """One guard's answer."""

    guard: str
    allowed: bool
    reason: str
    spends_trigger: bool = False  # when not allowed: skipped (True) or deferred (False)
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PerformanceLoss:
    """How far the champion's primary metric fell, by labels or by estimate."""

    metric: str
    reference: float
    current: float
    source: str  # "labelled (N rows)" or "estimated (CBPE)"
    unreliable: str | None = None  # why an estimate cannot stand in for a measurement

    @property
    def loss(self) -> float:
        """Positive when the champion got worse."""
        from shipyard.evaluation.metrics import LOWER_IS_BETTER

        if self.metric in LOWER_IS_BETTER:
            return self.current - self.reference
        return self.reference - self.current


def check_guards(
    config: Config,
    *,
    now: datetime,
    last_started: Cycle | None,
    new_rows: int | None,
    loss: PerformanceLoss | None,
    rows_after_trigger: int | None = None,
    economics: RetrainEconomics | None = None,
) -> list[GuardDecision]:
    """Every guard's decision (all of them, so each is recorded)."""
    ct = config.ct
    decisions = []
    if last_started is not None and ct.cooldown_seconds > 0:
        ready = as_utc(last_started.created_at) + timedelta(seconds=ct.cooldown_seconds)
        allowed = as_utc(now) >= ready
        decisions.append(
            GuardDecision(
                "cooldown",
                allowed,
                "cooldown over"
                if allowed
                else f"cooldown: cycle {last_started.id} started less than "
                f"{ct.cooldown_seconds:g} s ago; next retrain from {ready.isoformat()}",
                evidence={"last_cycle": last_started.id, "ready_at": ready.isoformat()},
            )
        )
    if ct.min_new_rows > 0:
        gained = new_rows if new_rows is not None else 0
        allowed = gained >= ct.min_new_rows
        decisions.append(
            GuardDecision(
                "min_new_rows",
                allowed,
                f"{gained} new rows since the champion trained (need {ct.min_new_rows})",
                evidence={"new_rows": new_rows, "min_new_rows": ct.min_new_rows},
            )
        )
    if ct.rows_after_trigger > 0 and rows_after_trigger is not None:
        gained = rows_after_trigger
        allowed = gained >= ct.rows_after_trigger
        decisions.append(
            GuardDecision(
                "rows_after_trigger",
                allowed,
                f"{gained} new rows since the trigger fired (need {ct.rows_after_trigger})",
                evidence={"rows": rows_after_trigger, "rows_after_trigger": ct.rows_after_trigger},
            )
        )
    if ct.min_performance_loss is not None:
        decisions.append(_loss_decision(ct.min_performance_loss, loss))
    if ct.cost_guard:
        decisions.append(
            cost_decision(ct.cost_per_error, loss, economics)
            if economics is not None
            else GuardDecision(
                "cost",
                True,
                "traffic and retraining cost unknown (no champion, or its logs or KPI could "
                "not be read); not skipping",
            )
        )
    return decisions


def cost_decision(
    cost_per_error: float | None, loss: PerformanceLoss | None, economics: RetrainEconomics
) -> GuardDecision:
    """Retrain when the expected loss reaches the retraining cost; else skip, naming both."""
    currency = economics.currency
    evidence: dict[str, Any] = {
        "currency": currency,
        "traffic": economics.traffic,
        "since": economics.since.isoformat() if economics.since else None,
        "cost_per_error": cost_per_error,
        "retrain_version": economics.retrain_version,
        "cpu_seconds": economics.cpu_seconds,
        "gpu_seconds": economics.gpu_seconds,
        "compute_cost": economics.compute_cost,
        "fixed_cost": economics.fixed_cost,
        "retrain_cost": economics.retrain_cost,
    }
    retrain = (
        f"retraining cost {economics.retrain_cost:.2f} {currency} "
        + (
            f"(compute {economics.compute_cost:.2f}: {economics.cpu_seconds:.1f} CPU-s of "
            f"version {economics.retrain_version}"
            if economics.cpu_seconds is not None
            else "(compute not measured yet"
        )
        + f"; fixed {economics.fixed_cost:.2f})"
    )
    per_prediction, why = _loss_per_prediction(cost_per_error, loss, economics)
    if per_prediction is None or economics.traffic is None:
        unknown = why if per_prediction is None else "traffic since the champion took over unknown"
        return GuardDecision(
            "cost",
            True,
            f"expected loss unknown ({unknown}); not skipping; {retrain}",
            spends_trigger=True,
            evidence={**evidence, "expected_loss": None, "loss_per_prediction": None},
        )
    expected = per_prediction * economics.traffic
    allowed = expected >= economics.retrain_cost
    reason = (
        f"expected loss {expected:.2f} {currency} ({why} × {economics.traffic} predictions "
        f"since the champion took over) {'≥' if allowed else '<'} {retrain}: "
        + ("worth retraining" if allowed else "not worth a retrain yet")
    )
    return GuardDecision(
        "cost",
        allowed,
        reason,
        spends_trigger=True,
        evidence={**evidence, "expected_loss": expected, "loss_per_prediction": per_prediction},
    )


def _loss_per_prediction(
    cost_per_error: float | None, loss: PerformanceLoss | None, economics: RetrainEconomics
) -> tuple[float | None, str]:
    """Money lost per prediction and how it was reckoned, or None and why it is unknown."""
    currency = economics.currency
    kpi = economics.kpi
    if kpi is not None:
        if kpi.drop is None:
            return None, kpi.note
        return max(kpi.drop, 0.0), f"{kpi.note}: {max(kpi.drop, 0.0):.4g} {currency} lost each"
    if loss is None:
        return None, "no measured or estimated performance yet"
    if loss.unreliable is not None:
        return None, f"the {loss.source} estimate is unreliable: {loss.unreliable}"
    if cost_per_error is None:
        return None, "ct.cost_per_error is not set"
    drop = max(loss.loss, 0.0)
    return drop * cost_per_error, (
        f"{loss.metric} drop {drop:.4f} ({loss.source}) × {cost_per_error:g} {currency}"
    )


def _loss_decision(level: float, loss: PerformanceLoss | None) -> GuardDecision:
    if loss is None:
        return GuardDecision(
            "performance_loss",
            True,
            "no measured or estimated performance yet; not skipping",
            evidence={"min_performance_loss": level},
        )
    if loss.unreliable is not None:
        # A flagged estimate is not a measurement: the loss is unknown, so never skip on it.
        return GuardDecision(
            "performance_loss",
            True,
            f"{loss.metric} estimated at {loss.current:.4f} ({loss.source}) but the estimate "
            f"is unreliable: {loss.unreliable}; loss treated as unknown; not skipping",
            evidence={
                "metric": loss.metric,
                "reference": loss.reference,
                "current": loss.current,
                "loss": None,
                "source": loss.source,
                "unreliable": loss.unreliable,
                "min_performance_loss": level,
            },
        )
    evidence = {
        "metric": loss.metric,
        "reference": loss.reference,
        "current": loss.current,
        "loss": loss.loss,
        "source": loss.source,
        "min_performance_loss": level,
    }
    allowed = loss.loss >= level
    verb = "fell" if loss.loss >= 0 else "rose"
    reason = (
        f"{loss.metric} {verb} by {abs(loss.loss):.4f} ({loss.source}; "
        f"{loss.reference:.4f} → {loss.current:.4f}); "
        + ("worth retraining" if allowed else f"below the {level:g} that is worth a retrain")
    )
    return GuardDecision(
        "performance_loss", allowed, reason, spends_trigger=True, evidence=evidence
    )
