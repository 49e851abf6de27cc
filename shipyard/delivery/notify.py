"""Page the model's owner when a roll-out rolls back, with the guardrail evidence.

A rollback is a critical alert (level ``pause``) sent to every route of
``monitoring.routes`` with the payloads of :mod:`shipyard.monitoring.alerting`: the
generic webhook's :meth:`~shipyard.monitoring.alerting.Alert.to_dict`, a Slack message,
or a PagerDuty Events API v2 ``trigger``. Its evidence holds the breach (reason and
every guardrail's value against its limit) and the roll-out (candidate, champion, step,
strategy, and the context it was started with, such as a continuous-training cycle);
the PagerDuty dedup key is one per roll-out, so a retried page never opens a second
incident. Each route is retried with exponential backoff like the
:class:`~shipyard.monitoring.alerting.Alerter` (``monitoring.retries``,
``monitoring.backoff_seconds``), and every outcome is an event on the roll-out's subject:
``rollout.alert_delivered`` or ``rollout.alert_failed``. Nothing here raises: the
rollback has already happened, and a page that cannot go out must not stop the agent.
"""

from __future__ import annotations

import logging
import time as _time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shipyard.delivery.rollout import Rollout

# Imported by the agent only when a roll-out rolls back: alerting itself imports
# shipyard.delivery, so shipyard.delivery must not import this module at start-up.
from shipyard.monitoring.alerting import (
    Alert,
    Delivery,
    Route,
    Signal,
    routes_from_config,
    send_with_retries,
)
from shipyard.store.event_kinds import EventKind

if TYPE_CHECKING:
    from shipyard.config import Config
    from shipyard.store import Store

logger = logging.getLogger(__name__)

__all__ = [
    "ROLLOUT_ALERT_DELIVERED",
    "ROLLOUT_ALERT_FAILED",
    "RollbackAlert",
    "notify_rollback",
    "rollback_alert",
]

ROLLOUT_ALERT_DELIVERED = EventKind.ROLLOUT_ALERT_DELIVERED
ROLLOUT_ALERT_FAILED = EventKind.ROLLOUT_ALERT_FAILED


@dataclass(frozen=True)
class RollbackAlert(Alert):
    """A roll-out's rollback as the routes deliver it: a critical alert with the evidence."""

    step: str = ""  # e.g. "canary 10 %"
    reason: str = ""  # the guardrails' reason

    @property
    def summary(self) -> str:
        """One line for people: which roll-out rolled back, where, why, who owns it."""
        signal = self.signal
        owner = self.owner or "no owner set"
        return (
            f"{signal.model} v{signal.version}: roll-out rolled back at {self.step}: "
            f"{self.reason} (owner: {owner})"
        )


def notify_rollback(
    config: Config,
    store: Store,
    rollout: Rollout,
    evidence: Mapping[str, Any],
    *,
    routes: Sequence[Route] | None = None,
    sleep: Callable[[float], None] = _time.sleep,
    environ: Mapping[str, str] | None = None,
) -> list[Delivery]:
    """Alert the owner through every route that ``rollout`` was rolled back; never raises.

    ``evidence`` is the guardrails' (:meth:`GuardrailReport.evidence`). ``routes``
    default to ``monitoring.routes`` (with ``${NAME}`` read from ``environ``). Returns
    one delivery per route, failed ones with their last error.
    """
    return _send(
        config,
        store,
        lambda: rollback_alert(config, rollout, evidence),
        kinds=(ROLLOUT_ALERT_DELIVERED, ROLLOUT_ALERT_FAILED),
        subject=f"model:{rollout.model}/{rollout.candidate}",
        facts={"rollout": rollout.id},
        routes=routes,
        sleep=sleep,
        environ=environ,
    )


