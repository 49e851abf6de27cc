"""Guards against retraining on noise: a cooldown, a minimum of new data, a real loss.

Each guard returns a decision with its evidence. A trigger that fails the cooldown, the
minimum of new data (since the champion trained, ``ct.min_new_rows``, or since the
drift trigger fired, ``ct.rows_after_trigger``) is *deferred*: it stays pending, and the
cycle starts once the guard allows it. One whose measured loss is too small is
*skipped*: the trigger is spent, because the champion is still good. A manual retrain
with ``--force`` skips the guards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shipyard.moments import as_utc

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.pipelines.cycles import Cycle

__all__ = ["GuardDecision", "PerformanceLoss", "check_guards"]

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
    return decisions


def _loss_decision(level: float, loss: PerformanceLoss | None) -> GuardDecision:
    if loss is None:
        return GuardDecision(
            "performance_loss",
            True,
            "no measured or estimated performance yet; not skipping",
            evidence={"min_performance_loss": level},
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