def rollback_alert(config: Config, rollout: Rollout, evidence: Mapping[str, Any]) -> RollbackAlert:
    """The critical alert that tells the owner about ``rollout``'s rollback."""
    started = rollout.history[0] if rollout.history else {}
    reason = str(evidence.get("reason") or rollout.reason or "a guardrail breached")
    facts = {
        "reason": reason,
        "checks": evidence.get("checks", {}),
        "rollout": {
            "id": rollout.id,
            "model": rollout.model,
            "candidate": rollout.candidate,
            "champion": rollout.champion,
            "strategy": rollout.strategy,
            "steps": list(rollout.steps),
            "step_index": rollout.step_index,
            "step": rollout.describe_step(),
            "state": rollout.state,
            "step_started_at": rollout.step_started_at.isoformat(),
            "started_at": started.get("at"),
            "context": started.get("evidence", {}),
        },
    }
    back_to = f"{rollout.model}/{rollout.champion}" if rollout.champion else "no version"
    return RollbackAlert(
        Signal(
            rollout.model, rollout.candidate, f"rollout:{rollout.id}", "pause", None, None, facts
        ),
        level="pause",
        status="opened",
        owner=config.model.owner or None,
        dedup_key=f"shipyard/{rollout.model}/rollout/{rollout.id}",
        time=datetime.now(UTC),
        actions=(f"rolled back to {back_to}",),
        step=rollout.describe_step(),
        reason=reason,
    )


@dataclass(frozen=True)
class CycleAlert(Alert):
    """A continuous-training cycle that halted or failed, as the routes deliver it."""

    headline: str = ""

    @property
    def summary(self) -> str:
        """One line for people: which cycle stopped, where, why, who owns it."""
        owner = self.owner or "no owner set"
        return f"{self.signal.model}: {self.headline} (owner: {owner})"


def notify_cycle(
    config: Config,
    store: Store,
    *,
    cycle: int,
    model: str,
    version: str | None,
    headline: str,
    evidence: Mapping[str, Any],
    routes: Sequence[Route] | None = None,
    sleep: Callable[[float], None] = _time.sleep,
) -> list[Delivery]:
    """Page the owner that continuous-training ``cycle`` stopped; never raises.

    The champion keeps serving; the page carries the gate's evidence (the validation
    failures, or the scorecard with its report) so the owner can decide what to fix.
    """
    facts = {"cycle": cycle, **dict(evidence)}
    return _send(
        config,
        store,
        lambda: CycleAlert(
            Signal(model, version or "-", f"ct:cycle-{cycle}", "pause", None, None, facts),
            level="pause",
            status="opened",
            owner=config.model.owner or None,
            dedup_key=f"shipyard/{model}/ct/{cycle}",
            time=datetime.now(UTC),
            actions=("continuous training stopped; the champion keeps serving",),
            headline=headline,
        ),
        kinds=(EventKind.CT_ALERT_DELIVERED, EventKind.CT_ALERT_FAILED),
        subject=f"model:{model}",
        facts={"cycle": cycle},
        routes=routes,
        sleep=sleep,
    )


def _send(
    config: Config,
    store: Store,
    make_alert: Callable[[], Alert],
    *,
    kinds: tuple[EventKind, EventKind],
    subject: str,
    facts: dict[str, Any],
    routes: Sequence[Route] | None,
    sleep: Callable[[float], None],
    environ: Mapping[str, str] | None = None,
) -> list[Delivery]:
    """Deliver the alert to every route, recording each outcome as ``kinds``; never raises."""
    delivered, failed = kinds
    try:
        alert = make_alert()
        if routes is None:
            routes = routes_from_config(config.monitoring.routes, environ=environ)
    except Exception as exc:  # e.g. a route reads an unset ${VARIABLE}
        logger.warning("alert about %s not sent: %s", subject, exc)
        _record(store, failed, subject, {**facts, "errors": [str(exc)]})
        return []
    deliveries = []
    for route in routes:
        delivery = _deliver(route, alert, config, sleep)
        payload: dict[str, Any] = {
            **facts,
            "route": delivery.route,
            "dedup_key": alert.dedup_key,
            "attempts": delivery.attempts,
        }
        if delivery.ok:
            _record(store, delivered, subject, payload)
        else:
            logger.warning("alert about %s to %s failed: %s", subject, route.name, delivery.error)
            _record(store, failed, subject, {**payload, "errors": [delivery.error]})
        deliveries.append(delivery)
    return deliveries


def _deliver(
    route: Route, alert: Alert, config: Config, sleep: Callable[[float], None]
) -> Delivery:
    """Send with the Alerter's retries: exponential backoff, none after a permanent error."""
    delivery, _ = send_with_retries(
        route,
        alert,
        attempts=config.monitoring.retries + 1,
        backoff_seconds=config.monitoring.backoff_seconds,
        sleep=sleep,
    )
    return delivery


def _record(store: Store, kind: EventKind, subject: str, payload: dict[str, Any]) -> None:
    try:
        store.record(kind, subject, payload)
    except Exception:  # the control plane is down: the log line is all that is left
        logger.exception("could not record %s for %s", kind, subject)
